/* Host stand-in for the one cub call the library makes (cce.cu): DeviceRadixSort::
 * SortPairsDescending on float keys, int32 values. Same contract as cub's: a size query with
 * d_temp_storage == nullptr, a stable sort, keys ordered by their radix-sortable bits (so -0.0
 * sorts below +0.0, and NaNs by sign and payload, as cub does), bits [begin_bit, end_bit) only.
 * Only the emulated build sees this header; the real cub is a GPU-only fact. */
#ifndef LLMK_CUDA_EMU_CUB_DEVICE_RADIX_SORT_CUH
#define LLMK_CUDA_EMU_CUB_DEVICE_RADIX_SORT_CUH

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

namespace cub {

struct DeviceRadixSort {
  template <typename Key, typename Value, typename NumItems>
  static cudaError_t SortPairsDescending(void* d_temp_storage, size_t& temp_storage_bytes, const Key* keys_in,
                                         Key* keys_out, const Value* values_in, Value* values_out, NumItems num_items,
                                         int begin_bit = 0, int end_bit = sizeof(Key) * 8, cudaStream_t stream = 0) {
    static_assert(sizeof(Key) == 4, "the stand-in sorts 32-bit keys");
    (void)stream;
    if (d_temp_storage == nullptr) {
      temp_storage_bytes = 256;  // cub needs some; keep the workspace path exercised
      return cudaSuccess;
    }
    if (num_items <= 0) return cudaSuccess;
    const size_t n = static_cast<size_t>(num_items);
    std::vector<uint32_t> radix(n);
    const uint32_t span = end_bit - begin_bit >= 32 ? 0xffffffffu : ((1u << (end_bit - begin_bit)) - 1u);
    for (size_t i = 0; i < n; ++i) {
      uint32_t u;
      std::memcpy(&u, &keys_in[i], 4);
      if (std::is_floating_point<Key>::value) u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
      else if (std::is_signed<Key>::value) u ^= 0x80000000u;
      radix[i] = (u >> begin_bit) & span;
    }
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return radix[a] > radix[b]; });
    std::vector<Key> k(n);
    std::vector<Value> v(n);
    for (size_t i = 0; i < n; ++i) {
      k[i] = keys_in[order[i]];
      v[i] = values_in[order[i]];
    }
    std::copy(k.begin(), k.end(), keys_out);
    std::copy(v.begin(), v.end(), values_out);
    return cudaSuccess;
  }
};

}  // namespace cub

#endif
