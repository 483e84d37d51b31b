#include "io/tensor_map.h"
#include "models/clip/clip_vision.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <torch/nn.h>

#include "core/bounded_json.h"
#include "core/error.h"
#include "io/input_file.h"
#include "io/tensor_index.h"
#include "models/clip/clip_key_layout.h"
#include "models/common/attention.h"
#include "models/common/model_config.h"
#include "models/common/weight_cast.h"
#include "models/common/weights.h"

namespace wan::models {
namespace {

// A tensor in the dtype of the activations it meets (a no-op unless they differ).
at::Tensor like(const at::Tensor& weight, const at::Tensor& x) {
  return weight.scalar_type() == x.scalar_type() ? weight : weight.to(x.scalar_type());
}

// A linear layer in the dtype of the activations it meets (its weight cast only when they
// differ, e.g. fp16 weights with float32 activations on the CPU).
at::Tensor linear(const at::Tensor& x, const LinearLayer& layer) {
  return linear_in(layer, x, x.scalar_type());
}

// The official LayerNorm subclass normalises in float32 and casts back to the input dtype.
at::Tensor layer_norm(const at::Tensor& x, const torch::nn::LayerNorm& norm) {
  const auto& options = norm->options;
  return at::layer_norm(x.to(at::kFloat), options.normalized_shape(),
                        norm->weight.to(at::kFloat), norm->bias.to(at::kFloat), options.eps())
      .to(x.scalar_type());
}

const at::Tensor& require(const io::TensorMap& tensors, const std::string& key, int64_t dims,
                          const std::string& origin) {
  auto it = tensors.find(key);
  if (it == tensors.end())
    throw LoadError(origin + ": missing " + key + "; cannot detect the CLIP vision configuration.");
  if (it->second.dim() != dims)
    throw LoadError(origin + ": " + key + " has shape " + io::format_shape(it->second.sizes()) +
                    ", expected " + std::to_string(dims) + " dimensions.");
  return it->second;
}

// Reads the head count and the non-shape settings from a configuration JSON and checks the sizes
// it states against those detected from the weights.
void apply_config_json(ClipVisionConfig& config, bool has_head, const std::string& text,
                       const std::string& origin) {
  ModelConfig top = ModelConfig::parse(text, origin);
  // A full Hugging Face CLIPConfig nests the tower's settings.
  const ModelConfig json = top.has("vision_config") ? *top.object("vision_config") : top;

  // Official XLMRobertaCLIP argument name, then the Hugging Face CLIPVisionConfig one.
  auto key = [&](const char* official, const char* hf) -> std::string {
    if (json.has(official) || !hf) return official;
    return hf;
  };
  auto check_size = [&](const char* official, const char* hf, int64_t detected) {
    if (auto v = json.integer(key(official, hf), 1, kMaxConfigDim); v && *v != detected)
      throw LoadError(json.origin() + ": configuration says " + official + "=" +
                      std::to_string(*v) + " but the weights have " + std::to_string(detected) + ".");
  };
  check_size("vision_dim", "hidden_size", config.width());
  check_size("patch_size", "patch_size", config.patch_size());
  check_size("image_size", "image_size", config.image_size());
  check_size("vision_layers", "num_hidden_layers", config.layers());
  if (has_head) {
    check_size("embed_dim", "projection_dim", config.embed_dim());
  } else if (auto v = json.integer(key("embed_dim", "projection_dim"), 1, kMaxConfigDim)) {
    config.embed_dim(*v);
  }
  if (auto v = json.number("vision_mlp_ratio", 0.0, 64.0);
      v && std::llround(*v * config.width()) != config.mlp_width())
    throw LoadError(json.origin() + ": configuration says vision_mlp_ratio=" +
                    nlohmann::json(*v).dump() + " but the weights have an MLP of width " +
                    std::to_string(config.mlp_width()) + ".");
  if (auto v = json.integer(key("vision_heads", "num_attention_heads"), 1,
                            std::min(config.width(), kMaxConfigHeads)))
    config.heads(*v);
  if (auto v = json.number(key("norm_eps", "layer_norm_eps"), 0.0, 1.0)) config.norm_eps(*v);
  if (auto name = json.string(key("activation", "hidden_act"))) {
    if (*name == "gelu") {
      config.activation(ClipActivation::kGelu);
    } else if (*name == "quick_gelu") {
      config.activation(ClipActivation::kQuickGelu);
    } else {
      throw LoadError(json.origin() + ": activation '" + printable(*name, 40) +
                      "' is not supported; expected gelu or quick_gelu.");
    }
  }
  // Settings that would change the architecture this module implements.
  if (auto v = json.boolean("vision_pre_norm"); v && !*v)
    throw LoadError(json.origin() + ": vision_pre_norm=false is not supported (Wan's tower has it).");
  if (auto v = json.boolean("vision_post_norm"); v && *v)
    throw LoadError(json.origin() + ": vision_post_norm=true (post-norm blocks) is not supported.");
  if (auto v = json.string("vision_pool"); v && *v != "token" && *v != "token_fc")
    throw LoadError(json.origin() + ": vision_pool=\"" + printable(*v, 40) +
                    "\" is not supported; the tower needs a class token.");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ClipVisionConfig

ClipVisionConfig ClipVisionConfig::vit_huge_14() {
  // open_clip ViT-H-14: head_width 80 -> 1280 / 80 = 16 heads; exact GELU; eps 1e-5.
  return ClipVisionConfig()
      .image_size(224)
      .patch_size(14)
      .width(1280)
      .layers(32)
      .heads(16)
      .mlp_width(5120)
      .embed_dim(1024)
      .norm_eps(1e-5)
      .activation(ClipActivation::kGelu)
      .skip_last_layers(1);
}

void ClipVisionConfig::validate(const std::string& origin) const {
  auto fail = [&](const std::string& what) { throw ValidationError(origin + ": " + what); };
  if (width_ <= 0 || heads_ <= 0 || width_ % heads_ != 0)
    fail("width " + std::to_string(width_) + " is not divisible into " + std::to_string(heads_) +
         " heads.");
  if (patch_size_ <= 0 || image_size_ % patch_size_ != 0)
    fail("image size " + std::to_string(image_size_) + " is not a multiple of patch size " +
         std::to_string(patch_size_) + ".");
  if (skip_last_layers_ < 0 || layers_used() < 1)
    fail("runs " + std::to_string(layers_used()) + " of " + std::to_string(layers_) +
         " blocks; at least one must run.");
  if (mlp_width_ <= 0 || norm_eps_ <= 0) fail("mlp width and norm eps must be positive.");
}

ClipVisionConfig ClipVisionConfig::from_weights(const io::TensorMap& tensors,
                                                const std::string& origin,
                                                const std::string& config_json,
                                                std::optional<int64_t> heads) {
  ClipVisionConfig config = vit_huge_14();
  const auto& patch = require(tensors, "visual.patch_embedding.weight", 4, origin);
  const auto& pos = require(tensors, "visual.pos_embedding", 3, origin);
  const auto& mlp = require(tensors, "visual.transformer.0.mlp.0.weight", 2, origin);
  config.width(patch.size(0)).patch_size(patch.size(2)).mlp_width(mlp.size(0));

  const int64_t grid = std::llround(std::sqrt(static_cast<double>(pos.size(1) - 1)));
  if (grid * grid + 1 != pos.size(1))
    throw LoadError(origin + ": visual.pos_embedding has " + std::to_string(pos.size(1)) +
                    " positions, not a square grid plus a class token.");
  config.image_size(grid * config.patch_size());

  static const std::regex block_key(R"(visual\.transformer\.(\d+)\.norm1\.weight)");
  int64_t layers = 0;
  for (const auto& item : tensors) {
    std::smatch m;
    if (std::regex_match(item.first, m, block_key))
      layers = std::max<int64_t>(layers, std::stoll(m[1]) + 1);
  }
  config.layers(layers);
  if (auto it = tensors.find("visual.head"); it != tensors.end() && it->second.dim() == 2)
    config.embed_dim(it->second.size(1));

  // No shape carries the head count: an explicit value, a configuration, or the preset of the
  // width. Guessing a head_dim would silently change the attention, so anything else fails.
  // Without a configuration, eps and activation keep the XLMRobertaCLIP / ViT-H values.
  config.heads(0);
  if (!config_json.empty()) apply_config_json(config, tensors.count("visual.head") > 0, config_json, origin);
  if (heads) config.heads(*heads);
  if (config.heads() == 0 && config.width() == vit_huge_14().width())
    config.heads(vit_huge_14().heads());
  if (config.heads() == 0)
    throw LoadError(origin + ": the number of attention heads of this CLIP vision tower (width " +
                    std::to_string(config.width()) +
                    ") is unknown; give it explicitly or put a <stem>_config.json with "
                    "\"vision_heads\" beside the weights.");
  config.validate(origin);
  return config;
}

// ---------------------------------------------------------------------------------------------
// Modules

ClipSelfAttentionImpl::ClipSelfAttentionImpl(const ClipVisionConfig& config)
    : heads_(config.heads()) {
  to_qkv_ = register_module("to_qkv", LinearLayer(config.width(), 3 * config.width()));
  proj_ = register_module("proj", LinearLayer(config.width(), config.width()));
}

at::Tensor ClipSelfAttentionImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), s = x.size(1), c = x.size(2), d = c / heads_;
  // [B, L, 3 * C] -> three [B, L, H, D]; q rows come first, as the official view(b, s, 3, n, d).
  const auto qkv = linear(x, to_qkv_).view({b, s, 3, heads_, d}).unbind(2);
  const auto out = attention(qkv[0], qkv[1], qkv[2]);  // [B, L, H, D], softmax in float32
  return linear(out.reshape({b, s, c}), proj_);
}

ClipMlpImpl::ClipMlpImpl(const ClipVisionConfig& config) : activation_(config.activation()) {
  fc1_ = register_module("0", LinearLayer(config.width(), config.mlp_width()));
  fc2_ = register_module("2", LinearLayer(config.mlp_width(), config.width()));
}

at::Tensor ClipMlpImpl::forward(const at::Tensor& x) {
  auto h = linear(x, fc1_);  // [B, L, mlp_width]
  h = activation_ == ClipActivation::kGelu ? at::gelu(h)  // exact erf form, nn.GELU()
                                           : h * at::sigmoid(1.702 * h);
  return linear(h, fc2_);
}

ClipAttentionBlockImpl::ClipAttentionBlockImpl(const ClipVisionConfig& config) {
  const auto norm = torch::nn::LayerNormOptions({config.width()}).eps(config.norm_eps());
  norm1_ = register_module("norm1", torch::nn::LayerNorm(norm));
  attn_ = register_module("attn", ClipSelfAttention(config));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(norm));
  mlp_ = register_module("mlp", ClipMlp(config));
}

at::Tensor ClipAttentionBlockImpl::forward(const at::Tensor& x) {
  auto h = x + attn_->forward(layer_norm(x, norm1_));
  return h + mlp_->forward(layer_norm(h, norm2_));
}

ClipVisionTransformerImpl::ClipVisionTransformerImpl(const ClipVisionConfig& config)
    : config_(config) {
  config.validate("ClipVisionTransformer");
  const int64_t width = config.width();
  // No bias: the official tower drops it when pre_norm is on.
  patch_embedding_ = register_module(
      "patch_embedding",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(3, width, config.patch_size())
                            .stride(config.patch_size())
                            .bias(false)));
  cls_embedding_ = register_parameter("cls_embedding", at::zeros({1, 1, width}));
  pos_embedding_ = register_parameter("pos_embedding", at::zeros({1, config.tokens(), width}));
  pre_norm_ = register_module(
      "pre_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(config.norm_eps())));
  transformer_ = register_module("transformer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.layers_used(); ++i) transformer_->push_back(ClipAttentionBlock(config));
}

at::Tensor ClipVisionTransformerImpl::forward(const at::Tensor& pixels, ClipVisionTrace* trace) {
  const int64_t n = pixels.size(0);
  // [N, 3, S, S] -> [N, width, grid, grid] -> [N, grid * grid, width]
  const auto patch_weight =
      cast_weight(*patch_embedding_, patch_embedding_->weight, pixels.scalar_type());
  auto x = at::conv2d(pixels, patch_weight, {}, {config_.patch_size(), config_.patch_size()})
               .flatten(2)
               .permute({0, 2, 1});
  x = at::cat({like(cls_embedding_, x).expand({n, -1, -1}), x}, 1);  // [N, tokens, width]
  x = layer_norm(x + like(pos_embedding_, x), pre_norm_);
  if (trace) trace->pre_norm = x;
  for (const auto& block : *transformer_) {
    x = block->as<ClipAttentionBlock>()->forward(x);
    if (trace) trace->blocks.push_back(x);
  }
  return x;
}

ClipVisionImpl::ClipVisionImpl(const ClipVisionConfig& config) : config_(config) {
  visual_ = register_module("visual", ClipVisionTransformer(config));
}

at::ScalarType ClipVisionImpl::compute_dtype() const {
  const auto& weight = visual_->cls_embedding();
  if (weight.scalar_type() == at::kHalf && weight.device().is_cpu()) return at::kFloat;
  return weight.scalar_type();
}

at::Tensor ClipVisionImpl::preprocess(const std::vector<at::Tensor>& images) const {
  if (images.empty()) throw ValidationError("ClipVision: no images to encode.");
  const int64_t size = config_.image_size();
  std::vector<at::Tensor> resized;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& image = images[i];
    if (image.dim() != 3 || image.size(0) != 3 || !image.is_floating_point())
      throw ValidationError("ClipVision: image " + std::to_string(i) + " has shape " +
                            io::format_shape(image.sizes()) + " and dtype " +
                            std::string(c10::toString(image.scalar_type())) +
                            "; expected a floating [3, H, W] in [-1, 1].");
    // Official: F.interpolate(u.transpose(0, 1), size, mode='bicubic', align_corners=False) on
    // the float32 [1, 3, H, W] frame; with an explicit size no scale factors are passed.
    resized.push_back(at::upsample_bicubic2d(image.to(at::kFloat).unsqueeze(0), {size, size},
                                             /*align_corners=*/false));
  }
  auto x = at::cat(resized, 0).mul_(0.5).add_(0.5);  // [N, 3, S, S] in [0, 1]
  const auto opts = x.options();
  const auto mean = at::tensor(at::ArrayRef<float>(kClipMean, 3), opts).view({1, 3, 1, 1});
  const auto std = at::tensor(at::ArrayRef<float>(kClipStd, 3), opts).view({1, 3, 1, 1});
  return x.sub_(mean).div_(std);  // torchvision Normalize: (x - mean) / std, in that order
}

at::Tensor ClipVisionImpl::forward(const at::Tensor& pixels, ClipVisionTrace* trace) {
  return visual_->forward(pixels, trace);
}

at::Tensor ClipVisionImpl::encode(const std::vector<at::Tensor>& images, ClipVisionTrace* trace) {
  at::NoGradGuard no_grad;
  const auto pixels =
      preprocess(images).to(visual_->cls_embedding().device(), compute_dtype());
  return forward(pixels, trace).to(at::kFloat);
}

// ---------------------------------------------------------------------------------------------
// Loading

void load_clip_vision_weights(ClipVision& model, const io::TensorMap& tensors,
                              const std::string& origin, at::ScalarType dtype) {
  const auto official = to_official_clip_layout(tensors, origin);
  const auto& config = model->config();
  LoadWeightsOptions options;
  options.dtype = dtype;
  // The text tower (official or Hugging Face), and the parts of the visual tower Wan never runs.
  options.ignore_prefixes = {"textual.",      "log_scale",       "text_model.",
                             "text_projection", "logit_scale",   "visual.head",
                             "visual.post_norm."};
  for (int64_t i = config.layers_used(); i < config.layers(); ++i)
    options.ignore_prefixes.push_back("visual.transformer." + std::to_string(i) + ".");
  load_weights(*model, official, origin, options);
}

ClipVision load_clip_vision(const std::string& path, const LoadClipVisionOptions& options) {
  namespace fs = std::filesystem;
  auto tensors = to_official_clip_layout(io::load_tensors(path), path);
  // Drop the text tower (about half of the official file) before the module is built.
  for (auto it = tensors.begin(); it != tensors.end();) {
    const auto& key = it->first;
    const bool text = key.rfind("textual.", 0) == 0 || key.rfind("text_model.", 0) == 0;
    it = text ? tensors.erase(it) : std::next(it);
  }

  // The configuration that supplies the head count, if any (see ClipVisionConfig::from_weights).
  std::string config_json, config_origin = path;
  auto read_file = [](const std::string& file) {
    return io::read_regular_file(file, kMaxConfigFileBytes);
  };
  const fs::path weights(path);
  const auto beside =
      (weights.parent_path() / (weights.stem().string() + "_config.json")).string();
  if (!options.config_path().empty()) {
    config_json = read_file(config_origin = options.config_path());
  } else if (fs::exists(beside)) {
    config_json = read_file(config_origin = beside);
  } else {
    const auto metadata = io::read_metadata(path);
    if (auto it = metadata.find("config"); it != metadata.end()) config_json = it->second;
  }

  auto config = ClipVisionConfig::from_weights(tensors, config_origin, config_json, options.heads());
  ClipVision model(config);
  model->eval();
  model->to(options.device());
  load_clip_vision_weights(model, tensors, path, options.dtype());
  spdlog::debug("load_clip_vision: {} (width {}, {} of {} blocks, {} heads) -> {}, {}", path,
               config.width(), config.layers_used(), config.layers(), config.heads(),
               options.device().str(), c10::toString(options.dtype()));
  return model;
}

// ---------------------------------------------------------------------------------------------
// Expected tensors

std::vector<io::TensorInfo> clip_vision_expected_tensors(const ClipVisionConfig& config,
                                                         bool include_unused,
                                                         at::ScalarType dtype) {
  const std::string type = io::scalar_type_to_dtype(dtype);
  const int64_t w = config.width(), m = config.mlp_width(), p = config.patch_size();
  std::vector<io::TensorInfo> out;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    io::TensorInfo info;
    info.name = name;
    info.dtype = type;
    info.shape = std::move(shape);
    out.push_back(std::move(info));
  };
  add("visual.patch_embedding.weight", {w, 3, p, p});
  add("visual.cls_embedding", {1, 1, w});
  add("visual.pos_embedding", {1, config.tokens(), w});
  add("visual.pre_norm.weight", {w});
  add("visual.pre_norm.bias", {w});
  const int64_t blocks = include_unused ? config.layers() : config.layers_used();
  for (int64_t i = 0; i < blocks; ++i) {
    const std::string b = "visual.transformer." + std::to_string(i) + ".";
    add(b + "norm1.weight", {w});
    add(b + "norm1.bias", {w});
    add(b + "attn.to_qkv.weight", {3 * w, w});
    add(b + "attn.to_qkv.bias", {3 * w});
    add(b + "attn.proj.weight", {w, w});
    add(b + "attn.proj.bias", {w});
    add(b + "norm2.weight", {w});
    add(b + "norm2.bias", {w});
    add(b + "mlp.0.weight", {m, w});
    add(b + "mlp.0.bias", {m});
    add(b + "mlp.2.weight", {w, m});
    add(b + "mlp.2.bias", {w});
  }
  if (include_unused) {
    add("visual.post_norm.weight", {w});
    add("visual.post_norm.bias", {w});
    add("visual.head", {w, config.embed_dim()});
  }
  return out;
}

int64_t clip_vision_parameter_count(const ClipVisionConfig& config, bool include_unused) {
  int64_t count = 0;
  for (const auto& info : clip_vision_expected_tensors(config, include_unused)) count += info.numel();
  return count;
}

}  // namespace wan::models
