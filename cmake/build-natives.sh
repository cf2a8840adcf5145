#!/usr/bin/env bash
# Configures and builds libllmkernels.so with CMake and copies it to OUT_DIR.
# Called by Maven (java/pom.xml, javacpp buildCommand) before the JNI glue is compiled.
# Usage: build-natives.sh BUILD_DIR OUT_DIR [extra cmake -D options...]
# Environment: LLMK_CUDA_ARCHS (e.g. "90a"), LLMK_CUDA (AUTO|ON|OFF), LLMK_JOBS,
# LLMK_SKIP_CTEST=1 (the CTest programs are built, not run: -Pcuda-emulated, bench/gpu/make-bundle.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build_dir=$1
out_dir=$2
shift 2
opts=("-DCMAKE_BUILD_TYPE=Release")
[ -n "${LLMK_CUDA_ARCHS:-}" ] && opts+=("-DLLMK_CUDA_ARCHS=${LLMK_CUDA_ARCHS}")
[ -n "${LLMK_CUDA_PTX+set}" ] && opts+=("-DLLMK_CUDA_PTX=${LLMK_CUDA_PTX}")
[ -n "${LLMK_CUDA:-}" ] && opts+=("-DLLMK_CUDA=${LLMK_CUDA}")
# nvcc lives outside PATH on many machines.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
cmake -S "$here" -B "$build_dir" "${opts[@]}" "$@"
cmake --build "$build_dir" -j "${LLMK_JOBS:-$(nproc)}"
mkdir -p "$out_dir"
cp -f "$build_dir/libllmkernels.so" "$out_dir/"
# libgomp cannot be linked statically into a shared object (its TLS model forbids it), so the
# natives jar carries the build machine's copy; JavaCPP preloads it from the jar.
cp -fL "$(g++ -print-file-name=libgomp.so.1)" "$out_dir/libgomp.so.1"
# Native unit tests (index math, ABI error contract, every CPU variant): seconds, every build.
if [ "${LLMK_SKIP_CTEST:-0}" = 1 ]; then
  echo "build-natives.sh: LLMK_SKIP_CTEST=1: ctest not run for $build_dir"
  exit 0
fi
ctest --test-dir "$build_dir" --output-on-failure
