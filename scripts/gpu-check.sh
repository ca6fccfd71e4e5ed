#!/usr/bin/env bash
# One command on an NVIDIA GPU machine: build LightOS, run every suite on
# every device found (CUDA, NVIDIA OpenCL, PoCL, CPU), run the GPU
# benchmarks, and end with a summary table.  Logs and markdown results go
# to $RESULTS (default: ./gpu-results).
#
#   scripts/gpu-check.sh [--quick]
#
# STEPS (default: all) picks steps by name, e.g. STEPS="build ctest bench_gpu comm".
# Every step has a time limit (STEP_TIMEOUT, default 900 s) so nothing hangs.
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
STEPS=${STEPS:-all}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
want() { [ "$STEPS" = all ] || [[ " $STEPS " == *" $1 "* ]]; }
step() { # name, command...
  local name=$1; shift
  want "$name" || want "${name%%:*}" || return 0
  local log="$RESULTS/${name//:/-}.log"
  local t0=$SECONDS
  if timeout "$STEP_TIMEOUT" "$@" >"$log" 2>&1; then r=PASS; else r="FAIL($?)"; fi
  summary+=("$(printf '%-28s %-9s %4ds  %s' "$name" "$r" $((SECONDS - t0)) "$log")")
  echo "== $name: $r"; tail -n 25 "$log"
}

nvidia-smi --query-gpu=index,name,driver_version,memory.total,pci.bus_id,compute_mode --format=csv \
  >"$RESULTS/gpus.csv" 2>&1 || true
cat "$RESULTS/gpus.csv"

step build bash -c "cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DLIGHTOS_WERROR=OFF >/dev/null && cmake --build $BUILD -j\$(nproc)"
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || echo 0)
step info "./$BUILD/lightos" info
step ctest bash -c "cd $BUILD && ctest --output-on-failure -j4 --timeout 300"
step selftest "./$BUILD/lightos" selftest
# Collectives on 1, 2 and 4 GPUs: the GPU suite, then the allreduce table
# at every level against NCCL (one process driving every GPU, and one
# process per GPU under mpirun).
if want comm; then
  # Where NVLink joins the GPUs, in-process groups must exchange by peer copies.
  if nvidia-smi topo -m 2>/dev/null | grep -q 'NV[0-9]'; then export LIGHTOS_TEST_REQUIRE_P2P=1; fi
  step comm:test-gpu "./$BUILD/tests/test_comm_gpu"
  # Processes (forked, one GPU each): bitwise splits, the TOPOLOGY tree's
  # bits (4 processes: by peer copies, at every size), a killed rank.
  if [ "$ngpu" -ge 2 ]; then
    devs=$(seq -s, -f 'cuda:%g' 0 $((ngpu > 4 ? 3 : ngpu - 1)))
    step comm:test-procs-gpu env LIGHTOS_TEST_PROCS_DEVICES="$devs" LIGHTOS_NCCL_P2P_MIN_KB=0 \
      "./$BUILD/tests/test_comm_procs"
  fi
  for n in 2 4 8; do
    [ "$ngpu" -ge "$n" ] || continue
    step "comm:allreduce-${n}gpu" "./$BUILD/bench/bench_comm" --ranks "$n" --devices cuda \
      --min 1M --max 256M --step-factor 4 --levels none,run,topology,strict
    # The latency view: every operation waited for (the host's issue shows).
    step "comm:allreduce-${n}gpu-sync" "./$BUILD/bench/bench_comm" --ranks "$n" --devices cuda \
      --min 256M --max 256M --levels none,topology,strict --sync-each
    if command -v mpirun >/dev/null; then
      step "comm:allreduce-${n}proc" env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        LIGHTOS_LOG=info mpirun -np "$n" --bind-to none "./$BUILD/bench/bench_comm" --mpi \
        --devices cuda --min 16M --max 256M --step-factor 4 --levels none,topology,strict
      # Between processes without peer copies (from 4): recursive halving.
      [ "$n" -ge 4 ] && step "comm:allreduce-${n}proc-halving" env OMPI_ALLOW_RUN_AS_ROOT=1 \
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 LIGHTOS_NCCL_P2P_RANKS=0 \
        mpirun -np "$n" --bind-to none "./$BUILD/bench/bench_comm" --mpi --devices cuda \
        --min 16M --max 256M --step-factor 4 --levels topology
    fi
  done
  [ "$ngpu" -ge 2 ] && step comm:all-colls-2gpu "./$BUILD/bench/bench_comm" --ranks 2 \
    --devices cuda --colls all --min 64M --max 64M --levels none,topology
  # The other TOPOLOGY algorithms for comparison: recursive halving (what
  # two processes run) and the tree pipeline over NCCL (all-to-all,
  # tree kernel, all-gather), both without peer copies; and the example's
  # digests: the same TOPOLOGY and STRICT bits on 1, 2, 4 (8) GPUs.
  for n in 2 4 8; do
    [ "$ngpu" -ge "$n" ] || continue
    step "comm:halving-${n}gpu" env LIGHTOS_NCCL_P2P=0 "./$BUILD/bench/bench_comm" \
      --ranks "$n" --devices cuda --min 1M --max 256M --step-factor 4 --levels topology
    # Peer copies at every size (their threshold, LIGHTOS_NCCL_P2P_MIN_KB, is
    # where they overtake halving), with the step times of rank 0.
    step "comm:p2p-${n}gpu" env LIGHTOS_NCCL_P2P_MIN_KB=0 LIGHTOS_NCCL_P2P_PROFILE=1 \
      "./$BUILD/bench/bench_comm" --ranks "$n" --devices cuda --min 1M --max 256M \
      --step-factor 4 --levels topology
    # The host's time in each step of issuing (LightOS vs NCCL's issue in
    # the table's last column).
    step "comm:issue-profile-${n}gpu" env LIGHTOS_NCCL_ISSUE_PROFILE=1 "./$BUILD/bench/bench_comm" \
      --ranks "$n" --devices cuda --min 1M --max 256M --step-factor 256 --levels none,topology
    step "comm:tree-pipeline-${n}gpu" env LIGHTOS_NCCL_P2P=0 LIGHTOS_NCCL_HALVING=0 \
      "./$BUILD/bench/bench_comm" --ranks "$n" --devices cuda --min 256M --max 256M --levels topology
  done
  # A composed group: the GPUs' block over NCCL with the CPU as one more
  # rank, against the same group flat (the host path for everything).
  for n in 2 4; do
    [ "$ngpu" -ge "$n" ] || continue
    step "comm:composed-${n}gpu+cpu" "./$BUILD/bench/bench_comm" --ranks $((n + 1)) \
      --devices cuda+cpu --min 1M --max 64M --step-factor 8 --levels topology
  done
  for n in 1 2 4 8; do
    [ "$ngpu" -ge "$n" ] || continue
    step "comm:example-${n}gpu" "./$BUILD/allreduce_example" "$n" cuda
  done
fi
# Only when named: TOPOLOGY at 256 MiB over halving segment sizes.
if [[ " $STEPS " == *" comm-sweep "* ]]; then
  for n in 2 4 8; do
    [ "$ngpu" -ge "$n" ] || continue
    for kb in ${SWEEP_KB:-16384 32768 65536 131072 262144}; do
      step "comm-sweep:${n}gpu-${kb}K" \
        env LIGHTOS_NCCL_HALVING_SEGMENT_KB=$kb LIGHTOS_NCCL_SEGMENT_KB=$((kb > 131072 ? kb : 131072)) \
        "./$BUILD/bench/bench_comm" --ranks "$n" \
        --devices cuda --min 256M --max 256M --levels topology
    done
  done
fi
if [ "${1:-}" != "--quick" ]; then
  for b in "$BUILD"/bench/bench_*; do
    [ -x "$b" ] || continue
    n=$(basename "$b")
    [ "$n" = bench_comm ] && continue
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
