#include "device/block_packing.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace wan::device {
namespace {
int64_t bytes_of(const at::Tensor& tensor) {
  return static_cast<int64_t>(tensor.numel()) * static_cast<int64_t>(tensor.element_size());
}
}  // namespace

int64_t packed_bytes(const std::vector<at::Tensor>& tensors) {
  int64_t total = 0;
  for (const auto& tensor : tensors) total += packed_size(bytes_of(tensor));
  return total;
}

std::vector<at::Tensor> pack_tensors(const std::vector<at::Tensor>& tensors,
                                     const std::function<at::Tensor(int64_t bytes)>& allocate) {
  const int64_t total = packed_bytes(tensors);
  std::vector<at::Tensor> views;
  views.reserve(tensors.size());
  if (total == 0) return tensors;
  const at::Tensor buffer = allocate(total);
  if (buffer.scalar_type() != at::kByte || !buffer.device().is_cpu() || buffer.numel() < total)
    throw Error("pack_tensors: the buffer must be " + std::to_string(total) +
                " bytes of uint8 CPU memory");
  int64_t offset = 0;
  for (const auto& tensor : tensors) {
    const int64_t bytes = bytes_of(tensor);
    if (bytes == 0) {
      views.push_back(tensor);
      continue;
    }
    // A byte slice viewed as the tensor's dtype, then its shape: storage offsets stay multiples
    // of the element size, as view(dtype) needs.
    at::Tensor view = buffer.narrow(0, offset, bytes).view(tensor.scalar_type()).view(tensor.sizes());
    view.copy_(tensor);
    views.push_back(std::move(view));
    offset += packed_size(bytes);
  }
  return views;
}

}  // namespace wan::device
