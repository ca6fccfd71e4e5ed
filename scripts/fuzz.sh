#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for $1 seconds
# (default 60): the kernel-signature parser and the program-build path.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
if ! command -v clang >/dev/null; then
  echo "fuzz: clang not found; skipping the fuzz smoke run"; exit 0
fi
out=build-fuzz
cmake -S . -B "$out" -DCMAKE_C_COMPILER=clang -DLIGHTOS_BUILD_TESTS=OFF -DLIGHTOS_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all" >/dev/null
cmake --build "$out" -j"$(nproc)" --target lightos_static >/dev/null
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude -Isrc)
clang "${flags[@]}" src/kernels/kparse.c tests/fuzz/fuzz_kparse.c -o "$out/fuzz_kparse"
clang "${flags[@]}" tests/fuzz/fuzz_build.c "$out/liblightos.a" -lpthread -ldl -lm -o "$out/fuzz_build"
export LIGHTOS_CACHE_DIR="$PWD/$out/cache"
for t in kparse build; do
  work="$out/corpus-$t"
  rm -rf "$work"; mkdir -p "$work"
  cp tests/fuzz/corpus/$t/* "$work/"
  echo "fuzz: $t for ${secs}s"
  "$out/fuzz_$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 "$work" 2>&1 | tail -n 3
done
echo "fuzz: no crashes"
