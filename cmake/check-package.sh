#!/usr/bin/env bash
# Checks the packaged natives jar: it holds the libraries, not the emulated CUDA build, they need neither libcudart nor
# libstdc++ at run time, and (when built with CUDA) the fatbinary holds sm_80 and sm_90a.
# Usage: check-package.sh JAVA_TARGET_DIR
set -euo pipefail
target=$1
here=$(cd "$(dirname "$0")" && pwd)
jar=$(ls "$target"/llm-kernels-*-linux-x86_64.jar)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unzip -q -o "$jar" -d "$tmp"
libs=$(find "$tmp" -name '*.so*' | sort)
echo "natives jar $(basename "$jar") ($(stat -c %s "$jar") bytes):"
for lib in $libs; do echo "  ${lib#$tmp/} ($(stat -c %s "$lib") bytes)"; done
for name in libllmkernels.so libjniLlmkNative.so libgomp.so.1; do
  echo "$libs" | grep -q "/$name\$" || { echo "FAIL: $name missing from the natives jar"; exit 1; }
done
for lib in $libs; do
  if ldd "$lib" | grep -E 'libcudart|libstdc\+\+'; then
    echo "FAIL: $(basename "$lib") depends on libcudart or libstdc++"; exit 1
  fi
done
echo "ldd: no libcudart, no libstdc++"
core=$(echo "$libs" | grep '/libllmkernels.so$')
# The emulated CUDA build (cuda/emulator, tests only) must never be what ships.
if grep -q "llm-kernels CUDA emulator" "$core"; then
  echo "FAIL: the natives jar holds the EMULATED CUDA library (a -Pcuda-emulated / LLMK_CUDA_EMULATION build)"; exit 1
fi
archs=$(python3 "$here/fatbin_archs.py" "$core" || true)
echo "CUDA targets: $archs"
if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then
  for want in sm_80 sm_90a; do
    echo "$archs" | grep -qw "$want" || { echo "FAIL: $want missing from the fatbinary"; exit 1; }
  done
fi
echo "package check OK"
