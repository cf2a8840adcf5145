/* CUDA runtime entry points of the C ABI: devices, memory, copies, streams, events.
 * The CUDA runtime is linked statically, so these work with only an NVIDIA driver installed;
 * without one, cudaGetDeviceCount fails (e.g. cudaErrorInsufficientDriver) and that cause is
 * reported, never raised. */
#include <cstring>
#include <string>

#include "cuda_check.cuh"

namespace llmk {

namespace {
int32_t check_ordinal(int32_t device) {
  int count = 0;
  LLMK_CUDA_TRY(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count) {
    return fail(LLMK_ERR_INVALID_ARGUMENT, "device " + std::to_string(device) +
                                               " does not exist (device count " +
                                               std::to_string(count) + ")");
  }
  return LLMK_OK;
}
}  // namespace

int32_t DeviceGuard::enter(int32_t device) {
  (void)cudaGetLastError();  // drop a stale non-sticky error from earlier work on this thread
  LLMK_TRY_STATUS(check_ordinal(device));
  int current = 0;
  LLMK_CUDA_TRY(cudaGetDevice(&current));
  if (current != device) {
    LLMK_CUDA_TRY(cudaSetDevice(device));
    previous_ = current;
  }
  return LLMK_OK;
}

}  // namespace llmk

#define LLMK_STRINGIFY2(x) #x
#define LLMK_STRINGIFY(x) LLMK_STRINGIFY2(x)

extern "C" {

int32_t llmk_cuda_compiled(void) noexcept { return 1; }

const char* llmk_cuda_compiled_archs(void) noexcept { return LLMK_CUDA_ARCH_LIST; }

int32_t llmk_cuda_device_count(int32_t* count) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(count, "count"));
    *count = 0;
    int n = 0;
    LLMK_CUDA_TRY(cudaGetDeviceCount(&n));
    *count = n;
    return LLMK_OK;
  });
}

int32_t llmk_cuda_device_info(int32_t device, char* name_out, int32_t name_capacity, int32_t* cc_major,
                              int32_t* cc_minor, int64_t* total_bytes, int32_t* multiprocessors,
                              int32_t* driver_version, int32_t* runtime_version) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(name_out, "name_out"));
    if (name_capacity < 1) return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "name_capacity must be >= 1");
    LLMK_TRY_STATUS(llmk::check_ordinal(device));  // properties need no context on the device
    cudaDeviceProp prop;
    LLMK_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
    std::strncpy(name_out, prop.name, static_cast<size_t>(name_capacity - 1));
    name_out[name_capacity - 1] = '\0';
    if (cc_major) *cc_major = prop.major;
    if (cc_minor) *cc_minor = prop.minor;
    if (total_bytes) *total_bytes = static_cast<int64_t>(prop.totalGlobalMem);
    if (multiprocessors) *multiprocessors = prop.multiProcessorCount;
    int v = 0;
    LLMK_CUDA_TRY(cudaDriverGetVersion(&v));
    if (driver_version) *driver_version = v;
    LLMK_CUDA_TRY(cudaRuntimeGetVersion(&v));
    if (runtime_version) *runtime_version = v;
    return LLMK_OK;
  });
}

int32_t llmk_cuda_malloc(int32_t device, int64_t bytes, void** out) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(out, "out"));
    LLMK_TRY_STATUS(llmk::require_non_negative(bytes, "bytes"));
    *out = nullptr;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    // cudaMalloc(0) returns a null pointer; allocate one byte so every tensor has an address.
    LLMK_CUDA_TRY(cudaMalloc(out, static_cast<size_t>(bytes > 0 ? bytes : 1)));
    return LLMK_OK;
  });
}

int32_t llmk_cuda_free(int32_t device, void* ptr) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (!ptr) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    LLMK_CUDA_TRY(cudaFree(ptr));
    return LLMK_OK;
  });
}

int32_t llmk_cuda_memcpy(int32_t device, void* dst, const void* src, int64_t bytes, int32_t kind, void* stream,
                         int32_t synchronize) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_negative(bytes, "bytes"));
    if (bytes == 0) return LLMK_OK;
    LLMK_TRY_STATUS(llmk::require_non_null(dst, "dst"));
    LLMK_TRY_STATUS(llmk::require_non_null(src, "src"));
    static const cudaMemcpyKind kinds[] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                                           cudaMemcpyDeviceToDevice, cudaMemcpyHostToHost};
    if (kind < 0 || kind > 3) {
      return llmk::fail(LLMK_ERR_INVALID_ARGUMENT, "kind must be 0..3, got " + std::to_string(kind));
    }
    llmk::DeviceGuard guard;  // a null stream means the legacy stream of *this* device
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    LLMK_CUDA_TRY(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), kinds[kind], s));
    if (synchronize) LLMK_CUDA_TRY(cudaStreamSynchronize(s));
    return LLMK_OK;
  });
}

int32_t llmk_cuda_memset(int32_t device, void* dst, int32_t value, int64_t bytes, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_negative(bytes, "bytes"));
    if (bytes == 0) return LLMK_OK;
    LLMK_TRY_STATUS(llmk::require_non_null(dst, "dst"));
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    LLMK_CUDA_TRY(cudaMemsetAsync(dst, value, static_cast<size_t>(bytes), static_cast<cudaStream_t>(stream)));
    return LLMK_OK;
  });
}

int32_t llmk_cuda_stream_create(int32_t device, void** out) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(out, "out"));
    *out = nullptr;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaStream_t s = nullptr;
    LLMK_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    *out = s;
    return LLMK_OK;
  });
}

int32_t llmk_cuda_stream_destroy(int32_t device, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (!stream) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    LLMK_CUDA_TRY(cudaStreamDestroy(static_cast<cudaStream_t>(stream)));
    return LLMK_OK;
  });
}

int32_t llmk_cuda_stream_synchronize(int32_t device, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    LLMK_CUDA_TRY(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
    return LLMK_OK;
  });
}

int32_t llmk_cuda_event_create(int32_t device, void** out) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(out, "out"));
    *out = nullptr;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    cudaEvent_t e = nullptr;
    LLMK_CUDA_TRY(cudaEventCreate(&e));
    *out = e;
    return LLMK_OK;
  });
}

int32_t llmk_cuda_event_destroy(int32_t device, void* event) noexcept {
  return llmk::guarded([&]() -> int32_t {
    if (!event) return LLMK_OK;
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    LLMK_CUDA_TRY(cudaEventDestroy(static_cast<cudaEvent_t>(event)));
    return LLMK_OK;
  });
}

int32_t llmk_cuda_event_record(int32_t device, void* event, void* stream) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(event, "event"));
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    LLMK_CUDA_TRY(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)));
    return LLMK_OK;
  });
}

int32_t llmk_cuda_event_synchronize(int32_t device, void* event) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(event, "event"));
    llmk::DeviceGuard guard;
    LLMK_TRY_STATUS(guard.enter(device));
    LLMK_CUDA_TRY(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
    return LLMK_OK;
  });
}

int32_t llmk_cuda_event_elapsed_ms(void* start, void* end, float* ms) noexcept {
  return llmk::guarded([&]() -> int32_t {
    LLMK_TRY_STATUS(llmk::require_non_null(start, "start"));
    LLMK_TRY_STATUS(llmk::require_non_null(end, "end"));
    LLMK_TRY_STATUS(llmk::require_non_null(ms, "ms"));
    LLMK_CUDA_TRY(cudaEventElapsedTime(ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(end)));
    return LLMK_OK;
  });
}

}  // extern "C"
