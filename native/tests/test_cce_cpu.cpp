// CPU cut cross-entropy contracts that Java cannot reach: a call made from inside the caller's
// own OpenMP parallel region (where the library's region gets fewer threads than it planned for)
// must give the same gradients as a call from outside, even when the workspace memory it reuses
// holds stale partial sums from an earlier call.
#include <malloc.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "expect.h"
#include "llmk/llmk.h"

namespace {

struct Problem {
  int64_t n = 300, d = 24, v = 700;
  std::vector<float> e, c, lse, grad_e;
  std::vector<int32_t> targets;
  float grad_loss = 1.0f;

  Problem() : e(n * d), c(v * d), lse(n), grad_e(n * d), targets(n) {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& x : e) x = normal(rng);
    for (float& x : c) x = 0.3f * normal(rng);
    for (int64_t i = 0; i < n; ++i) targets[i] = static_cast<int32_t>(rng() % v);
  }

  llmk_cce_args args() {
    llmk_cce_args a;
    std::memset(&a, 0, sizeof a);
    a.struct_bytes = sizeof a;
    a.n = n;
    a.d = d;
    a.v = v;
    a.vocab_total = v;
    a.dtype = LLMK_F32;
    a.target_dtype = LLMK_I32;
    a.ignore_index = -100;
    a.reduction = LLMK_REDUCTION_MEAN;
    a.e = reinterpret_cast<int64_t>(e.data());
    a.c = reinterpret_cast<int64_t>(c.data());
    a.targets = reinterpret_cast<int64_t>(targets.data());
    a.lse = reinterpret_cast<int64_t>(lse.data());
    a.grad_loss = reinterpret_cast<int64_t>(&grad_loss);
    a.grad_e = reinterpret_cast<int64_t>(grad_e.data());
    return a;
  }
};

void backward_inside_a_caller_parallel_region_matches() {
  // Keep freed memory in the heap (no mmap, no trim), so the workspace reuses dirty memory.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest threshold glibc accepts
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  omp_set_num_threads(4);  // the library plans for 4 threads ...
  omp_set_max_active_levels(1);  // ... and a region inside a region gets one thread
  Problem p;
  llmk_cce_args fwd = p.args();
  EXPECT(llmk_cce_forward_cpu(&fwd) == LLMK_OK);
  llmk_cce_args outside = p.args();
  EXPECT(llmk_cce_backward_cpu(&outside) == LLMK_OK);
  const std::vector<float> expected = p.grad_e;
  std::fill(p.grad_e.begin(), p.grad_e.end(), 0.0f);
  // Dirty the heap the workspace will come from: an unwritten slot then reads as huge values.
  {
    std::vector<unsigned char> junk(8 << 20, 0x7b);
    asm volatile("" : : "r"(junk.data()) : "memory");
  }
  int32_t status = -1;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    {
      llmk_cce_args inside = p.args();  // ... but a nested region runs with one thread
      status = llmk_cce_backward_cpu(&inside);
    }
  }
  EXPECT(status == LLMK_OK);
  double worst = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) worst = std::fmax(worst, std::fabs(expected[i] - p.grad_e[i]));
  EXPECT(worst < 1e-5);
  if (worst >= 1e-5) std::fprintf(stderr, "nested backward differs by %g\n", worst);
}

void bad_struct_size_and_pass_are_rejected() {
  Problem p;
  llmk_cce_args a = p.args();
  a.struct_bytes = 8;
  EXPECT(llmk_cce_forward_cpu(&a) == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(std::strstr(llmk_last_error(), "struct_bytes") != nullptr);
  a = p.args();
  int64_t bytes = 0;
  EXPECT(llmk_cce_workspace_bytes_cpu(&a, 2, &bytes) == LLMK_ERR_INVALID_ARGUMENT);
  EXPECT(llmk_cce_workspace_bytes_cpu(&a, 1, &bytes) == LLMK_OK && bytes > 0);
  EXPECT(llmk_cce_forward_cpu(nullptr) == LLMK_ERR_INVALID_ARGUMENT);
}

}  // namespace

int main() {
  backward_inside_a_caller_parallel_region_matches();
  bad_struct_size_and_pass_are_rejected();
  std::printf("%s (%d failures)\n", failures ? "FAILED" : "OK", failures);
  return failures ? 1 : 0;
}
