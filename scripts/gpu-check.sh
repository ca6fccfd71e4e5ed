#!/usr/bin/env bash
# One command on an NVIDIA GPU machine: build LightOS, run every suite on
# every device found (CUDA, NVIDIA OpenCL, PoCL, CPU), run the GPU
# benchmarks, and end with a summary table.  Logs and markdown results go
# to $RESULTS (default: ./gpu-results).
#
#   scripts/gpu-check.sh [--quick]
set -uo pipefail
cd "$(dirname "$0")/.."
RESULTS=${RESULTS:-$PWD/gpu-results}
BUILD=${BUILD:-build-gpu}
mkdir -p "$RESULTS"
export NCCL_NVLS_ENABLE=0
export LIGHTOS_CACHE_DIR=${LIGHTOS_CACHE_DIR:-$PWD/$BUILD/cache}

# NVIDIA's OpenCL through the ICD loader: an ICD file naming the vendor
# library.  The suites run on it alone (with the CPU and CUDA backends):
# this machine's PoCL 5.0 (LLVM 16) aborts inside its own compiler on the
# GEMM kernel; PoCL is covered by CI.  bench_kernels, which compares the
# CPU backend with PoCL, gets the system ICDs as well.
icd_dir=$PWD/$BUILD/icd
icd_all=$PWD/$BUILD/icd-all
rm -rf "$icd_dir" "$icd_all"  # a kept build dir may hold last run's
mkdir -p "$icd_dir" "$icd_all"
for lib in /usr/lib/libnvidia-opencl.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1; do
  if [ -e "$lib" ]; then echo "$lib" >"$icd_dir/nvidia.icd"; break; fi
done
cp "$icd_dir"/*.icd "$icd_all/" 2>/dev/null
for f in /etc/OpenCL/vendors/*.icd; do [ -e "$f" ] && cp "$f" "$icd_all/"; done
export OCL_ICD_VENDORS=$icd_dir
# The ICD loader may still add the system's ICDs: LightOS's own filter
# keeps the suites on NVIDIA's platform.
export LIGHTOS_OPENCL_PLATFORMS=NVIDIA

summary=()
step() { # name, command...
  local name=$1; shift
  local log="$RESULTS/$name.log"
  local t0=$SECONDS
  if "$@" >"$log" 2>&1; then r=PASS; else r="FAIL($?)"; fi
  summary+=("$(printf '%-28s %-9s %4ds  %s' "$name" "$r" $((SECONDS - t0)) "$log")")
  echo "== $name: $r"; tail -n 25 "$log"
}

nvidia-smi --query-gpu=index,name,driver_version,memory.total,pci.bus_id --format=csv \
  >"$RESULTS/gpus.csv" 2>&1 || true
cat "$RESULTS/gpus.csv"

step build bash -c "cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DLIGHTOS_WERROR=OFF >/dev/null && cmake --build $BUILD -j\$(nproc)"
step info "./$BUILD/lightos" info
step ctest bash -c "cd $BUILD && ctest --output-on-failure -j4 --timeout 300"
step selftest "./$BUILD/lightos" selftest
if [ "${1:-}" != "--quick" ]; then
  for b in "$BUILD"/bench/bench_*; do
    [ -x "$b" ] || continue
    n=$(basename "$b")
    if [ "$n" = bench_kernels ]; then
      step "$n" env OCL_ICD_VENDORS="$icd_all" LIGHTOS_OPENCL_PLATFORMS= "$b" --markdown "$RESULTS/$n.md"
    else
      step "$n" "$b" --markdown "$RESULTS/$n.md"
    fi
  done
fi

echo
echo "Summary ($(date -u +%F), $(head -2 "$RESULTS/gpus.csv" | tail -1)):"
printf '%s\n' "${summary[@]}" | tee "$RESULTS/summary.txt"
