// A block's weights gathered into one CPU buffer: what `stream` page-locks on CUDA. One exact
// buffer per block, not a page-locked copy per tensor: torch's CUDA host allocator rounds each
// allocation up to a power of two (a 14B DiT's 141.6 MB FFN weight takes 256 MiB), which would
// page-lock about 1.53 times the streamed bytes (a 14B block: 1,074 MB for 702.5 MB).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace wan::device {

// Each tensor starts at this boundary in the buffer (as CUDA's own allocations do at 512 or
// more; 64 keeps any vectorised host copy aligned).
inline constexpr int64_t kPackAlignment = 64;
inline int64_t packed_size(int64_t bytes) {
  return (bytes + kPackAlignment - 1) / kPackAlignment * kPackAlignment;
}

// The buffer bytes pack_tensors needs for these tensors.
int64_t packed_bytes(const std::vector<at::Tensor>& tensors);

// Copies `tensors` (CPU) into one uint8 buffer of packed_bytes(tensors) from `allocate` and
// returns a contiguous view of it per tensor: same dtype, shape and values. The views keep the
// buffer alive. A tensor with no elements is returned as it is.
std::vector<at::Tensor> pack_tensors(const std::vector<at::Tensor>& tensors,
                                     const std::function<at::Tensor(int64_t bytes)>& allocate);

}  // namespace wan::device
