#!/usr/bin/env bash
# Prepares gpu-bundle/ (gitignored, at the repository root): everything needed to run the GPU
# tests and benchmarks on a machine with CUDA and an NVIDIA GPU but no Java and no network.
#
#   jre/       jlink'd Java runtime (java.base, java.logging, java.xml, java.management, jdk.unsupported, jdk.zipfs)
#   natives/   libllmkernels.so built for sm_90a only (H100/H200), the JNI glue, libgomp.so.1
#   lib/       library jar, test classes, JavaCPP, JUnit console launcher, and the bench module's own
#              command-line classes (NOT the shaded benchmarks jar: it carries libtorch, ~119 MB)
#   native-tests/  the CTest programs comparing the CUDA kernels with the CPU kernels
#   torch_baselines.py, run.sh
#
# Then, on the GPU machine:  gpu-bundle/run.sh OUT_DIR
# Environment: LLMK_BUNDLE_ARCHS (default 90a), JAVA_HOME (a JDK with jmods; default: javac's).
#
# LLMK_BUNDLE_EMULATED=1 builds gpu-bundle-emulated/ instead, with the natives built against the
# CUDA emulator (cuda/emulator): `gpu-bundle-emulated/run.sh OUT_DIR` then runs the same script
# end to end on this machine, so that the first real GPU session does not fail on the bundle
# itself. Its timings are meaningless (run.sh says so) and it is never what ships.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
emulated=${LLMK_BUNDLE_EMULATED:-0}
out="$root/gpu-bundle"
[ "$emulated" = 1 ] && out="$root/gpu-bundle-emulated"
archs=${LLMK_BUNDLE_ARCHS:-90a}
jdk=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
console_version=1.14.2

cd "$root"
echo "== building jars (tests are run on the GPU machine, not here)"
mvn -B -q -DskipTests package
mvn -B -q dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:$console_version \
  -DoutputDirectory="$root/java/target/bundle-deps" -pl java
mvn -B -q dependency:copy-dependencies -DincludeGroupIds=org.bytedeco -DoutputDirectory="$root/java/target/bundle-deps" -pl java

if [ "$emulated" = 1 ]; then
  echo "== natives against the CUDA emulator (tests only; not a GPU build)"
  # The build folder of `mvn -Pcuda-emulated`: after that run, nothing is rebuilt.
  cmake_dir="$root/java/target/cmake-emulated"
  LLMK_SKIP_CTEST=1 cmake/build-natives.sh "$cmake_dir" "$root/java/target/native-bundle" -DLLMK_CUDA_EMULATION=ON
else
  echo "== natives for sm_$archs only"
  LLMK_CUDA=ON LLMK_CUDA_ARCHS="$archs" LLMK_CUDA_PTX="" \
    cmake/build-natives.sh "$root/java/target/cmake-bundle" "$root/java/target/native-bundle" -DLLMK_CUDA_EMULATION=OFF
  cmake_dir="$root/java/target/cmake-bundle"
fi

rm -rf "$out"
mkdir -p "$out/natives" "$out/lib"
cp java/target/native-bundle/libllmkernels.so java/target/native-bundle/libgomp.so.1 "$out/natives/"
cp java/target/classes/io/github/llmkernels/internal/linux-x86_64/libjniLlmkNative.so "$out/natives/"
cp java/target/llm-kernels-*-SNAPSHOT.jar "$out/lib/llm-kernels.jar"
cp java/target/llm-kernels-*-tests.jar "$out/lib/llm-kernels-tests.jar"
# Only io.github.llmkernels.bench.* (info, demo, gpubench): the JMH classes need JMH and libtorch.
(cd bench/target/classes && "$jdk/bin/jar" --create --file "$out/lib/llm-kernels-bench.jar" \
  --main-class io.github.llmkernels.bench.Main io/github/llmkernels/bench/*.class)
cp java/target/bundle-deps/javacpp-*.jar java/target/bundle-deps/junit-platform-console-standalone-*.jar "$out/lib/"
cp bench/gpu/torch_baselines.py bench/gpu/run.sh "$out/"
# The native CUDA-vs-CPU tests (CTest programs; they load libllmkernels.so from natives/).
mkdir -p "$out/native-tests"
cp "$cmake_dir"/native-tests/llmk_*_cuda_tests "$out/native-tests/"

echo "== jlink runtime from $jdk"
rm -rf "$out/jre"
"$jdk/bin/jlink" --module-path "$jdk/jmods" \
  --add-modules java.base,java.logging,java.xml,java.management,jdk.unsupported,jdk.zipfs \
  --strip-debug --no-man-pages --no-header-files --compress=2 --output "$out/jre"

{ du -sh "$out"/*; du -sh "$out"/lib/*; } | sed "s/^/  /"
bundle=$(du -sb "$out" | cut -f1)
tracked=$(git ls-files -z | xargs -0 cat | wc -c)
echo "bundle $((bundle / 1024 / 1024)) MiB + tracked tree $((tracked / 1024)) KiB (limit 64 MiB)"
if [ $((bundle + tracked)) -gt $((64 * 1024 * 1024)) ]; then
  echo "FAIL: bundle plus tracked tree exceed 64 MiB"; exit 1
fi
