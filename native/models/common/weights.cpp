#include "io/tensor_map.h"
#include "models/common/weights.h"

#include <spdlog/spdlog.h>

#include <set>
#include <sstream>

#include "core/error.h"

namespace wan::models {
namespace {

bool has_prefix(const std::string& key, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

}  // namespace

void load_weights(torch::nn::Module& module, const io::TensorMap& tensors, const std::string& origin,
                  const LoadWeightsOptions& options) {
  std::vector<std::string> missing, misshaped;
  std::set<std::string> used;
  std::vector<std::pair<at::Tensor, at::Tensor>> assignments;  // (module tensor, source)

  auto visit = [&](const std::string& key, at::Tensor& target) {
    auto it = tensors.find(key);
    if (it == tensors.end()) {
      if (!has_prefix(key, options.optional_keys)) missing.push_back(key);
      return;
    }
    used.insert(key);
    if (it->second.sizes() != target.sizes()) {
      misshaped.push_back(key + " (expected " + io::format_shape(target.sizes()) + ", found " +
                          io::format_shape(it->second.sizes()) + ")");
      return;
    }
    assignments.emplace_back(target, it->second);
  };
  for (auto& item : module.named_parameters(/*recurse=*/true)) visit(item.key(), item.value());
  for (auto& item : module.named_buffers(/*recurse=*/true)) visit(item.key(), item.value());

  std::vector<std::string> unexpected;
  for (const auto& [key, tensor] : tensors)
    if (!used.count(key) && !has_prefix(key, options.ignore_prefixes)) unexpected.push_back(key);

  if (!missing.empty() || !misshaped.empty() || !unexpected.empty()) {
    std::ostringstream msg;
    msg << origin << ": checkpoint does not match the model";
    auto list = [&](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      msg << "; " << keys.size() << " " << what << ":";
      for (size_t i = 0; i < keys.size() && i < 20; ++i) msg << " " << keys[i];
      if (keys.size() > 20) msg << " ...";
    };
    list("missing", missing);
    list("mis-shaped", misshaped);
    list("unexpected", unexpected);
    throw LoadError(msg.str());
  }

  // All checks passed: assign. A float tensor whose source already has the target dtype shares
  // the source's storage (zero-copy from a memory map).
  at::NoGradGuard no_grad;
  for (auto& [target, source] : assignments) {
    const auto dtype = target.is_floating_point() ? options.dtype : target.scalar_type();
    target.set_data(source.to(target.device(), dtype).contiguous());
  }
  spdlog::debug("{}: loaded {} tensors", origin, assignments.size());
}

}  // namespace wan::models
