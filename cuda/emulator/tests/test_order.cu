/* LLMK_EMU_ORDER=forward|reverse|random:<seed> is honoured. The variable is read once per
 * process, so CMake registers this program once per order (ENVIRONMENT); the program reads the
 * same variable to know what to expect.
 *
 * The kernel records, through an atomic counter, the order in which threads arrive, once before
 * a barrier and once after it (each scheduling round uses the order afresh); a second kernel
 * records the order of its CTAs. No other test depends on this order: recording it is the point
 * here, and a kernel must never rely on it. */
#include <algorithm>
#include <cstdlib>
#include <string>

#include "emu_test.h"

namespace {

constexpr int kThreads = 96;  // three warps: the order spans warps, not one warp's lanes
constexpr int kCtas = 16;

__global__ void record_threads(unsigned* counter, int* order) {
  const int tid = threadIdx.x;
  order[atomicAdd(&counter[0], 1u)] = tid;
  __syncthreads();
  order[kThreads + atomicAdd(&counter[1], 1u)] = tid;
}

__global__ void record_ctas(unsigned* counter, int* order) { order[atomicAdd(counter, 1u)] = blockIdx.x; }

bool is_permutation_of_iota(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] != static_cast<int>(i)) return false;
  return true;
}

std::vector<int> iota(int n, bool reversed) {
  std::vector<int> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = reversed ? n - 1 - i : i;
  return v;
}

}  // namespace

int main() {
  const char* env = std::getenv("LLMK_EMU_ORDER");
  const std::string mode = env && *env ? env : "forward";  // unset: the default, forward
  const bool random = mode.rfind("random", 0) == 0, reverse = mode == "reverse";
  if (!random && !reverse && mode != "forward") {
    std::fprintf(stderr, "LLMK_EMU_ORDER=%s: not an order this test knows\n", mode.c_str());
    return 1;
  }
  std::printf("LLMK_EMU_ORDER=%s\n", mode.c_str());

  emu_test::DeviceBuffer<unsigned> counter(2);
  emu_test::DeviceBuffer<int> order(2 * kThreads);
  counter.fill_zero();
  llmk::launch(record_threads, dim3(1), dim3(kThreads), 0, nullptr, counter.ptr, order.ptr);
  EXPECT_LAUNCH_OK("record_threads");
  const std::vector<int> all = order.download();
  const std::vector<int> before(all.begin(), all.begin() + kThreads), after(all.begin() + kThreads, all.end());

  counter.fill_zero();
  emu_test::DeviceBuffer<int> cta_order(kCtas);
  llmk::launch(record_ctas, dim3(kCtas), dim3(1), 0, nullptr, counter.ptr, cta_order.ptr);
  EXPECT_LAUNCH_OK("record_ctas");
  const std::vector<int> ctas = cta_order.download();

  for (const std::vector<int>* v : {&before, &after, &ctas}) EXPECT(is_permutation_of_iota(*v));
  if (random) {
    // Any particular order is 1 in 96! (thread rounds) or 1 in 16! (CTAs): a fixed seed that
    // produced the identity or the reverse would mean the variable was ignored.
    EXPECT(before != iota(kThreads, false) && before != iota(kThreads, true));
    EXPECT(after != iota(kThreads, false) && after != iota(kThreads, true));
    EXPECT(before != after);  // drawn again for each round
    EXPECT(ctas != iota(kCtas, false) && ctas != iota(kCtas, true));
  } else {
    EXPECT(before == iota(kThreads, reverse));
    EXPECT(after == iota(kThreads, reverse));
    EXPECT(ctas == iota(kCtas, reverse));
  }
  return emu_test::finish(("llmk_emu_order (" + mode + ")").c_str());
}
