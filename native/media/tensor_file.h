// Tensors saved as safetensors: needs no codec, so a build without media saves these too.
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "media/output_files.h"

namespace wan::media {

// Float32 safetensors with the single key "tensor" (any tensor: IMAGE, WAN_LATENT, ...).
void save_tensor_file(const std::string& path, const at::Tensor& tensor);

// SaveTensor: "<prefix>_<counter:05>_.safetensors" under output_dir, as save_tensor_file.
SavedOutput save_tensor(const std::string& output_dir, const std::string& filename_prefix,
                        const at::Tensor& tensor);

}  // namespace wan::media
