#!/usr/bin/env bash
# Runs on the GPU machine (no Java, no network needed): the whole JUnit suite with the GPU tests,
# compute-sanitizer memcheck on the GPU tests (gather, cut cross-entropy, attention) and on a small
# CCE run of the GPU harness, racecheck on the attention GPU tests (token columns included), info,
# demo, the GPU harness, the dynamic sparse prefill quality table on CUDA and the PyTorch baselines.
# Usage: run.sh OUT_DIR   (every result lands there; the exit status is the test suite's)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: run.sh OUT_DIR}
mkdir -p "$out"
java=("$here/jre/bin/java" -Dllmkernels.library.path="$here/natives" -Dorg.bytedeco.javacpp.cachedir="$out/.javacpp-cache")
cp_test="$here/lib/llm-kernels.jar:$here/lib/llm-kernels-tests.jar:$(ls "$here"/lib/javacpp-*.jar | tr '\n' ':')"
console=$(ls "$here"/lib/junit-platform-console-standalone-*.jar)
# The bench jar holds only the command-line classes; the library and JavaCPP come from lib/.
cp_bench="$here/lib/llm-kernels-bench.jar:$here/lib/llm-kernels.jar:$(ls "$here"/lib/javacpp-*.jar | tr '\n' ':')"
bench=("${java[@]}" -cp "$cp_bench" io.github.llmkernels.bench.Main)

{ nvidia-smi || true; } > "$out/nvidia-smi.txt" 2>&1
"${bench[@]}" info > "$out/info.txt" 2>&1
cat "$out/info.txt"

echo "== tests (all, GPU included)"
"${java[@]}" -jar "$console" execute --class-path "$cp_test" --scan-class-path "$here/lib/llm-kernels-tests.jar" \
  --reports-dir "$out/junit" --details=tree --disable-banner > "$out/tests.txt" 2>&1
status=$?
tail -25 "$out/tests.txt"

echo "== native CUDA-vs-CPU tests"
for t in "$here"/native-tests/*; do
  LD_LIBRARY_PATH="$here/natives" "$t" >> "$out/native-tests.txt" 2>&1
  echo "$(basename "$t") exit $?" | tee -a "$out/native-tests.txt"
done

if command -v compute-sanitizer >/dev/null 2>&1; then
  echo "== compute-sanitizer memcheck on the GPU tests"
  compute-sanitizer --tool memcheck --target-processes all --error-exitcode 99 \
    "${java[@]}" -jar "$console" execute --class-path "$cp_test" --scan-class-path "$here/lib/llm-kernels-tests.jar" \
    --include-tag gpu --details=summary --disable-banner > "$out/sanitizer.txt" 2>&1
  echo "compute-sanitizer exit $?" | tee -a "$out/sanitizer.txt"
  grep -E 'ERROR SUMMARY|tests (successful|failed)' "$out/sanitizer.txt" || true
  echo "== compute-sanitizer racecheck on the attention GPU tests (shared-memory double buffers)"
  compute-sanitizer --tool racecheck --target-processes all --error-exitcode 99 \
    "${java[@]}" -jar "$console" execute --class-path "$cp_test" --scan-class-path "$here/lib/llm-kernels-tests.jar" \
    --include-tag gpu --include-classname '.*(SparseAttention|MergeStates|TokenColumns).*' --details=summary --disable-banner \
    > "$out/racecheck.txt" 2>&1
  echo "compute-sanitizer racecheck exit $?" | tee -a "$out/racecheck.txt"
  grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed)' "$out/racecheck.txt" || true
  echo "== compute-sanitizer memcheck on a small CCE run of gpubench (every variant, fwd and fwdbwd)"
  compute-sanitizer --tool memcheck --target-processes all --error-exitcode 99 \
    "${java[@]}" -Dllmk.gpubench.cases=cce -Dllmk.gpubench.cceShapes=300x136x5000,1x8x97 \
    -Dllmk.gpubench.cceWarmup=0 -Dllmk.gpubench.cceIters=1 -cp "$cp_bench" io.github.llmkernels.bench.Main gpubench \
    > "$out/sanitizer-cce.txt" 2>&1
  echo "compute-sanitizer (gpubench cce) exit $?" | tee -a "$out/sanitizer-cce.txt"
  grep -E 'ERROR SUMMARY|gpubench skipped' "$out/sanitizer-cce.txt" || true
else
  echo "compute-sanitizer not found" | tee "$out/sanitizer.txt"
fi

echo "== demo"
"${bench[@]}" demo --seq 131072 --attention-seq 32768 > "$out/demo.txt" 2>&1
cat "$out/demo.txt"
echo "== gpubench"
"${bench[@]}" gpubench > "$out/gpubench.txt" 2>&1
cat "$out/gpubench.txt"
echo "== dynamic sparse prefill on the GPU (synthetic heads, 8K-128K; dense flash baseline: torch_baselines attention)"
OMP_WAIT_POLICY=PASSIVE "${bench[@]}" prefillquality --backend cuda --seq 8192,16384,32768,65536,131072 \
  --svg "$out/prefill-gpu.svg" > "$out/prefill-gpu.txt" 2>&1
cat "$out/prefill-gpu.txt"
echo "== torch baselines"
python3 "$here/torch_baselines.py" > "$out/torch.txt" 2>&1
cat "$out/torch.txt"
exit $status
