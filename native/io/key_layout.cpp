#include "io/key_layout.h"

#include <vector>

#include "core/error.h"

namespace wan::io {

int64_t strip_prefix(TensorMap& tensors, const std::string& prefix) {
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : tensors)
    if (key.rfind(prefix, 0) == 0) keys.push_back(key);
  for (const auto& key : keys) {
    auto node = tensors.extract(key);
    node.key() = key.substr(prefix.size());
    if (!tensors.insert(std::move(node)).inserted)
      throw LoadError("key '" + key + "' collides with '" + key.substr(prefix.size()) +
                      "' after removing the prefix '" + prefix + "'");
  }
  return static_cast<int64_t>(keys.size());
}

int64_t dequantize_scaled_fp8(TensorMap& tensors, at::ScalarType as) {
  const std::string suffixes[] = {".scale_weight", ".weight_scale"};
  std::vector<std::string> scale_keys;
  for (const auto& [key, tensor] : tensors)
    for (const auto& suffix : suffixes)
      if (key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0)
        scale_keys.push_back(key);
  int64_t count = 0;
  for (const auto& scale_key : scale_keys) {
    const auto dot = scale_key.rfind('.');
    const std::string weight_key = scale_key.substr(0, dot) + ".weight";
    auto weight = tensors.find(weight_key);
    if (weight == tensors.end())
      throw LoadError("scale '" + scale_key + "' has no weight '" + weight_key + "'");
    auto scale = tensors.at(scale_key).to(at::kFloat);
    auto w = weight->second.to(at::kFloat);
    // A per-tensor scale is a scalar; a per-row scale has one value per output channel.
    if (scale.numel() > 1) {
      if (scale.numel() != w.size(0))
        throw LoadError("scale '" + scale_key + "' has " + std::to_string(scale.numel()) +
                        " values for weight rows " + std::to_string(w.size(0)));
      std::vector<int64_t> shape(w.dim(), 1);
      shape[0] = w.size(0);
      scale = scale.reshape(shape);
    }
    weight->second = (w * scale).to(as);
    tensors.erase(scale_key);
    ++count;
  }
  tensors.erase("scaled_fp8");
  return count;
}

}  // namespace wan::io
