// PyTorch checkpoints in torch.save's zip format (.pth/.pt/.bin), read without executing pickle.
#pragma once
#include <string>
#include <vector>

#include "io/tensor_map.h"

namespace wan::io {

// Loads every tensor. Storage records are mapped, not copied: loading never holds two copies.
TensorMap load_torch_zip(const std::string& path, const LoadOptions& options = {});

// Names, shapes and dtypes only; reads the pickle, never the storage records.
std::vector<TensorInfo> read_torch_zip_infos(const std::string& path);

}  // namespace wan::io
