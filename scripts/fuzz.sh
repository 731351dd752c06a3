#!/usr/bin/env bash
# Builds and runs firmflow's fuzz targets with libFuzzer on STABLE Rust.
#
# No cargo-fuzz and no nightly: libfuzzer-sys only needs the SanitizerCoverage
# instrumentation, which stable rustc gives with `-Cpasses=sancov-module` and
# LLVM options (the flags cargo-fuzz passes with `--sanitizer none`). A C++
# compiler builds libFuzzer itself (g++, installed when absent).
#
#   scripts/fuzz.sh build                 build every target (release profile)
#   scripts/fuzz.sh smoke [SECONDS]       build (smoke profile) and run each target SECONDS
#                                         (default 5) from its seeds; fails on a crash
#   scripts/fuzz.sh run TARGET [ARGS...]  one target, libFuzzer ARGS (-max_total_time=, -runs=, -jobs=)
#   scripts/fuzz.sh list
#
# FUZZ_PROFILE picks the cargo profile for build and run (release; smoke
# is the cheap build the CI smoke uses, fuzz/Cargo.toml).
# Targets: every [[bin]] of fuzz/Cargo.toml (read_catalog's file lives in
# catalog/fuzz with its seeds and dictionary).
# Corpora grow in fuzz/corpus/TARGET (ignored by git), crashes land in
# fuzz/artifacts/TARGET; seeds live in fuzz/seeds/TARGET (committed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if ! command -v c++ >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update >/dev/null
    $sudo apt-get install -y g++ >/dev/null
fi

host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR="$root/fuzz/target"
# `--target` keeps these flags off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cllvm-args=-simplifycfg-branch-fold-threshold=0 \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"

all_targets=(read_catalog redfish_job racadm_output soap_answer policy_json hosts_import plan_file)
profile=${FUZZ_PROFILE:-release}

build() {
    cargo build --profile "$profile" --target "$host" --manifest-path fuzz/Cargo.toml --bins
}

seeds_of() {
    case "$1" in
        read_catalog) echo "$root/catalog/fuzz/seeds/read_catalog" ;;
        *) echo "$root/fuzz/seeds/$1" ;;
    esac
}

dict_of() {
    case "$1" in
        read_catalog) echo "-dict=$root/catalog/fuzz/catalog.dict" ;;
        *) [ -f "$root/fuzz/dicts/$1.dict" ] && echo "-dict=$root/fuzz/dicts/$1.dict" || true ;;
    esac
}

run() {
    local t=$1
    shift
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    # shellcheck disable=SC2046
    "$CARGO_TARGET_DIR/$host/$profile/$t" -artifact_prefix="fuzz/artifacts/$t/" \
        $(dict_of "$t") "$@" "fuzz/corpus/$t" "$(seeds_of "$t")"
}

case "${1:-smoke}" in
    build) build ;;
    list) printf '%s\n' "${all_targets[@]}" ;;
    run)
        shift
        t=${1:?target}
        shift
        run "$t" "$@"
        ;;
    smoke)
        secs=${2:-5}
        profile=${FUZZ_PROFILE:-smoke}
        build
        for t in "${all_targets[@]}"; do
            printf '\n== fuzz %s (%ss)\n' "$t" "$secs"
            run "$t" -max_total_time="$secs" -print_final_stats=1
        done
        ;;
    *)
        echo "usage: $0 build | smoke [SECONDS] | run TARGET [ARGS...] | list" >&2
        exit 2
        ;;
esac
