#include "media/tensor_file.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "io/safetensors.h"

namespace wan::media {
namespace {

at::Tensor float_tensor(const at::Tensor& tensor, const std::string& what) {
  if (!tensor.defined()) throw ValidationError(what + ": no tensor given");
  if (!at::isFloatingType(tensor.scalar_type()))
    throw ValidationError(what + ": expected a floating tensor, got " +
                          c10::str(tensor.scalar_type()));
  return tensor.detach().to(at::kCPU, at::kFloat).contiguous();
}

}  // namespace

void save_tensor_file(const std::string& path, const at::Tensor& tensor) {
  io::save_safetensors(path, {{"tensor", float_tensor(tensor, path)}});
}

SavedOutput save_tensor(const std::string& output_dir, const std::string& filename_prefix,
                        const at::Tensor& tensor) {
  at::Tensor t = float_tensor(tensor, "SaveTensor");
  // %width%/%height%: IMAGE [F, H, W, 3] or a latent [..., H, W].
  const bool image = t.dim() == 4 && t.size(3) == 3;
  const int64_t width = image ? t.size(2) : t.dim() >= 2 ? t.size(-1) : 0;
  const int64_t height = image ? t.size(1) : t.dim() >= 2 ? t.size(-2) : 0;
  SavedOutput saved = save_with_counter(
      output_dir, filename_prefix, "safetensors", width, height,
      [&](const std::string& temp) { io::save_safetensors(temp, {{"tensor", t}}); });
  spdlog::info("SaveTensor: {} {}", saved.path, c10::str(t.sizes()));
  return saved;
}

}  // namespace wan::media
