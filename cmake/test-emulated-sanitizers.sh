#!/usr/bin/env bash
# The CUDA CTest programs (test_*_cuda) on the emulated device under ThreadSanitizer and under
# AddressSanitizer + UBSan's alignment check (cuda/emulator/README.md). Tests only; nothing here
# is packaged. Usage: test-emulated-sanitizers.sh BUILD_ROOT [thread|address ...]
# Environment: LLMK_JOBS (parallel compile jobs, default nproc), CUDA_HOME (toolkit headers).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${1:?usage: test-emulated-sanitizers.sh BUILD_ROOT [thread|address ...]}
shift
sanitizers=("$@")
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(thread address)
programs=(llmk_cce_cuda_tests llmk_attention_cuda_tests llmk_kv_cuda_tests llmk_sp24_cuda_tests llmk_prefill_cuda_tests)
for san in "${sanitizers[@]}"; do
  dir="$root/cmake-emulated-$san"
  echo "== emulated CUDA under the $san sanitizer ($dir)"
  start=$(date +%s)
  cmake -S "$here" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DLLMK_CUDA_EMULATION=ON -DLLMK_EMU_SANITIZER="$san" >/dev/null
  cmake --build "$dir" -j "${LLMK_JOBS:-$(nproc)}" --target "${programs[@]}"
  echo "built in $(( $(date +%s) - start )) s"
  # Forward order only here: the plain emulated build already runs both orders.
  ctest --test-dir "$dir" --output-on-failure -R '^llmk_(cce|attention|kv|sp24|prefill)_cuda_tests$'
  echo "$san: passed in $(( $(date +%s) - start )) s"
done
