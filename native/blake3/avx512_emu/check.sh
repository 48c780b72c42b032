#!/usr/bin/env bash
# Build and run the emulated AVX-512 check (x86-64, gcc).  Usage: check.sh [workdir]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
N="$(dirname "$HERE")"
W="${1:-$(mktemp -d)}"
mkdir -p "$W"
CC="${CC:-gcc}"
FLAGS="-O2 -std=gnu11 -fno-strict-aliasing -Wall -Wno-unused-function"
# the back end, minus its target pragma, against the stand-in <immintrin.h>
sed '/#pragma GCC target/d' "$N/blake3_avx512.c" > "$W/avx512_emu.c"
if grep -q "pragma GCC target" "$W/avx512_emu.c"; then echo "pragma not stripped" >&2; exit 1; fi
# the dispatcher, with detection pinned to AVX-512
sed 's/^static int detect_level(void) {$/static int detect_level(void) { if (1) return NF_BLAKE3_AVX512;/' "$N/blake3.c" > "$W/blake3_forced.c"
grep -q "if (1) return NF_BLAKE3_AVX512" "$W/blake3_forced.c"
# -O0: the emulation inlines into a huge function that takes GCC long to optimise
$CC ${FLAGS/-O2/-O0} -I "$HERE" -I "$N" -c "$W/avx512_emu.c" -o "$W/avx512_emu.o"
if objdump -d "$W/avx512_emu.o" | grep -qE "zmm|%k[0-7]"; then echo "real AVX-512 code in the emulated object" >&2; exit 1; fi
$CC $FLAGS -I "$N" -c "$W/blake3_forced.c" -o "$W/blake3_forced.o"
$CC $FLAGS -I "$N" "$HERE/harness.c" "$W/blake3_forced.o" "$W/avx512_emu.o" \
    "$N/blake3_portable.c" "$N/blake3_sse41.c" "$N/blake3_avx2.c" -o "$W/harness"
"$W/harness"
