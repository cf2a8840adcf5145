/* Fibers for the emulated CUDA threads: a hand-written x86-64 context switch (the callee-saved
 * general registers only: no signal-mask system call, unlike swapcontext, which costs about 12x
 * more per switch), stacks with a guard page, and the switch annotations ThreadSanitizer and
 * AddressSanitizer need to follow them.
 *
 * MXCSR and the x87 control word are not switched: kernels never change them (every fiber runs
 * with the launching thread's settings), and ldmxcsr/fldcw on every switch cost more than the
 * rest of it. */
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "emu_internal.h"

#if defined(LLMK_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(LLMK_EMU_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

#if !defined(__x86_64__)
#error "the CUDA emulator's context switch is written for x86-64"
#endif

extern "C" void llmk_emu_switch(void** save_sp, void* load_sp);
extern "C" void llmk_emu_fiber_trampoline();

// save_sp (rdi) receives the running context's stack pointer; load_sp (rsi) is resumed.
asm(R"(
  .text
  .globl llmk_emu_switch
  .hidden llmk_emu_switch
  .type llmk_emu_switch, @function
llmk_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size llmk_emu_switch, .-llmk_emu_switch

  .globl llmk_emu_fiber_trampoline
  .hidden llmk_emu_fiber_trampoline
  .type llmk_emu_fiber_trampoline, @function
llmk_emu_fiber_trampoline:
  movq %r13, %rdi
  callq *%r12
  ud2
  .size llmk_emu_fiber_trampoline, .-llmk_emu_fiber_trampoline
)");

namespace llmk_emu {

namespace {

#if defined(LLMK_EMU_ASAN) || defined(LLMK_EMU_TSAN)
constexpr size_t kStackBytes = 1024 * 1024;  // sanitizers pad frames
#else
constexpr size_t kStackBytes = 256 * 1024;
#endif

struct Stack {
  unsigned char* base = nullptr;  // mapping start (guard page)
  size_t bytes = 0;
  ~Stack() {
    if (base) munmap(base, bytes);
  }
};

struct ThreadFibers {
  Fiber scheduler;
  std::vector<Fiber> pool;
  std::vector<std::unique_ptr<Stack>> stacks;
  ~ThreadFibers() {
#if defined(LLMK_EMU_TSAN)
    for (Fiber& f : pool)
      if (f.tsan_fiber) __tsan_destroy_fiber(f.tsan_fiber);
#endif
  }
};
thread_local ThreadFibers t_fibers;

unsigned char* map_stack(std::vector<std::unique_ptr<Stack>>& keep) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto s = std::make_unique<Stack>();
  s->bytes = kStackBytes + page;
  void* p = mmap(nullptr, s->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  s->base = static_cast<unsigned char*>(p);
  mprotect(s->base, page, PROT_NONE);  // overflow faults instead of corrupting the next stack
  unsigned char* usable = s->base + page;
  keep.push_back(std::move(s));
  return usable;
}

}  // namespace

Fiber& scheduler_fiber() { return t_fibers.scheduler; }

std::vector<Fiber>& fiber_pool(size_t count) {
  ThreadFibers& tf = t_fibers;
  while (tf.pool.size() < count) {
    unsigned char* stack = map_stack(tf.stacks);
    if (!stack) {
      std::fprintf(stderr, "llmk CUDA emulator: cannot map a fiber stack\n");
      break;
    }
    Fiber f;
    f.stack = stack;
    f.stack_bytes = kStackBytes;
#if defined(LLMK_EMU_TSAN)
    f.tsan_fiber = __tsan_create_fiber(0);
#endif
    tf.pool.push_back(f);
  }
  return tf.pool;
}

void fiber_reset(Fiber& f, void (*entry)(void*), void* arg) {
#if defined(LLMK_EMU_ASAN)
  // A fiber abandoned mid-kernel (a reported failure) leaves poisoned frames behind.
  __asan_unpoison_memory_region(f.stack, f.stack_bytes);
  f.asan_fake_stack = nullptr;
#endif
  uint64_t* top = reinterpret_cast<uint64_t*>(f.stack + f.stack_bytes);  // 16-byte aligned
  // Popped by llmk_emu_switch: r15 r14 r13 r12 rbx rbp, then `ret` to the trampoline, which
  // finds rsp 16-byte aligned for its call.
  uint64_t* sp = top - 3;
  *sp = reinterpret_cast<uint64_t>(&llmk_emu_fiber_trampoline);
  *--sp = 0;                                     // rbp
  *--sp = 0;                                     // rbx
  *--sp = reinterpret_cast<uint64_t>(entry);     // r12
  *--sp = reinterpret_cast<uint64_t>(arg);       // r13
  *--sp = 0;                                     // r14
  *--sp = 0;                                     // r15
  f.sp = sp;
}

void fiber_switch(Fiber& from, Fiber& to, bool from_finished) {
#if defined(LLMK_EMU_ASAN)
  __sanitizer_start_switch_fiber(from_finished ? nullptr : &from.asan_fake_stack, to.stack, to.stack_bytes);
#else
  (void)from_finished;
#endif
#if defined(LLMK_EMU_TSAN)
  __tsan_switch_to_fiber(to.tsan_fiber, __tsan_switch_to_fiber_no_sync);
#endif
  llmk_emu_switch(&from.sp, to.sp);
#if defined(LLMK_EMU_ASAN)
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, &bottom, &size);
#endif
}

void fiber_started(Fiber& self) {
#if defined(LLMK_EMU_ASAN)
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(nullptr, &bottom, &size);
  Fiber& sched = t_fibers.scheduler;
  sched.stack = static_cast<unsigned char*>(const_cast<void*>(bottom));  // the OS thread's stack
  sched.stack_bytes = size;
#endif
  (void)self;
}

void tsan_release(void* addr) {
#if defined(LLMK_EMU_TSAN)
  __tsan_release(addr);
#else
  (void)addr;
#endif
}

void tsan_acquire(void* addr) {
#if defined(LLMK_EMU_TSAN)
  __tsan_acquire(addr);
#else
  (void)addr;
#endif
}

void prepare_scheduler_fiber() {
#if defined(LLMK_EMU_TSAN)
  Fiber& s = t_fibers.scheduler;
  if (!s.tsan_fiber) s.tsan_fiber = __tsan_get_current_fiber();
#endif
}

}  // namespace llmk_emu
