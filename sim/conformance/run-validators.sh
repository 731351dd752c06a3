#!/usr/bin/env bash
# Runs the DMTF Redfish Service Validator and Redfish Protocol Validator
# against one simulated iDRAC (plain HTTP) and prints PASS/WARN/FAIL counts.
# Not part of CI. Needs python3 (venv + pip), cargo, and network access to
# PyPI and crates.io.
#
# Environment: WORK (scratch dir, default $CARGO_TARGET_DIR/conformance),
# FLAVOR (idrac9|idrac10|generic, default idrac9), SIM_ARGS (extra
# firmflow-sim flags, e.g. --strict-redfish to drop the schema-violating
# iDRAC quirks).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK="${WORK:-${CARGO_TARGET_DIR:-/tmp/firmflow-sim-target}/conformance}"
FLAVOR="${FLAVOR:-idrac9}"
mkdir -p "$WORK"

# 1. Validators in a venv.
if [ ! -x "$WORK/venv/bin/rf_service_validator" ] || [ ! -x "$WORK/venv/bin/rf_protocol_validator" ]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q --upgrade pip
    "$WORK/venv/bin/pip" install -q redfish-service-validator redfish-protocol-validator
fi

# 2. DMTF CSDL schemas from the crates.io package nv-redfish-schema.
find_csdl() {
    ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/nv-redfish-schema-*/redfish-csdl/csdl 2>/dev/null | sort -V | tail -1
}
CSDL="$(find_csdl || true)"
if [ -z "$CSDL" ]; then
    FETCH="$WORK/schema-fetch"
    mkdir -p "$FETCH/src"
    cat > "$FETCH/Cargo.toml" <<'TOML'
[package]
name = "schema-fetch"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
nv-redfish-schema = "*"
[workspace]
TOML
    echo 'fn main() {}' > "$FETCH/src/main.rs"
    (cd "$FETCH" && cargo fetch -q)
    CSDL="$(find_csdl || true)"
    if [ -z "$CSDL" ]; then
        CRATE="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/nv-redfish-schema-*.crate | sort -V | tail -1)"
        mkdir -p "$WORK/schema"
        tar -xzf "$CRATE" -C "$WORK/schema"
        CSDL="$(ls -d "$WORK"/schema/nv-redfish-schema-*/redfish-csdl/csdl | tail -1)"
    fi
fi
echo "schemas: $CSDL"

# 3. Start one simulated iDRAC.
(cd "$ROOT" && cargo build -q -p firmflow-sim --bin firmflow-sim)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/firmflow-sim"
"$BIN" --hosts 1 --http --flavor "$FLAVOR" --seed 1 ${SIM_ARGS:-} > "$WORK/sim.json" &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/sim.json" ] && break; sleep 0.1; done
URL="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["url"])' "$WORK/sim.json")"
echo "simulated iDRAC: $URL"

# 4. Service validator.
rm -rf "$WORK/service-logs" "$WORK/protocol-reports"
set +e
"$WORK/venv/bin/rf_service_validator" --ip "$URL" -u root -p calvin --authtype Basic \
    --schema_directory "$CSDL" --logdir "$WORK/service-logs" > "$WORK/service.out" 2>&1
"$WORK/venv/bin/rf_protocol_validator" -r "$URL" -u root -p calvin \
    --report-dir "$WORK/protocol-reports" --report-type tsv > "$WORK/protocol.out" 2>&1
set -e

# 5. Counts.
python3 - "$WORK" <<'PY'
import glob, json, re, sys, csv
work = sys.argv[1]
# Service validator: the JSON results file holds per-property results.
svc = {"PASS": 0, "WARN": 0, "FAIL": 0}
files = sorted(glob.glob(f"{work}/service-logs/*.json"))
if files:
    data = json.load(open(files[-1]))
    counts = {}
    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "counts" and isinstance(v, dict):
                    for ck, cv in v.items():
                        if isinstance(cv, int):
                            counts[ck] = counts.get(ck, 0) + cv
                else:
                    walk(v)
        elif isinstance(o, list):
            for x in o:
                walk(x)
    walk(data)
    for k, v in counts.items():
        kl = k.lower()
        if kl.startswith("pass"):
            svc["PASS"] += v
        elif kl.startswith("warn"):
            svc["WARN"] += v
        elif kl.startswith("fail") or kl.startswith("err"):
            svc["FAIL"] += v
else:
    text = open(f"{work}/service.out").read()
    for key, pat in (("PASS", r"pass\w*: (\d+)"), ("WARN", r"warn\w*: (\d+)"), ("FAIL", r"(?:fail|error)\w*: (\d+)")):
        svc[key] = sum(int(x) for x in re.findall(pat, text, re.I))
print(f"service-validator:  PASS={svc['PASS']} WARN={svc['WARN']} FAIL={svc['FAIL']}")
proto = {"PASS": 0, "WARN": 0, "FAIL": 0, "NOT_TESTED": 0}
for f in glob.glob(f"{work}/protocol-reports/*.tsv"):
    for row in csv.reader(open(f), delimiter="\t"):
        for cell in row:
            if cell in proto:
                proto[cell] += 1
                break
print(f"protocol-validator: PASS={proto['PASS']} WARN={proto['WARN']} FAIL={proto['FAIL']} NOT_TESTED={proto['NOT_TESTED']}")
PY
echo "details: $WORK/service.out, $WORK/service-logs/, $WORK/protocol.out, $WORK/protocol-reports/"
