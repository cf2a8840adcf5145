/* What the emulator refuses: kernels that would hang or be undefined on the GPU (divergent
 * barriers, partial or mismatched warp collectives) fail the launch with cudaErrorLaunchFailure
 * and an explanation naming the sites; launch configurations the hardware rejects fail as the
 * runtime does. Also the runtime's error contract and the shared-memory poison. */
#include <string>

#include "emu_test.h"

namespace {

/* Where a kernel's barrier or collective sits: each kernel stores __LINE__ on the line of the
 * call, and the report must name "test_checks.cu:<line>". */
__device__ int g_line[2];

std::string site(int line) { return "test_checks.cu:" + std::to_string(line); }

/* Launches, expects a launch failure, returns the emulator's explanation. The error is returned
 * once: the next cudaGetLastError says cudaSuccess. */
template <typename... P>
std::string expect_failure(const char* what, void (*kernel)(P...), dim3 block) {
  g_line[0] = g_line[1] = 0;
  llmk::launch(kernel, dim3(1), block, 0, nullptr);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaErrorLaunchFailure)
    emu_test::report(__FILE__, __LINE__, std::string(what) + ": expected cudaErrorLaunchFailure, got " +
                                             cudaGetErrorName(e));
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  return cudaGetErrorString(e);
}

// ---- divergent barriers ----------------------------------------------------------------------------
__global__ void two_barriers() {
  if (threadIdx.x < 32) {
    g_line[0] = __LINE__; __syncthreads();
  } else {
    g_line[1] = __LINE__; __syncthreads();
  }
}

__global__ void exit_before_barrier() {
  if (threadIdx.x >= 32) return;
  g_line[0] = __LINE__; __syncthreads();
}

// ---- warp collectives not reached by every lane of their mask ---------------------------------------
__global__ void shuffle_half_exits() {
  if (threadIdx.x >= 16) return;
  g_line[0] = __LINE__; (void)__shfl_xor_sync(0xffffffffu, 1, 1);
}

__global__ void ballot_half_at_barrier() {
  if (threadIdx.x < 16) {
    g_line[0] = __LINE__; (void)__ballot_sync(0xffffffffu, 1);
  } else {
    g_line[1] = __LINE__; __syncthreads();
  }
}

__global__ void mismatched_kinds() {
  if (threadIdx.x < 16) {
    g_line[0] = __LINE__; (void)__shfl_xor_sync(0xffffffffu, 1, 1);
  } else {
    g_line[1] = __LINE__; (void)__ballot_sync(0xffffffffu, 1);
  }
}

/* Lanes 16-31 name only themselves, lanes 0-15 the whole warp: the masks disagree. */
__global__ void mismatched_masks() {
  if (threadIdx.x < 16) {
    g_line[0] = __LINE__; (void)__ballot_sync(0xffffffffu, 1);
  } else {
    g_line[1] = __LINE__; (void)__ballot_sync(0xffff0000u, 1);
  }
}

__global__ void mask_without_self() {
  if (threadIdx.x == 3) {
    g_line[0] = __LINE__; __syncwarp(0x1u);
  }
}

void test_sync_failures() {
  std::string msg = expect_failure("two barriers", two_barriers, dim3(64));
  EXPECT_CONTAINS(msg, "__syncthreads");
  EXPECT_CONTAINS(msg, site(g_line[0]));
  EXPECT_CONTAINS(msg, site(g_line[1]));

  msg = expect_failure("exit before barrier", exit_before_barrier, dim3(64));
  EXPECT_CONTAINS(msg, site(g_line[0]));
  EXPECT_CONTAINS(msg, "exited");

  msg = expect_failure("shuffle, half the warp exits", shuffle_half_exits, dim3(32));
  EXPECT_CONTAINS(msg, "__shfl_sync");
  EXPECT_CONTAINS(msg, site(g_line[0]));

  msg = expect_failure("ballot, half the warp at a barrier", ballot_half_at_barrier, dim3(32));
  EXPECT_CONTAINS(msg, "__ballot_sync");
  EXPECT_CONTAINS(msg, site(g_line[0]));
  EXPECT_CONTAINS(msg, site(g_line[1]));

  msg = expect_failure("shuffle and ballot", mismatched_kinds, dim3(32));
  EXPECT_CONTAINS(msg, "__shfl_sync");
  EXPECT_CONTAINS(msg, "__ballot_sync");
  EXPECT_CONTAINS(msg, site(g_line[0]));
  EXPECT_CONTAINS(msg, site(g_line[1]));

  msg = expect_failure("mismatched masks", mismatched_masks, dim3(32));
  EXPECT_CONTAINS(msg, "__ballot_sync");
  EXPECT_CONTAINS(msg, "mask");

  msg = expect_failure("mask without the calling lane", mask_without_self, dim3(32));
  EXPECT_CONTAINS(msg, "__syncwarp");
  EXPECT_CONTAINS(msg, site(g_line[0]));
  EXPECT_CONTAINS(msg, "lane 3");
}

// ---- launch configuration --------------------------------------------------------------------------
__global__ void count_ctas(unsigned* n) {
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) atomicAdd(n, 1u);
}

void expect_config_error(dim3 grid, dim3 block, const char* what) {
  emu_test::DeviceBuffer<unsigned> n(1);
  n.fill_zero();
  llmk::launch(count_ctas, grid, block, 0, nullptr, n.ptr);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaErrorInvalidConfiguration)
    emu_test::report(__FILE__, __LINE__, std::string(what) + ": got " + cudaGetErrorName(e));
  EXPECT_EQ(n.download()[0], 0u);  // nothing ran
}

void test_launch_config() {
  expect_config_error(dim3(1), dim3(1025), "1025 threads per block");
  expect_config_error(dim3(1), dim3(1, 1, 65), "block.z = 65");
  expect_config_error(dim3(1, 65536), dim3(1), "grid.y = 65536");
  // The limits themselves are fine.
  emu_test::DeviceBuffer<unsigned> n(1);
  n.fill_zero();
  llmk::launch(count_ctas, dim3(1, 65535), dim3(1), 0, nullptr, n.ptr);
  EXPECT_LAUNCH_OK("grid.y = 65535");
  llmk::launch(count_ctas, dim3(1), dim3(1, 16, 64), 0, nullptr, n.ptr);
  EXPECT_LAUNCH_OK("block (1, 16, 64)");
  EXPECT_EQ(n.download()[0], 65536u);
}

/* Touches the first and the last byte of its dynamic shared memory. */
__global__ void big_smem(size_t bytes, unsigned char* out) {
  unsigned char* s = llmk::dynamic_smem<unsigned char>();
  s[0] = 1;
  s[bytes - 1] = 2;
  __syncthreads();
  out[0] = static_cast<unsigned char>(s[0] + s[bytes - 1]);
}

void test_dynamic_smem_limit() {
  constexpr size_t kOver = 48 * 1024 + 1, kOptIn = 227 * 1024;
  emu_test::DeviceBuffer<unsigned char> out(1);
  llmk::launch(big_smem, dim3(1), dim3(32), kOver, nullptr, kOver, out.ptr);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);  // above 48 KiB needs the opt-in
  EXPECT_EQ(cudaFuncSetAttribute(big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kOver)),
            cudaSuccess);
  out.fill_zero();
  llmk::launch(big_smem, dim3(1), dim3(32), kOver, nullptr, kOver, out.ptr);
  EXPECT_LAUNCH_OK("48 KiB + 1 after cudaFuncSetAttribute");
  EXPECT_EQ(out.download()[0], 3);
  // Beyond the sm_90 opt-in limit the attribute itself is refused.
  EXPECT_EQ(cudaFuncSetAttribute(big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kOptIn + 1)),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFuncSetAttribute(big_smem, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kOptIn)),
            cudaSuccess);
  out.fill_zero();
  llmk::launch(big_smem, dim3(1), dim3(32), kOptIn, nullptr, kOptIn, out.ptr);
  EXPECT_LAUNCH_OK("227 KiB");
  EXPECT_EQ(out.download()[0], 3);
}

/* cudaGetLastError returns an error once; cudaPeekAtLastError leaves it. */
void test_error_contract() {
  llmk::launch(count_ctas, dim3(1), dim3(2048), 0, nullptr, static_cast<unsigned*>(nullptr));
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaPeekAtLastError(), cudaSuccess);
}

// ---- shared memory poison ----------------------------------------------------------------------------
constexpr int kPoisonThreads = 64, kPoisonCtas = 3;
constexpr uint32_t kPoison = 0x7fffffffu;

/* Every thread reads its static and dynamic words before anything writes them, then writes
 * them: each CTA must start from the poison again, not from the previous CTA's values. */
__global__ void read_then_write(uint32_t* seen) {
  __shared__ uint32_t words[kPoisonThreads];
  __shared__ float floats[kPoisonThreads];
  uint32_t* dyn = llmk::dynamic_smem<uint32_t>();
  const int tid = threadIdx.x;
  uint32_t* o = seen + (blockIdx.x * kPoisonThreads + tid) * 4;
  o[0] = words[tid];
  o[1] = __float_as_uint(floats[tid]);
  o[2] = dyn[tid];
  __syncthreads();
  words[tid] = 1u + tid;
  floats[tid] = 2.0f;
  dyn[tid] = 3u + tid;
  __syncthreads();
  o[3] = words[(tid + 1) % kPoisonThreads] + dyn[(tid + 1) % kPoisonThreads];  // the writes did land
}

void test_poison() {
  emu_test::DeviceBuffer<uint32_t> seen(kPoisonCtas * kPoisonThreads * 4);
  llmk::launch(read_then_write, dim3(kPoisonCtas), dim3(kPoisonThreads), kPoisonThreads * sizeof(uint32_t), nullptr,
               seen.ptr);
  EXPECT_LAUNCH_OK("poison");
  const std::vector<uint32_t> s = seen.download();
  for (int cta = 0; cta < kPoisonCtas; ++cta)
    for (int tid = 0; tid < kPoisonThreads; ++tid) {
      const uint32_t* o = &s[static_cast<size_t>((cta * kPoisonThreads + tid) * 4)];
      EXPECT_EQ(o[0], kPoison);
      EXPECT_EQ(o[1], kPoison);
      EXPECT_EQ(o[2], kPoison);
      const uint32_t next = (tid + 1) % kPoisonThreads;
      EXPECT_EQ(o[3], (1u + next) + (3u + next));
    }
  EXPECT(std::isnan(__uint_as_float(kPoison)));  // poisoned floats read as NaN
}

/* After all the failures above, a correct kernel still runs normally (abandoned fibers reset). */
__global__ void after_failures(int* out) {
  __shared__ int s[64];
  s[threadIdx.x] = static_cast<int>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = s[63 - threadIdx.x] + __shfl_xor_sync(0xffffffffu, 1, 1);
}

void test_recovers() {
  emu_test::DeviceBuffer<int> out(64);
  llmk::launch(after_failures, dim3(2), dim3(64), 0, nullptr, out.ptr);
  EXPECT_LAUNCH_OK("after failures");
  const std::vector<int> o = out.download();
  for (int t = 0; t < 64; ++t) EXPECT_EQ(o[t], 63 - t + 1);
}

}  // namespace

int main() {
  test_sync_failures();
  test_launch_config();
  test_dynamic_smem_limit();
  test_error_contract();
  test_poison();
  test_recovers();
  return emu_test::finish("llmk_emu_checks");
}
