/* Runs a grid: launch checks as the hardware makes them, then every CTA in turn. A CTA's threads
 * are fibers; each runs until it waits at a barrier or a warp collective or returns. When none
 * can run, either a barrier completes (all live threads wait at the same one) or the CTA is
 * stuck, and the report names every waiting site. */
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <random>
#include <set>
#include <cstring>
#include <string>

#include "emu_internal.h"

// Bounds of the static __shared__ section (emu.h); weak: a program may declare none.
extern "C" unsigned char __start_llmk_emu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" unsigned char __stop_llmk_emu_shared[] __attribute__((weak, visibility("hidden")));

namespace llmk_emu {

thread_local const ThreadCoords* g_coords = nullptr;

namespace {

// Shared memory starts as NaN in every float width (and as large integers): a read before the
// first write shows up in results instead of reading a previous CTA's data or zeros.
constexpr uint32_t kPoisonWord = 0x7fffffffu;

struct Cta {
  Fiber* scheduler = nullptr;  // the launching thread's own context
  std::vector<int> order;      // resume order of the threads (reshuffled per pass when random)
  std::vector<ThreadCtx> threads;
  std::vector<WarpSlot> warps;
  int nthreads = 0;
  KernelInvoker invoke = nullptr;
  const void* closure = nullptr;
  unsigned char* dyn_smem = nullptr;
  size_t dyn_bytes = 0;
  std::string failure;
  int tsan_start = 0, tsan_end = 0, tsan_barrier = 0;  // addresses for release/acquire
};

thread_local Cta* t_cta = nullptr;
thread_local ThreadCtx* t_thread = nullptr;
std::mutex g_device;  // one grid at a time: the static shared section has one copy

void poison(unsigned char* p, size_t bytes) {
  // A store loop, not memset: under AddressSanitizer the section's globals carry redzones, and
  // the sanitizer would check an (intercepted) memset. volatile keeps it from becoming one.
  constexpr uint64_t word = (uint64_t(kPoisonWord) << 32) | kPoisonWord;
  size_t i = 0;
  // The pattern follows the address, so that every aligned 4-byte word reads 0x7fffffff.
  auto byte_at = [&](size_t k) {
    return static_cast<unsigned char>(kPoisonWord >> (8 * (reinterpret_cast<uintptr_t>(p + k) & 3)));
  };
  for (; i < bytes && (reinterpret_cast<uintptr_t>(p + i) & 7) != 0; ++i) static_cast<volatile unsigned char*>(p)[i] = byte_at(i);
  for (; i + 8 <= bytes; i += 8) *reinterpret_cast<volatile uint64_t*>(p + i) = word;
  for (; i < bytes; ++i) static_cast<volatile unsigned char*>(p)[i] = byte_at(i);
}

void yield_to_scheduler(ThreadCtx& t, bool finished) {
  fiber_switch(*t.fiber, *t_cta->scheduler, finished);
}

void fiber_entry(void* arg) {
  ThreadCtx& t = *static_cast<ThreadCtx*>(arg);
  fiber_started(*t.fiber);
  Cta& c = *t_cta;
  tsan_acquire(&c.tsan_start);
  c.invoke(c.closure);
  t.state = ThreadState::kDone;
  t.uncommitted.clear();  // copies never waited for: their target is dead with the CTA
  t.groups.clear();
  tsan_release(&c.tsan_end);
  yield_to_scheduler(t, true);
  __builtin_trap();  // a finished fiber is never resumed
}

std::string describe_range(int first, int last) {
  return first == last ? std::to_string(first) : std::to_string(first) + "-" + std::to_string(last);
}

/* "0-31, 64" for the listed thread ids (ascending). */
std::string format_threads(const std::vector<int>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!s.empty()) s += ", ";
    s += describe_range(ids[i], ids[j]);
    i = j + 1;
  }
  return s;
}

const char* barrier_name(int kind) {
  static const char* names[] = {"__syncthreads", "__syncthreads_or", "__syncthreads_count", "__syncthreads_and"};
  return names[kind & 3];
}

/* Every thread waits at the same barrier (the common case): complete it. */
bool complete_barrier(Cta& c) {
  const ThreadCtx& first = c.threads.front();
  if (first.state != ThreadState::kBarrier) return false;
  int ors = 0, count = 0, ands = 1;
  for (const ThreadCtx& t : c.threads) {
    if (t.state != ThreadState::kBarrier || t.site.line != first.site.line || t.barrier_kind != first.barrier_kind ||
        (t.site.file != first.site.file && std::strcmp(t.site.file, first.site.file) != 0))
      return false;
    const int p = t.barrier_pred != 0;
    ors |= p;
    count += p;
    ands &= p;
  }
  const int result = first.barrier_kind == 0 ? 0 : first.barrier_kind == 1 ? ors : first.barrier_kind == 2 ? count : ands;
  for (ThreadCtx& t : c.threads) {
    t.barrier_result = result;
    t.state = ThreadState::kRunnable;
  }
  return true;
}

/* Nothing can run and no barrier completes: explain why the CTA is stuck. */
std::string describe_stuck(Cta& c) {
  bool at_barrier = false, done = false, in_warp = false;
  for (const ThreadCtx& t : c.threads) {
    at_barrier |= t.state == ThreadState::kBarrier;
    done |= t.state == ThreadState::kDone;
    in_warp |= t.state == ThreadState::kWarp;
  }
  // Only barriers wait: they differ, or some threads exited. Anything else is a deadlock.
  const std::string why = !at_barrier || in_warp ? "deadlock"
                          : done                 ? "divergent barrier (threads exited while others wait)"
                                                 : "divergent barrier";
  // Group the waiting threads by what they wait for.
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  auto add = [&](const std::string& what, int id) {
    for (auto& g : groups)
      if (g.first == what) {
        g.second.push_back(id);
        return;
      }
    groups.push_back({what, {id}});
  };
  for (const ThreadCtx& t : c.threads) {
    if (t.state == ThreadState::kBarrier) {
      add(std::string("wait at ") + barrier_name(t.barrier_kind) + " " + format_site(t.site), t.tid);
    } else if (t.state == ThreadState::kWarp) {
      const WarpSlot& w = c.warps[t.warp];
      add(std::string("wait at ") + kind_name(w.kind) + " " + format_site(t.site) + " (warp " +
              std::to_string(t.warp) + ", mask " + format_lanes(w.mask) + ", arrived lanes " +
              format_lanes(w.arrived) + ")",
          t.tid);
    } else if (t.state == ThreadState::kDone) {
      add("exited", t.tid);
    }
  }
  std::string failure = why + ": ";
  for (size_t i = 0; i < groups.size(); ++i) {
    if (i) failure += "; ";
    failure += "threads " + format_threads(groups[i].second) + " " + groups[i].first;
  }
  return failure;
}

void init_order(std::vector<int>& order, int n) {
  order.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (options().order == ResumeOrder::kReverse) std::reverse(order.begin(), order.end());
}

/* Runs one CTA to completion; returns the failure, or an empty string. */
std::string run_cta(Cta& c, std::mt19937_64& rng) {
  std::vector<Fiber>& pool = fiber_pool(static_cast<size_t>(c.nthreads));
  if (pool.size() < static_cast<size_t>(c.nthreads)) return "cannot map fiber stacks";
  for (int i = 0; i < c.nthreads; ++i) {
    ThreadCtx& t = c.threads[static_cast<size_t>(i)];
    t.state = ThreadState::kRunnable;
    t.uncommitted.clear();
    t.groups.clear();
    t.fiber = &pool[static_cast<size_t>(i)];
    fiber_reset(*t.fiber, &fiber_entry, &t);
  }
  for (WarpSlot& w : c.warps) {
    w.kind = -1;
    w.arrived = 0;
  }
  c.failure.clear();
  if (__start_llmk_emu_shared && __stop_llmk_emu_shared)
    poison(__start_llmk_emu_shared, static_cast<size_t>(__stop_llmk_emu_shared - __start_llmk_emu_shared));
  tsan_release(&c.tsan_start);
  for (;;) {
    bool ran = false;
    if (options().order == ResumeOrder::kRandom) std::shuffle(c.order.begin(), c.order.end(), rng);
    for (int id : c.order) {
      ThreadCtx& t = c.threads[static_cast<size_t>(id)];
      if (t.state != ThreadState::kRunnable) continue;
      t_thread = &t;
      g_coords = &t.coords;
      fiber_switch(*c.scheduler, *t.fiber);
      ran = true;
      if (!c.failure.empty()) return c.failure;
    }
    if (ran) continue;
    bool all_done = true;
    for (const ThreadCtx& t : c.threads) all_done = all_done && t.state == ThreadState::kDone;
    if (all_done) break;
    if (!complete_barrier(c)) return describe_stuck(c);
  }
  tsan_acquire(&c.tsan_end);
  return std::string();
}

std::string format_dim(const dim3& d) {
  return "(" + std::to_string(d.x) + ", " + std::to_string(d.y) + ", " + std::to_string(d.z) + ")";
}

cudaError_t check_config(const void* kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                         std::string& why) {
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
      threads > 1024) {
    why = "block " + format_dim(block) + ": each dimension >= 1, x, y <= 1024, z <= 64, at most 1024 threads";
    return cudaErrorInvalidConfiguration;
  }
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
    why = "grid " + format_dim(grid) + ": each dimension >= 1, x < 2^31, y, z <= 65535";
    return cudaErrorInvalidConfiguration;
  }
  const size_t limit = max_dynamic_smem(kernel);
  if (smem > limit) {
    why = std::to_string(smem) + " bytes of dynamic shared memory, the kernel allows " + std::to_string(limit) +
          (limit == 48 * 1024 ? " (above 48 KiB needs cudaFuncSetAttribute(MaxDynamicSharedMemorySize))" : "");
    return cudaErrorInvalidValue;
  }
  if (!valid_stream(stream)) {
    why = "unknown stream";
    return cudaErrorInvalidResourceHandle;
  }
  return cudaSuccess;
}

/* LLMK_EMU_KERNEL_LOG=FILE: the kernels launched by this process are appended to FILE at exit,
 * one line per kernel: its offset in the library, then the library's path. The offsets name the
 * kernels through the library's symbol table (cuda/emulator/kernel-coverage.sh). */
struct KernelLog {
  std::mutex mutex;
  std::set<std::pair<std::string, uintptr_t>> seen;
  std::string path;
  KernelLog() {
    const char* p = std::getenv("LLMK_EMU_KERNEL_LOG");
    if (p) path = p;
  }
  ~KernelLog() {
    if (path.empty() || seen.empty()) return;
    if (FILE* f = std::fopen(path.c_str(), "a")) {
      for (const auto& k : seen) std::fprintf(f, "%#lx %s\n", static_cast<unsigned long>(k.second), k.first.c_str());
      std::fclose(f);
    }
  }
};
KernelLog g_kernel_log;

void record_kernel(const void* kernel) {
  if (g_kernel_log.path.empty()) return;
  Dl_info info;
  if (!dladdr(kernel, &info) || !info.dli_fname) return;
  const uintptr_t offset = reinterpret_cast<uintptr_t>(kernel) - reinterpret_cast<uintptr_t>(info.dli_fbase);
  std::lock_guard<std::mutex> lock(g_kernel_log.mutex);
  g_kernel_log.seen.insert({info.dli_fname, offset});
}

}  // namespace

ThreadCtx& current_thread() { return *t_thread; }

WarpSlot* current_warp_slot() { return &t_cta->warps[static_cast<size_t>(t_thread->warp)]; }

unsigned lanes_in_current_warp() {
  const int left = t_cta->nthreads - t_thread->warp * 32;
  return left >= 32 ? 0xffffffffu : (1u << left) - 1u;
}

void wake_lanes(unsigned lanes) {
  const size_t base = static_cast<size_t>(t_thread->warp) * 32;
  for (int l = 0; l < 32; ++l)
    if (lanes & (1u << l)) t_cta->threads[base + static_cast<size_t>(l)].state = ThreadState::kRunnable;
}

void yield_current() { yield_to_scheduler(*t_thread, false); }

bool is_shared(const void* p, size_t bytes) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  const Cta& c = *t_cta;
  if (b >= c.dyn_smem && b + bytes <= c.dyn_smem + c.dyn_bytes) return true;
  return __start_llmk_emu_shared && b >= __start_llmk_emu_shared && b + bytes <= __stop_llmk_emu_shared;
}

std::string format_site(const Site& s) {
  if (!s.file) return "?";
  const char* slash = std::strrchr(s.file, '/');
  return std::string(slash ? slash + 1 : s.file) + ":" + std::to_string(s.line);
}

std::string format_lanes(unsigned mask) {
  std::vector<int> ids;
  for (int l = 0; l < 32; ++l)
    if (mask & (1u << l)) ids.push_back(l);
  return ids.empty() ? std::string("none") : format_threads(ids);
}

void fail_kernel(const std::string& what) {
  ThreadCtx& t = *t_thread;
  Cta& c = *t_cta;
  if (c.failure.empty()) c.failure = "thread " + std::to_string(t.tid) + ": " + what;
  t.state = ThreadState::kDone;
  yield_to_scheduler(t, false);  // the scheduler abandons the CTA; this fiber is reset later
  __builtin_trap();
}

int barrier(Site site, int kind, int pred) {
  ThreadCtx& t = *t_thread;
  t.state = ThreadState::kBarrier;
  t.site = site;
  t.barrier_kind = kind;
  t.barrier_pred = pred;
  tsan_release(&t_cta->tsan_barrier);
  yield_to_scheduler(t, false);
  tsan_acquire(&t_cta->tsan_barrier);
  return t.barrier_result;
}

unsigned char* dynamic_smem() { return t_cta->dyn_smem; }

void run_grid(const void* kernel, dim3 grid, dim3 block, size_t smem, cudaStream_t stream, KernelInvoker invoke,
              const void* closure) {
  record_kernel(kernel);
  std::string why;
  const cudaError_t bad = check_config(kernel, grid, block, smem, stream, why);
  if (bad != cudaSuccess) {
    set_last_error(bad, "launch rejected: " + why);
    return;
  }
  std::lock_guard<std::mutex> lock(g_device);
  prepare_scheduler_fiber();
  Cta c;
  c.scheduler = &scheduler_fiber();
  c.nthreads = static_cast<int>(block.x * block.y * block.z);
  init_order(c.order, c.nthreads);
  c.invoke = invoke;
  c.closure = closure;
  c.threads.resize(static_cast<size_t>(c.nthreads));
  c.warps.resize(static_cast<size_t>((c.nthreads + 31) / 32));
  // Exactly the requested bytes, so that AddressSanitizer sees an overrun of dynamic shared memory.
  const size_t dyn_bytes = smem > 0 ? smem : 1;
  struct AlignedDelete {
    void operator()(unsigned char* p) const { ::operator delete[](p, std::align_val_t(128)); }
  };
  std::unique_ptr<unsigned char[], AlignedDelete> dyn(new (std::align_val_t(128)) unsigned char[dyn_bytes]);
  c.dyn_smem = dyn.get();
  c.dyn_bytes = smem;
  Cta* saved_cta = t_cta;
  ThreadCtx* saved_thread = t_thread;
  const ThreadCoords* saved_coords = g_coords;
  t_cta = &c;
  static thread_local std::mt19937_64 rng(options().seed);
  const uint64_t ctas = uint64_t(grid.x) * grid.y * grid.z;
  std::vector<uint64_t> cta_order;
  const bool shuffled = options().order != ResumeOrder::kForward && ctas <= (1u << 20);
  if (shuffled) {
    cta_order.resize(ctas);
    for (uint64_t i = 0; i < ctas; ++i) cta_order[i] = i;
    if (options().order == ResumeOrder::kReverse) std::reverse(cta_order.begin(), cta_order.end());
    else std::shuffle(cta_order.begin(), cta_order.end(), rng);
  }
  std::string failure;
  for (uint64_t n = 0; n < ctas && failure.empty(); ++n) {
    const uint64_t linear = shuffled ? cta_order[n] : n;
    const uint3 bidx = make_uint3(static_cast<unsigned>(linear % grid.x),
                                  static_cast<unsigned>(linear / grid.x % grid.y),
                                  static_cast<unsigned>(linear / (uint64_t(grid.x) * grid.y)));
    for (int i = 0; i < c.nthreads; ++i) {
      ThreadCtx& t = c.threads[static_cast<size_t>(i)];
      t.tid = i;
      t.lane = i & 31;
      t.warp = i >> 5;
      t.coords.thread_idx = make_uint3(static_cast<unsigned>(i) % block.x, static_cast<unsigned>(i) / block.x % block.y,
                                       static_cast<unsigned>(i) / (block.x * block.y));
      t.coords.block_idx = bidx;
      t.coords.block_dim = block;
      t.coords.grid_dim = grid;
    }
    poison(c.dyn_smem, dyn_bytes);
    failure = run_cta(c, rng);
    if (!failure.empty()) failure = "block " + format_dim(dim3(bidx.x, bidx.y, bidx.z)) + ", " + failure;
  }
  t_cta = saved_cta;
  t_thread = saved_thread;
  g_coords = saved_coords;
  if (!failure.empty()) {
    std::fprintf(stderr, "llmk CUDA emulator: kernel failed: %s\n", failure.c_str());
    set_last_error(cudaErrorLaunchFailure, failure);
  }
}

const Options& options() {
  static const Options opts = [] {
    Options o;
    const char* env = std::getenv("LLMK_EMU_ORDER");
    if (!env || !*env) return o;
    const std::string v(env);
    if (v == "forward") {
      o.order = ResumeOrder::kForward;
    } else if (v == "reverse") {
      o.order = ResumeOrder::kReverse;
    } else if (v.rfind("random", 0) == 0) {
      o.order = ResumeOrder::kRandom;
      if (v.size() > 7 && v[6] == ':') o.seed = std::strtoull(v.c_str() + 7, nullptr, 10);
    } else {
      std::fprintf(stderr, "llmk CUDA emulator: LLMK_EMU_ORDER=%s not understood (forward, reverse, random[:seed]); "
                   "using forward\n", env);
    }
    return o;
  }();
  return opts;
}

}  // namespace llmk_emu
