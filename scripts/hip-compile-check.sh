#!/usr/bin/env bash
# Compiles every portable kernel LightOS builds (the built-in op kernels with
# the options the ops use, the conformance suite's and the kernel benchmark's
# kernels) with the HIP prelude through hipcc --genco for two AMD targets.
# No AMD GPU is needed: this checks that the generated HIP source compiles.
#
#   scripts/hip-compile-check.sh [BUILD_DIR]      (default: build)
#
# Sources are collected by running the suites once on the CPU backend with
# LIGHTOS_DUMP_SOURCES (every built program's source + options), then
# `lightos codegen --target hip` gives the HIP source of each.
# HIP_ARCHS overrides the targets (default gfx90a,gfx1030: Debian's ROCm 5.2
# device libraries have no gfx11xx).  Skips (exit 0) without hipcc.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
archs=${HIP_ARCHS:-gfx90a,gfx1030}
if ! command -v hipcc >/dev/null; then
  echo "hip-compile-check: skipped: hipcc not installed (apt-get install hipcc)"
  exit 0
fi
for t in lightos tests/test_conformance tests/test_ops tests/test_ops_gemm bench/bench_kernels; do
  [ -x "$build/$t" ] || { echo "hip-compile-check: $build/$t missing (build first)" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/out"
start=$(date +%s)
# 1. Collect: CPU backend only, fresh kernel cache.
export LIGHTOS_DUMP_SOURCES=$work/src LIGHTOS_DISABLE_BACKENDS=opencl,cuda,hip \
  LIGHTOS_CACHE_DIR=$work/cache
for t in tests/test_conformance tests/test_ops tests/test_ops_gemm; do
  "$build/$t" >"$work/$(basename $t).log" 2>&1 || {
    echo "hip-compile-check: $t failed on the CPU backend:" >&2
    tail -20 "$work/$(basename $t).log" >&2
    exit 1
  }
done
"$build/bench/bench_kernels" --reps 1 --iters 1 >"$work/bench.log" 2>&1 || {
  echo "hip-compile-check: bench_kernels failed:" >&2; tail -20 "$work/bench.log" >&2; exit 1; }
unset LIGHTOS_DUMP_SOURCES
n=$(ls "$work/src" | grep -c '\.cl$' || true)
[ "$n" -gt 0 ] || { echo "hip-compile-check: no program sources were collected" >&2; exit 1; }
echo "hip-compile-check: $n distinct programs collected in $(( $(date +%s) - start )) s"
# 2. Generate and compile, two at a time.
arch_flags=()
IFS=, read -ra arch_list <<<"$archs"
for a in "${arch_list[@]}"; do arch_flags+=("--offload-arch=$a"); done
compile_one() {
  local cl=$1 base opts
  base=${cl%.cl}
  # Program options as the CUDA backend passes them: -D/-I/-w kept,
  # -cl-std dropped (the language version is fixed).
  opts=$(tr ' ' '\n' <"$base.opts" | grep -v '^-cl-std=' | tr '\n' ' ' || true)
  local name
  name=$(basename "$base")
  if ! "$build/lightos" codegen --target hip "$cl" >"$work/out/$name.hip" 2>"$work/out/$name.err"; then
    echo "FAIL codegen $name" >>"$work/out/$name.err"; return 1
  fi
  # shellcheck disable=SC2086  # the options are -D NAME[=VALUE] / -I DIR words
  if ! hipcc --genco "${arch_flags[@]}" -O3 -x hip $opts "$work/out/$name.hip" \
      -o "$work/out/$name.co" >>"$work/out/$name.err" 2>&1; then
    return 1
  fi
}
export -f compile_one
export build work
failed=0
jobs=$(nproc 2>/dev/null || echo 2)
for cl in "$work"/src/*.cl; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  ( compile_one "$cl" || touch "$work/out/$(basename "${cl%.cl}").failed" ) &
done
wait
lds_skipped=0
for f in "$work"/out/*.failed; do
  [ -e "$f" ] || continue
  name=$(basename "${f%.failed}")
  # Configurations picked for the CPU device (256 KiB local memory) that
  # need more than AMD's 64 KiB LDS: on an AMD device the op picks another.
  if grep -q "error: local memory ([0-9]*) exceeds limit" "$work/out/$name.err" &&
     [ "$(grep -c "error:" "$work/out/$name.err")" -eq \
       "$(grep -c "error: local memory ([0-9]*) exceeds limit" "$work/out/$name.err")" ]; then
    lds_skipped=$((lds_skipped + 1))
    echo "hip-compile-check: note: $name needs more than 64 KiB local memory" \
         "(options: $(cat "$work/src/$name.opts")): not a valid AMD configuration, not counted"
    continue
  fi
  failed=$((failed + 1))
  echo "---- $name (options: $(cat "$work/src/$name.opts"))" >&2
  grep -m 10 -E "error|FAIL" "$work/out/$name.err" >&2 || tail -5 "$work/out/$name.err" >&2
done
elapsed=$(( $(date +%s) - start ))
if [ "$failed" -gt 0 ]; then
  echo "hip-compile-check: $failed of $((n - lds_skipped)) programs failed to compile for $archs (${elapsed} s)" >&2
  exit 1
fi
echo "hip-compile-check: $((n - lds_skipped)) programs compiled for $archs" \
     "($lds_skipped over AMD's local-memory limit not counted; ${elapsed} s)"
