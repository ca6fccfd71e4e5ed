#!/usr/bin/env bash
# Installs what the build and the tests need, when it is missing (Debian/Ubuntu).
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v cc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
command -v clang >/dev/null || need+=(clang)
dpkg -s libclang-rt-dev >/dev/null 2>&1 || dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need+=(libclang-rt-dev)
dpkg -s ocl-icd-libopencl1 >/dev/null 2>&1 || need+=(ocl-icd-libopencl1)
dpkg -s pocl-opencl-icd >/dev/null 2>&1 || need+=(pocl-opencl-icd)
ls /usr/lib/*/libopenblas.so.0 >/dev/null 2>&1 || need+=(libopenblas0-pthread)
ls /usr/lib/*/libclblast.so.1 >/dev/null 2>&1 || need+=(libclblast1)
command -v hipcc >/dev/null || need+=(hipcc)
dpkg -s rocm-device-libs >/dev/null 2>&1 || need+=(rocm-device-libs)
dpkg -s libamdhip64-5 >/dev/null 2>&1 || need+=(libamdhip64-5)
# Multi-process collectives tests (mpirun) and topology discovery (hwloc).
command -v mpirun >/dev/null || need+=(openmpi-bin)
dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)
ls /usr/lib/*/libhwloc.so.15 >/dev/null 2>&1 || need+=(libhwloc15)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "install-deps: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
