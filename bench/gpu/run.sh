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

# A bundle built with LLMK_BUNDLE_EMULATED=1 runs on the CUDA emulator (the CPU): the same steps
# on small shapes, to check the bundle itself. Nothing it times means anything.
emulated=0
if grep -q "CUDA emulator" "$out/info.txt"; then
  emulated=1
  echo "EMULATED CUDA device: smoke shapes, a test subset; every timing in $out is meaningless" | tee "$out/EMULATED.txt"
fi
# Which tests: all of them on a GPU; on the emulator a few gpu-tagged classes (the Maven profile
# cuda-emulated runs the whole suite there already). LLMK_BUNDLE_TESTS overrides.
if [ -n "${LLMK_BUNDLE_TESTS:-}" ]; then
  read -r -a select_tests <<< "$LLMK_BUNDLE_TESTS"
elif [ $emulated = 1 ]; then
  select_tests=(--include-tag gpu --include-classname '.*(Availability|MergeStates|RowGatherParity)Test')
else
  select_tests=()
fi

echo "== tests (all, GPU included)"
"${java[@]}" -jar "$console" execute --class-path "$cp_test" --scan-class-path "$here/lib/llm-kernels-tests.jar" \
  "${select_tests[@]}" --reports-dir "$out/junit" --details=tree --disable-banner > "$out/tests.txt" 2>&1
status=$?
tail -25 "$out/tests.txt"

echo "== native CUDA-vs-CPU tests"
: > "$out/native-tests.txt"
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

if [ $emulated = 1 ]; then
  demo_args=(--smoke --seq 2048 --attention-seq 512 --tokens 64)
  smoke=(-Dllmk.gpubench.smoke=true)
  prefill_seqs=512
else
  demo_args=(--seq 131072 --attention-seq 32768)
  smoke=()
  prefill_seqs=8192,16384,32768,65536,131072
fi
bench_smoke=("${java[@]}" "${smoke[@]}" -cp "$cp_bench" io.github.llmkernels.bench.Main)
steps_failed=0
echo "== demo"
"${bench[@]}" demo "${demo_args[@]}" > "$out/demo.txt" 2>&1 || steps_failed=$((steps_failed + 1))
cat "$out/demo.txt"
echo "== gpubench"
"${bench_smoke[@]}" gpubench > "$out/gpubench.txt" 2>&1 || steps_failed=$((steps_failed + 1))
cat "$out/gpubench.txt"
echo "== dynamic sparse prefill on the GPU (synthetic heads, $prefill_seqs; dense flash baseline: torch_baselines attention)"
OMP_WAIT_POLICY=PASSIVE "${bench[@]}" prefillquality --backend cuda --seq "$prefill_seqs" \
  --svg "$out/prefill-gpu.svg" > "$out/prefill-gpu.txt" 2>&1 || steps_failed=$((steps_failed + 1))
cat "$out/prefill-gpu.txt"
echo "== torch baselines"
if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" > /dev/null 2>&1; then
  python3 "$here/torch_baselines.py" > "$out/torch.txt" 2>&1 || steps_failed=$((steps_failed + 1))
else
  echo "skipped: no PyTorch with CUDA here" > "$out/torch.txt"
fi
cat "$out/torch.txt"
if [ $emulated = 1 ]; then
  # The smoke run's verdict: the tests and every step above ran.
  grep -q "exit [1-9]" "$out/native-tests.txt" && steps_failed=$((steps_failed + 1))
  echo "emulated bundle run: test status $status, $steps_failed failed step(s)"
  [ $status -eq 0 ] && [ $steps_failed -eq 0 ] || exit 1
fi
exit $status
