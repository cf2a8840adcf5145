/* The CUDA runtime calls the library makes, on the emulated device: one device, host memory as
 * device memory, synchronous streams. Errors follow the runtime's contract: every failing call
 * returns its code and leaves it for cudaGetLastError / cudaPeekAtLastError (per host thread). */
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "emu_internal.h"

namespace llmk_emu {

namespace {

constexpr const char* kDeviceName = "llm-kernels CUDA emulator (CPU, not a GPU)";
constexpr size_t kDefaultDynamicSmem = 48 * 1024;
constexpr size_t kOptinDynamicSmem = 227 * 1024;  // sm_90 opt-in limit per block
constexpr int kEmulatedSms = 132;                  // an H100 SXM: grid heuristics take the same paths
constexpr size_t kGlobalMemory = size_t(80) << 30;

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local cudaError_t t_detail_code = cudaSuccess;  // the error t_detail explains
thread_local std::string t_detail;                      // what the emulator adds to cudaGetErrorString
thread_local std::string t_error_text;

std::mutex g_mutex;  // allocations, streams, events, function attributes
std::map<uintptr_t, size_t> g_allocations;
std::set<cudaStream_t> g_streams;
std::set<cudaEvent_t> g_events;
std::unordered_map<const void*, size_t> g_max_dynamic_smem;

struct Event {
  std::chrono::steady_clock::time_point when{};
  bool recorded = false;
};

cudaError_t fail(cudaError_t err, const std::string& detail = std::string()) {
  set_last_error(err, detail);
  return err;
}

/* [p, p + n) inside one allocation; a device pointer past its allocation is what the hardware
 * would report as an illegal address. */
bool device_range(const void* p, size_t n) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_allocations.upper_bound(a);
  if (it == g_allocations.begin()) return false;
  --it;
  return a >= it->first && a + n <= it->first + it->second;
}

void poison(void* p, size_t n) {
  // Fresh device memory reads as NaN / large integers, never as convenient zeros.
  unsigned char* b = static_cast<unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) b[i] = (i & 3) == 3 ? 0x7f : 0xff;
}

cudaError_t allocate(void** out, size_t bytes) {
  if (!out) return fail(cudaErrorInvalidValue, "null pointer for the allocation");
  *out = nullptr;
  if (bytes == 0) return cudaSuccess;
  if (bytes > kGlobalMemory) return fail(cudaErrorMemoryAllocation);
  const size_t rounded = (bytes + 255) / 256 * 256;
  void* p = std::aligned_alloc(256, rounded);
  if (!p) return fail(cudaErrorMemoryAllocation);
  poison(p, rounded);
  std::lock_guard<std::mutex> lock(g_mutex);
  g_allocations[reinterpret_cast<uintptr_t>(p)] = bytes;
  *out = p;
  return cudaSuccess;
}

cudaError_t release(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_allocations.find(reinterpret_cast<uintptr_t>(p));
    if (it == g_allocations.end()) return fail(cudaErrorInvalidValue, "pointer was not allocated on the device");
    g_allocations.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}

cudaError_t copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
  if (!valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  if (n == 0) return cudaSuccess;
  // The device side of an explicit direction is range-checked; cudaMemcpyDefault (unified
  // addressing, which the library does not use) and host-to-host are not.
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (!dst_dev && !src_dev && kind != cudaMemcpyHostToHost && kind != cudaMemcpyDefault)
    return fail(cudaErrorInvalidMemcpyDirection);
  if ((dst_dev && !device_range(dst, n)) || (src_dev && !device_range(src, n)))
    return fail(cudaErrorInvalidValue, "copy of " + std::to_string(n) + " bytes outside a device allocation");
  std::memmove(dst, src, n);
  return cudaSuccess;
}

}  // namespace

void set_last_error(cudaError_t err, const std::string& detail) {
  t_last_error = err;
  t_detail_code = err;
  t_detail = detail;
}

size_t max_dynamic_smem(const void* kernel) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_max_dynamic_smem.find(kernel);
  return it == g_max_dynamic_smem.end() ? kDefaultDynamicSmem : it->second;
}

bool valid_stream(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return true;
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_streams.count(s) != 0;
}

}  // namespace llmk_emu

using llmk_emu::fail;

extern "C" {

cudaError_t cudaGetLastError(void) {
  const cudaError_t e = llmk_emu::t_last_error;
  llmk_emu::t_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError(void) { return llmk_emu::t_last_error; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  const char* base;
  switch (e) {
    case cudaSuccess: base = "no error"; break;
    case cudaErrorInvalidValue: base = "invalid argument"; break;
    case cudaErrorMemoryAllocation: base = "out of memory"; break;
    case cudaErrorInvalidConfiguration: base = "invalid configuration argument"; break;
    case cudaErrorInvalidDevice: base = "invalid device ordinal"; break;
    case cudaErrorInvalidResourceHandle: base = "invalid resource handle"; break;
    case cudaErrorInvalidMemcpyDirection: base = "invalid copy direction for memcpy"; break;
    case cudaErrorLaunchFailure: base = "unspecified launch failure"; break;
    case cudaErrorNotReady: base = "device not ready"; break;
    default: base = "unknown error"; break;
  }
  // The emulator knows more than the code (the barrier, the lanes, the rule): say it.
  if (e != cudaSuccess && e == llmk_emu::t_detail_code && !llmk_emu::t_detail.empty()) {
    llmk_emu::t_error_text = std::string(base) + " [CUDA emulator: " + llmk_emu::t_detail + "]";
    return llmk_emu::t_error_text.c_str();
  }
  return base;
}

cudaError_t cudaGetDeviceCount(int* count) {
  if (!count) return fail(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice); }

cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (!prop) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof(*prop));
  std::snprintf(prop->name, sizeof(prop->name), "%s", llmk_emu::kDeviceName);
  prop->major = 9;
  prop->minor = 0;
  prop->totalGlobalMem = llmk_emu::kGlobalMemory;
  prop->multiProcessorCount = llmk_emu::kEmulatedSms;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->sharedMemPerBlock = llmk_emu::kDefaultDynamicSmem;
  prop->sharedMemPerBlockOptin = llmk_emu::kOptinDynamicSmem;
  prop->regsPerBlock = 65536;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (!value) return fail(cudaErrorInvalidValue);
  if (device != 0) return fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = llmk_emu::kEmulatedSms; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(llmk_emu::kOptinDynamicSmem); return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(llmk_emu::kDefaultDynamicSmem); return cudaSuccess;
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    default: return fail(cudaErrorInvalidValue, "attribute " + std::to_string(static_cast<int>(attr)) +
                                                    " is not emulated");
  }
}

cudaError_t cudaDriverGetVersion(int* v) {
  if (!v) return fail(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* v) {
  if (!v) return fail(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (!func) return fail(cudaErrorInvalidDeviceFunction);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
    return fail(cudaErrorInvalidValue, "only MaxDynamicSharedMemorySize is emulated");
  if (value < 0 || static_cast<size_t>(value) > llmk_emu::kOptinDynamicSmem)
    return fail(cudaErrorInvalidValue, "MaxDynamicSharedMemorySize " + std::to_string(value) + " above the " +
                                           std::to_string(llmk_emu::kOptinDynamicSmem) + "-byte opt-in limit");
  std::lock_guard<std::mutex> lock(llmk_emu::g_mutex);
  llmk_emu::g_max_dynamic_smem[func] = static_cast<size_t>(value);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** p, size_t bytes) { return llmk_emu::allocate(p, bytes); }
cudaError_t cudaFree(void* p) { return llmk_emu::release(p); }
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t s) {
  if (!llmk_emu::valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  return llmk_emu::allocate(p, bytes);
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  if (!llmk_emu::valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  return llmk_emu::release(p);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  return llmk_emu::copy(dst, src, n, kind, nullptr);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t s) {
  return llmk_emu::copy(dst, src, n, kind, s);
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t n, cudaStream_t s) {
  if (!llmk_emu::valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  if (n == 0) return cudaSuccess;
  if (!llmk_emu::device_range(dst, n)) return fail(cudaErrorInvalidValue, "memset outside a device allocation");
  std::memset(dst, value, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* dst, int value, size_t n) { return cudaMemsetAsync(dst, value, n, nullptr); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) {
  (void)flags;
  if (!s) return fail(cudaErrorInvalidValue);
  *s = reinterpret_cast<cudaStream_t>(new char(0));
  std::lock_guard<std::mutex> lock(llmk_emu::g_mutex);
  llmk_emu::g_streams.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }

cudaError_t cudaStreamDestroy(cudaStream_t s) {
  {
    std::lock_guard<std::mutex> lock(llmk_emu::g_mutex);
    if (!llmk_emu::g_streams.erase(s)) return fail(cudaErrorInvalidResourceHandle);
  }
  delete reinterpret_cast<char*>(s);
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  return llmk_emu::valid_stream(s) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreate(cudaEvent_t* e) {
  if (!e) return fail(cudaErrorInvalidValue);
  *e = reinterpret_cast<cudaEvent_t>(new llmk_emu::Event());
  std::lock_guard<std::mutex> lock(llmk_emu::g_mutex);
  llmk_emu::g_events.insert(*e);
  return cudaSuccess;
}

namespace {
llmk_emu::Event* event_of(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(llmk_emu::g_mutex);
  return llmk_emu::g_events.count(e) ? reinterpret_cast<llmk_emu::Event*>(e) : nullptr;
}
}  // namespace

cudaError_t cudaEventDestroy(cudaEvent_t e) {
  {
    std::lock_guard<std::mutex> lock(llmk_emu::g_mutex);
    if (!llmk_emu::g_events.erase(e)) return fail(cudaErrorInvalidResourceHandle);
  }
  delete reinterpret_cast<llmk_emu::Event*>(e);
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  llmk_emu::Event* ev = event_of(e);
  if (!ev || !llmk_emu::valid_stream(s)) return fail(cudaErrorInvalidResourceHandle);
  ev->when = std::chrono::steady_clock::now();
  ev->recorded = true;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return event_of(e) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return fail(cudaErrorInvalidValue);
  llmk_emu::Event* a = event_of(start);
  llmk_emu::Event* b = event_of(end);
  if (!a || !b) return fail(cudaErrorInvalidResourceHandle);
  if (!a->recorded || !b->recorded) return fail(cudaErrorInvalidResourceHandle, "event not recorded");
  *ms = std::chrono::duration<float, std::milli>(b->when - a->when).count();
  return cudaSuccess;
}

}  // extern "C"
