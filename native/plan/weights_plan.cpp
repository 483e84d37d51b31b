#include "plan/weights_plan.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include "core/error.h"
#include "io/tensor_index.h"
#include "models/clip/clip_key_layout.h"
#include "models/clip/clip_vision.h"
#include "models/common/model_config.h"
#include "models/common/weights.h"
#include "models/dit/wan_dit.h"
#include "models/dit/wan_dit_config.h"
#include "models/t5/t5_key_layout.h"
#include "models/t5/umt5_encoder.h"
#include "models/vae/wan_vae.h"

namespace wan::plan {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "t2v-1.3B" -> "t2v_1_3b" (WanDitConfig::preset names).
std::string dit_preset_name(const std::string& preset) {
  std::string out = lower(preset);
  for (auto& c : out)
    if (c == '-' || c == '.') c = '_';
  return out;
}

void add_infos(ModelPlan& model, const std::vector<io::TensorInfo>& infos) {
  for (const auto& info : infos) {
    const int64_t b = info.nbytes();
    model.tensors.emplace_back(info.name, b);
    model.bytes += b;
  }
}

// Converted bytes of `model` given the file's stored dtypes (keys may carry `prefix`), and what
// converting holds for a moment: the file's tensors are views of its memory map (io/), kept
// ones stay so, a converted one is allocated in its kept dtype, and an fp8 one dequantized
// through float32 holds its float32 value and the scaled product (models/common/weights.cpp).
void count_converted(ModelPlan& model, const std::vector<io::TensorInfo>& file,
                     const std::string& prefix = "") {
  std::map<std::string, std::pair<std::string, int64_t>> stored;  // key -> dtype, numel
  for (const auto& info : file) {
    std::string key = info.name;
    if (!prefix.empty() && key.rfind(prefix, 0) == 0) key = key.substr(prefix.size());
    stored[key] = {info.dtype, info.numel()};
  }
  model.cpu_bytes = 0;
  model.load_transient_bytes = 0;
  model.converted.assign(model.tensors.size(), false);
  for (size_t i = 0; i < model.tensors.size(); ++i) {
    const auto& [key, bytes] = model.tensors[i];
    auto it = stored.find(key);
    if (it == stored.end() || it->second.second == 0 ||
        bytes != it->second.second * io::dtype_size(it->second.first)) {
      model.cpu_bytes += bytes;
      model.converted[i] = true;
      const bool fp8 = it != stored.end() && it->second.first.rfind("F8", 0) == 0;
      if (fp8) model.load_transient_bytes = std::max(model.load_transient_bytes, 8 * it->second.second);
    }
  }
}

// Header records by key.
std::map<std::string, io::TensorInfo> by_name(const std::vector<io::TensorInfo>& infos,
                                              const std::string& prefix = "") {
  std::map<std::string, io::TensorInfo> out;
  for (auto info : infos) {
    if (!prefix.empty() && info.name.rfind(prefix, 0) == 0) info.name = info.name.substr(prefix.size());
    out[info.name] = info;
  }
  return out;
}

std::vector<io::TensorInfo> values_of(const std::map<std::string, io::TensorInfo>& infos) {
  std::vector<io::TensorInfo> out;
  for (const auto& [key, info] : infos) out.push_back(info);
  return out;
}

// The largest of `kept` that a layer casts whole to `compute` per call (`cast` picks them).
int64_t largest_upcast(const std::vector<io::TensorInfo>& kept, at::ScalarType compute,
                       const std::function<bool(const io::TensorInfo&)>& cast) {
  const std::string compute_name = io::scalar_type_to_dtype(compute);
  int64_t largest = 0;
  for (const auto& info : kept)
    if (info.dtype != compute_name && cast(info))
      largest = std::max(largest, info.numel() * static_cast<int64_t>(c10::elementSize(compute)));
  return largest;
}

}  // namespace

ModelPlan t5_weights(const PlanContext& plan, const std::string& model_name, at::ScalarType st,
                     const std::string& tokenizer) {
  ModelPlan model;
  model.kind = ModelKind::kT5;
  // UMT5-XXL's sizes unless the file says otherwise.
  models::Umt5Config config = models::Umt5Config::umt5_xxl();
  // As the loader: fp8 stays fp8, the rest is kept in the node's dtype.
  models::LoadWeightsOptions rule;
  rule.dtype = st;
  rule.keep_narrower = true;
  std::vector<io::TensorInfo> kept;
  if (plan.preset().empty()) {
    const auto path = plan.model_file("text_encoders", model_name);
    const auto infos = io::read_tensor_infos(path.string());
    model.text_len = models::text_len_beside(path, 512);
    model.tokenizer = tokenizer;
    // Shape-only tensors on the meta device go through the loader's own renaming.
    io::TensorMap meta;
    for (const auto& info : infos)
      meta[info.name] = at::empty(info.shape, at::TensorOptions().device(at::kMeta).dtype(
                                                  io::dtype_to_scalar_type(info.dtype)));
    if (models::is_hf_t5_layout(meta)) meta = models::hf_t5_to_official(std::move(meta));
    std::map<std::string, io::TensorInfo> stored;
    for (const auto& [key, t] : meta)
      stored[key] = io::TensorInfo{key, io::scalar_type_to_dtype(t.scalar_type()), t.sizes().vec(), ""};
    try {
      config = models::Umt5Config::from_tensors(meta, path.string());
      kept = models::kept_tensors(models::umt5_expected_tensors(config, st), stored, rule);
      add_infos(model, kept);
      count_converted(model, values_of(stored));
    } catch (const LoadError& e) {
      // Another key layout: its bytes in the loader's dtype, without the tokenizer tensor.
      spdlog::warn("memory plan: {}; counting {}'s header bytes", e.what(), path.string());
      for (const auto& info : infos) {
        if (info.name == "spiece_model") continue;
        model.tensors.emplace_back(info.name, info.numel() * static_cast<int64_t>(c10::elementSize(st)));
        model.bytes += model.tensors.back().second;
      }
      model.cpu_bytes = model.bytes;
    }
  } else {
    // The file the workflow names, as published: ComfyUI's umt5_xxl_fp8_e4m3fn_scaled
    // (linear weights fp8, each with a float32 scale, embeddings and norms bf16: 6.7 GB, kept
    // as stored), or the official models_t5_umt5-xxl-enc-bf16.pth of Wan's generate.py
    // (everything bf16: 11.4 GB).
    const bool fp8_file = lower(model_name).find("fp8") != std::string::npos;
    std::map<std::string, io::TensorInfo> stored;
    for (auto info : models::umt5_expected_tensors(config, st)) {
      const bool linear = fp8_file && info.shape.size() == 2 &&
                          info.name.find("embedding") == std::string::npos;
      info.dtype = linear ? "F8_E4M3" : "BF16";
      if (linear) {
        const auto layer = info.name.substr(0, info.name.size() - std::string("weight").size());
        stored[layer + "scale_weight"] = io::TensorInfo{layer + "scale_weight", "F32", {}, ""};
      }
      stored[info.name] = info;
    }
    kept = models::kept_tensors(models::umt5_expected_tensors(config, st), stored, rule);
    add_infos(model, kept);
    count_converted(model, values_of(stored));
  }
  keep_blocks_resident(model, 0);  // block sizes for `stream`
  // The linear layers cast whole weights; the embeddings are looked up row by row.
  model.upcast_bytes = largest_upcast(kept, st, [](const io::TensorInfo& info) {
    return info.shape.size() == 2 && info.name.find("embedding") == std::string::npos;
  });
  model.t5_dim = config.dim();
  model.t5_dim_attn = config.dim_attn();
  model.t5_ffn = config.dim_ffn();
  model.t5_heads = config.num_heads();
  model.act_bytes = 4;
  return model;
}

ModelPlan vae_weights(const PlanContext& plan, const std::string& model_name,
                      at::ScalarType dtype) {
  ModelPlan model;
  model.kind = ModelKind::kVae;
  if (plan.preset().empty()) {
    const auto path = plan.model_file("vae", model_name).string();
    model.vae = models::WanVaeConfig::from_weights(io::read_tensor_infos(path), path);
  } else {
    model.vae = models::WanVaeConfig::official();
  }
  const int64_t b = static_cast<int64_t>(c10::elementSize(dtype));
  // Building the VAE allocates, in float32, every tensor but the causal 3-D kernels (which have
  // no storage until loaded): the 2-D convolutions, biases and norm scales, held until
  // load_weights replaces them (measured 17,801,856 bytes for the official VAE, the planned sum).
  int64_t built = 0;
  for (const auto& spec : models::wan_vae_expected_tensors(model.vae)) {
    model.tensors.emplace_back(spec.name, spec.numel() * b);
    model.bytes += spec.numel() * b;
    if (spec.shape.size() != 5) built += spec.numel() * 4;
  }
  // The latent normalisation buffers `mean` and `inv_std`: z_dim float32 each, moved last.
  for (const char* buffer : {"mean", "inv_std"}) {
    model.tensors.emplace_back(buffer, model.vae.z_dim * 4);
    model.bytes += model.vae.z_dim * 4;
  }
  // ComfyUI's wan_2.1_vae.safetensors is float32.
  if (plan.preset().empty()) {
    count_converted(model, io::read_tensor_infos(plan.model_file("vae", model_name).string()));
  } else {
    // Kept float32, the tensors are views of the file; converted, each is allocated once.
    model.cpu_bytes = b == 4 ? 2 * model.vae.z_dim * 4 : model.bytes;
    model.load_transient_bytes = 0;
  }
  model.load_transient_bytes += built;
  model.act_bytes = b;
  return model;
}

ModelPlan dit_weights(const PlanContext& plan, const std::string& model_name,
                      std::optional<at::ScalarType> weight_dtype, at::ScalarType compute) {
  ModelPlan model;
  model.kind = ModelKind::kDit;
  std::map<std::string, io::TensorInfo> stored;
  if (!plan.preset().empty()) {
    model.dit = models::WanDitConfig::preset(dit_preset_name(plan.preset()));
    // The file the workflow names, as ComfyUI repackages it: wan2.1_*_fp16 (everything fp16),
    // or wan2.1_*_fp8_e4m3fn (matrices and kernels fp8, the rest fp16).
    const bool fp8_file = lower(model_name).find("fp8") != std::string::npos;
    for (auto info : models::wan_dit_expected_tensors(model.dit)) {
      const bool matrix = info.shape.size() >= 2 && !models::dit_keeps_float32(info.name);
      info.dtype = fp8_file && matrix ? "F8_E4M3" : "F16";
      stored[info.name] = info;
    }
  } else {
    const auto path = plan.model_file("diffusion_models", model_name).string();
    model.dit = models::WanDitConfig::from_file(path);
    stored = by_name(io::read_tensor_infos(path), models::kComfyDitPrefix);
  }
  // As LoadDiT: without a weight dtype each tensor stays as the file stores it (fp8 with its
  // scale).
  models::LoadWeightsOptions rule;
  rule.dtype_of = [&](const std::string& key, at::ScalarType type) {
    return models::dit_kept_dtype(key, type, weight_dtype);
  };
  const auto kept = models::kept_tensors(models::wan_dit_expected_tensors(model.dit), stored, rule);
  add_infos(model, kept);
  keep_blocks_resident(model, 0);  // block sizes for `stream`
  count_converted(model, values_of(stored));
  // Every matrix and convolution kernel outside the float32 parts is cast per call.
  model.upcast_bytes = largest_upcast(
      kept, compute,
      [](const io::TensorInfo& info) {
        return info.shape.size() >= 2 && !models::dit_keeps_float32(info.name);
      });
  model.compute_bytes = static_cast<int64_t>(c10::elementSize(compute));
  return model;
}

ModelPlan clip_vision_weights(const PlanContext& plan, const std::string& model_name,
                              at::ScalarType st) {
  ModelPlan model;
  model.kind = ModelKind::kClip;
  auto config = models::ClipVisionConfig::vit_huge_14();
  if (plan.preset().empty()) {
    const auto path = plan.model_file("clip_vision", model_name);
    // Shape-only tensors on the meta device let the loader's own detection run on the header.
    io::TensorMap meta;
    for (const auto& info : io::read_tensor_infos(path.string()))
      meta[info.name] = at::empty(info.shape, at::TensorOptions().device(at::kMeta));
    std::string config_json;
    if (auto sidecar = models::ModelConfig::read(models::ModelConfig::beside(path)))
      config_json = sidecar->json().dump();
    config = models::ClipVisionConfig::from_weights(
        models::to_official_clip_layout(meta, path.string()), path.string(), config_json);
  }
  add_infos(model, models::clip_vision_expected_tensors(config, false, st));
  model.clip_width = config.width();
  model.clip_mlp = config.mlp_width();
  model.clip_heads = config.heads();
  model.clip_layers = config.layers() - config.skip_last_layers();
  model.cpu_bytes = model.bytes;  // renamed from the Hugging Face layout: counted conservatively
  model.act_bytes = static_cast<int64_t>(c10::elementSize(st));
  return model;
}

}  // namespace wan::plan
