#include "io/tensor_map.h"
#include "models/common/weights.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <set>
#include <sstream>

#include "core/error.h"
#include "models/common/weight_cast.h"

namespace wan::models {
namespace {

// The marker tensor ComfyUI's scaled fp8 files carry; it holds no weight.
constexpr const char* kScaledFp8Marker = "scaled_fp8";
// The two names scaled fp8 files give a layer's scale, after "<layer>.".
constexpr const char* kScaleSuffixes[] = {"scale_weight", "weight_scale"};

bool has_prefix(const std::string& key, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

bool is_fp8(at::ScalarType type) {
  return type == at::kFloat8_e4m3fn || type == at::kFloat8_e5m2;
}

// "<layer>.weight" -> "<layer>."; nullopt for keys that are not a layer's weight.
std::optional<std::string> layer_prefix(const std::string& key) {
  const std::string suffix = ".weight";
  if (key.size() <= suffix.size() ||
      key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
    return std::nullopt;
  return key.substr(0, key.size() - suffix.size() + 1);
}

// The scale key of a weight key, if the checkpoint has one (`has` answers membership).
template <typename Has>
std::optional<std::string> scale_key_of(const std::string& weight_key, const Has& has) {
  const auto prefix = layer_prefix(weight_key);
  if (!prefix) return std::nullopt;
  for (const char* suffix : kScaleSuffixes)
    if (has(*prefix + suffix)) return *prefix + suffix;
  return std::nullopt;
}

// A scale as float32 shaped to broadcast over `weight`: a scalar, or [rows, 1, ...].
at::Tensor broadcast_scale(const at::Tensor& scale, const at::Tensor& weight,
                           const std::string& scale_key, const std::string& origin) {
  auto s = scale.to(at::kFloat);
  if (s.numel() == 1) return s.reshape({});
  if (weight.dim() == 0 || s.numel() != weight.size(0))
    throw LoadError(origin + ": scale '" + scale_key + "' has " + std::to_string(s.numel()) +
                    " values for a weight of shape " + io::format_shape(weight.sizes()) +
                    "; a scale is one value or one per output row");
  std::vector<int64_t> shape(static_cast<size_t>(weight.dim()), 1);
  shape[0] = weight.size(0);
  return s.reshape(shape);
}

}  // namespace

at::ScalarType kept_dtype(const LoadWeightsOptions& options, const std::string& key,
                          at::ScalarType stored) {
  if (options.dtype_of) return options.dtype_of(key, stored);
  if (options.keep_narrower && c10::isFloatingType(stored) &&
      c10::elementSize(stored) < c10::elementSize(options.dtype))
    return stored;
  return options.dtype;
}

void load_weights(torch::nn::Module& module, const io::TensorMap& tensors, const std::string& origin,
                  const LoadWeightsOptions& options) {
  std::vector<std::string> missing, misshaped;
  std::set<std::string> used{kScaledFp8Marker};
  struct Assignment {
    std::string key;
    at::Tensor target, source, scale;  // scale: undefined, or the file's scale of this weight
    std::string scale_key;
  };
  std::vector<Assignment> assignments;

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
    Assignment a{key, target, it->second, {}, {}};
    if (auto scale_key = scale_key_of(key, [&](const std::string& k) { return tensors.count(k); })) {
      used.insert(*scale_key);
      a.scale_key = *scale_key;
      a.scale = broadcast_scale(tensors.at(*scale_key), it->second, *scale_key, origin);
    }
    assignments.push_back(std::move(a));
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

  // All checks passed: assign. A tensor kept in the dtype it is stored in shares the source's
  // storage (zero-copy from a memory map).
  at::NoGradGuard no_grad;
  std::map<std::string, std::shared_ptr<torch::nn::Module>> layers;  // filled on first use
  int64_t kept_scales = 0;
  for (auto& a : assignments) {
    const auto stored = a.source.scalar_type();
    const auto device = a.target.device();
    const auto dtype =
        a.target.is_floating_point() ? kept_dtype(options, a.key, stored) : a.target.scalar_type();
    if (a.scale.defined() && !(is_fp8(stored) && dtype == stored)) {
      // Converted at load: the dequantized value in the kept dtype.
      a.target.set_data((a.source.to(at::kFloat) * a.scale).to(device, dtype).contiguous());
      continue;
    }
    a.target.set_data(a.source.to(device, dtype).contiguous());
    if (!a.scale.defined()) continue;
    // Kept in fp8: the layer owning the weight holds its scale for cast_weight.
    if (layers.empty())
      for (const auto& item : module.named_modules(/*name_prefix=*/"", /*include_self=*/false))
        layers[item.key()] = item.value();
    const auto layer_name = a.key.substr(0, a.key.size() - std::string(".weight").size());
    auto layer = layers.find(layer_name);
    if (layer == layers.end())
      throw LoadError(origin + ": scale '" + a.scale_key + "' belongs to '" + a.key +
                      "', which is not a layer's weight in this model");
    layer->second->register_buffer(kWeightScaleBuffer, a.scale.to(device));
    ++kept_scales;
  }
  spdlog::debug("{}: loaded {} tensors ({} fp8 weights kept with their scales)", origin,
                assignments.size(), kept_scales);
}

std::vector<io::TensorInfo> kept_tensors(const std::vector<io::TensorInfo>& expected,
                                         const std::map<std::string, io::TensorInfo>& stored,
                                         const LoadWeightsOptions& options) {
  std::vector<io::TensorInfo> kept, scales;
  for (const auto& info : expected) {
    auto out = info;
    auto it = stored.find(info.name);
    const auto stored_type =
        it == stored.end() ? options.dtype : io::dtype_to_scalar_type(it->second.dtype);
    const auto type =
        c10::isFloatingType(stored_type) ? kept_dtype(options, info.name, stored_type) : stored_type;
    out.dtype = io::scalar_type_to_dtype(type);
    kept.push_back(out);
    if (it == stored.end() || !(is_fp8(stored_type) && type == stored_type)) continue;
    const auto scale_key =
        scale_key_of(info.name, [&](const std::string& k) { return stored.count(k) > 0; });
    if (!scale_key) continue;
    const auto& scale = stored.at(*scale_key);
    const auto layer = info.name.substr(0, info.name.size() - std::string(".weight").size());
    scales.push_back(io::TensorInfo{layer + "." + kWeightScaleBuffer, "F32",
                                    scale.numel() == 1 ? std::vector<int64_t>{}
                                                       : std::vector<int64_t>{scale.numel()},
                                    scale.file});
  }
  kept.insert(kept.end(), scales.begin(), scales.end());
  return kept;
}

}  // namespace wan::models
