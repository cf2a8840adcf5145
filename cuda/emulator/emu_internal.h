/* Emulator internals shared by its .cpp files: fibers, the CTA being run, the per-warp
 * collective slot, sanitizer hooks. Kernel code never sees this header. */
#ifndef LLMK_CUDA_EMU_INTERNAL_H
#define LLMK_CUDA_EMU_INTERNAL_H

#include <cstdint>
#include <string>
#include <vector>

#include "emu.h"

/* The emulator's own sources are compiled without sanitizer instrumentation (its bookkeeping is
 * shared by fibers on purpose); CMake says which sanitizer the kernels run under. Accesses made
 * on a kernel's behalf (cp.async copies, ldmatrix reads, poisoning) go through memcpy/memset,
 * which the sanitizer runtimes intercept, so they are checked as the running fiber's. */
#if defined(LLMK_EMU_SANITIZER_THREAD)
#define LLMK_EMU_TSAN 1
#endif
#if defined(LLMK_EMU_SANITIZER_ADDRESS)
#define LLMK_EMU_ASAN 1
#endif

namespace llmk_emu {

/* ---- fibers (fiber.cpp) ---------------------------------------------------------------------
 * A fiber is a stack plus a saved stack pointer; switch_to saves the callee-saved registers of
 * the running context and resumes the other one (about 20 instructions, no system call). */
struct Fiber {
  void* sp = nullptr;
  unsigned char* stack = nullptr;  // lowest usable byte (a guard page lies below it)
  size_t stack_bytes = 0;
  void* tsan_fiber = nullptr;
  void* asan_fake_stack = nullptr;
};
/* Prepares f to run entry(arg) on its stack from the start. */
void fiber_reset(Fiber& f, void (*entry)(void*), void* arg);
/* The OS thread's own context (the scheduler). */
Fiber& scheduler_fiber();
/* Switches from `from` (the running context) to `to`. `to_finished`: from will never resume. */
void fiber_switch(Fiber& from, Fiber& to, bool from_finished = false);
/* Called first thing on a fiber's own stack. */
void fiber_started(Fiber& self);
std::vector<Fiber>& fiber_pool(size_t count);
void prepare_scheduler_fiber();  // once per launch, on the launching thread  // at least count fibers, stacks kept between CTAs

/* ---- sanitizer hooks: ThreadSanitizer sees each fiber as a thread, ordered only where the
 * hardware orders them (barriers, __syncwarp, the lanes feeding a collective). */
void tsan_release(void* addr);
void tsan_acquire(void* addr);

/* ---- the CTA being run (scheduler.cpp) ------------------------------------------------------ */
enum class ThreadState { kRunnable, kBarrier, kWarp, kDone };

struct CpAsyncCopy {
  void* dst;
  const void* src;
  int cp_size, src_size;
};

struct ThreadCtx {
  ThreadCoords coords;
  int tid = 0, lane = 0, warp = 0;
  ThreadState state = ThreadState::kRunnable;
  Site site{nullptr, 0};  // where it waits
  int barrier_kind = 0, barrier_pred = 0, barrier_result = 0;
  // cp.async: copies not yet committed, then committed groups oldest first.
  std::vector<CpAsyncCopy> uncommitted;
  std::vector<std::vector<CpAsyncCopy>> groups;
  Fiber* fiber = nullptr;
};

/* One pending warp collective: every participating lane publishes its operands; the last one
 * to arrive computes all lanes' results, then the others resume and read theirs. */
constexpr int kOperandWords = 16;
struct WarpSlot {
  int kind = -1;  // CollectiveKind, -1 when none is pending
  unsigned mask = 0, arrived = 0;
  Site site{nullptr, 0};
  uint64_t in[32][kOperandWords];
  uint64_t out[32][kOperandWords];
  int tsan_sync = 0;  // address used for release/acquire
};

enum CollectiveKind { kSyncwarp, kShuffle, kBallot, kMatchAny, kLdmatrix, kLdmatrixTrans, kMma, kMmaSp, kKindCount };
const char* kind_name(int kind);

/* Computes every participating lane's out[] from in[] (collectives.cpp / ptx.cpp).
 * Returns an empty string, or what is wrong (reported as a launch failure). */
std::string compute_collective(WarpSlot& w);

/* Publishes this lane's operands, waits for the rest of `mask`, and returns its out record.
 * Mismatched kind or mask, a lane outside its own mask: reported as a launch failure. */
const uint64_t* warp_collective(Site site, int kind, unsigned mask, const uint64_t* in, int words);

ThreadCtx& current_thread();
WarpSlot* current_warp_slot();
unsigned lanes_in_current_warp();      // lanes that exist (the last warp of a CTA may be partial)
void wake_lanes(unsigned lanes);        // of the current warp, after a collective completed
void yield_current();                   // the running fiber waits (state already set)
bool is_shared(const void* p, size_t bytes);  // inside this CTA's static or dynamic shared memory
std::string compute_matrix_collective(WarpSlot& w);  // ldmatrix, mma, mma.sp (ptx.cpp)
/* Stops the CTA with a launch failure (deadlock, divergent barrier, bad collective...). Never
 * returns when called on a fiber. */
[[noreturn]] void fail_kernel(const std::string& what);

std::string format_lanes(unsigned mask);
std::string format_site(const Site& s);

/* ---- runtime (runtime.cpp) ------------------------------------------------------------------ */
void set_last_error(cudaError_t err, const std::string& detail = std::string());
size_t max_dynamic_smem(const void* kernel);  // 48 KiB unless raised by cudaFuncSetAttribute
bool valid_stream(cudaStream_t s);

/* Launch options from the environment: LLMK_EMU_ORDER=forward|reverse|random[:seed]. */
enum class ResumeOrder { kForward, kReverse, kRandom };
struct Options {
  ResumeOrder order = ResumeOrder::kForward;
  uint64_t seed = 1;
};
const Options& options();

}  // namespace llmk_emu

#endif
