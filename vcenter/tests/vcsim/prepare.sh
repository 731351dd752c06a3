#!/bin/sh
# Builds the vcsim launcher (govmomi's vCenter simulator) for firmflow-vcenter's
# integration tests, offline, from Debian's golang-github-vmware-govmomi-dev.
#
#   vcenter/tests/vcsim/prepare.sh            # installs packages if absent, builds if stale
#
# Output: <repo root>/target/vcsim/vcsim-launcher (override with VCSIM_LAUNCHER=path).
# The repo root is derived from this script's location, so any clone works.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${VCSIM_LAUNCHER:-"$root/target/vcsim/vcsim-launcher"}
pkgs="golang-go golang-github-vmware-govmomi-dev"

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "prepare.sh: missing Debian packages:$missing (run as root, or: apt-get install -y$missing)" >&2
        exit 1
    fi
    echo "prepare.sh: installing$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
fi

# Where the Debian package put govmomi's sources: GOPATH is the directory above src/.
sim_dir=$(dpkg -L golang-github-vmware-govmomi-dev | grep '/src/github.com/vmware/govmomi/simulator$' | head -n 1)
if [ -z "$sim_dir" ]; then
    echo "prepare.sh: golang-github-vmware-govmomi-dev has no simulator sources" >&2
    exit 1
fi
gopath=${sim_dir%/src/github.com/vmware/govmomi/simulator}

# Rebuild only when the launcher is missing or older than its source or this script.
if [ -x "$out" ] && [ "$out" -nt "$here/main.go" ] && [ "$out" -nt "$here/prepare.sh" ]; then
    echo "$out"
    exit 0
fi

mkdir -p "$(dirname "$out")"
cache=$(dirname "$out")/go-cache
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# GOPATH mode, no network: everything comes from the Debian packages.
# CGO off: a pure-Go binary needs no C compiler (Go 1.19 would insist on gcc
# for the net package otherwise). GOENV off: no $HOME needed.
(cd "$here" && GO111MODULE=off GOPROXY=off GOFLAGS= GOENV=off CGO_ENABLED=0 \
    GOPATH="$gopath" GOCACHE="$cache" go build -o "$tmp" .) >&2
# Atomic replace: concurrent test processes may race to build.
mv -f "$tmp" "$out"
echo "$out"
