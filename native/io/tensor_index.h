// One entry point for every weight format: safetensors, sharded safetensors (index.json) and
// PyTorch zip checkpoints (.pth/.pt/.bin). Dispatches on the file's content, not its name.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "io/tensor_map.h"

namespace wan::io {

// Loads every tensor of a checkpoint. Safetensors tensors are zero-copy views into a memory map
// (the map stays alive while any tensor uses it); .pth tensors are read record by record.
TensorMap load_tensors(const std::string& path, const LoadOptions& options = {});

// Names, shapes and dtypes only; reads headers, never tensor data.
std::vector<TensorInfo> read_tensor_infos(const std::string& path);

// The safetensors `__metadata__` (empty for .pth; merged over shards for index.json).
std::map<std::string, std::string> read_metadata(const std::string& path);

}  // namespace wan::io
