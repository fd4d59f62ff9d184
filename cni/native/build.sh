#!/bin/sh
# Builds the native weft-cni (cni/native/weft-cni.c) into OUTPUT: one static, stripped executable
# that needs nothing on the host. Used by the Dockerfile's build stage and by
# devenv/install-tools.sh (which caches it for tests and benchmarks).
#   cni/native/build.sh OUTPUT        (CC overrides the compiler; default cc)
# Writes OUTPUT under a temporary name first, so that a reader never sees half a binary.
set -eu
out=${1:?usage: cni/native/build.sh OUTPUT}
src=$(cd "$(dirname "$0")" && pwd)/weft-cni.c
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Wno-unused-result -static -s -o "$tmp" "$src"
mv -f "$tmp" "$out"
