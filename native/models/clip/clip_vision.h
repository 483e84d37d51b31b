// The CLIP vision tower that Wan's I2V and FLF2V pipelines condition on: the open-clip ViT-H/14
// visual transformer of XLMRobertaCLIP (models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth),
// run up to the penultimate block ("use_31_block"), without post-norm or head.
//
// Mirrors VisionTransformer / AttentionBlock / SelfAttention of the official wan/modules/clip.py
// and the preprocessing of CLIPModel.visual.
#pragma once
#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/tensor_map.h"
#include "models/common/linear_layer.h"

namespace wan::models {

// MLP activation of the blocks. ViT-H/14 uses exact (erf) GELU; OpenAI's ViT-L uses QuickGELU.
enum class ClipActivation { kGelu, kQuickGelu };

// Sizes of the vision tower. Everything except `heads` (and the activation) can be read from the
// weights; see from_weights for where heads come from.
struct ClipVisionConfig {
  // The tower of Wan's CLIP: width 1280, 32 blocks, 16 heads of 80, 224 px in 14 px patches.
  static ClipVisionConfig vit_huge_14();

  // Detects the geometry from checkpoint tensors in the official layout (`visual.*`; convert
  // other layouts first with to_official_clip_layout). Heads come from, in order: `heads` when
  // set; `config_json` (the official XLMRobertaCLIP arguments such as {"vision_heads": 16}, or a
  // Hugging Face CLIPVisionConfig {"num_attention_heads": 16}, possibly under "vision_config");
  // the preset of the detected width (1280 -> vit_huge_14). Throws LoadError naming `origin` when
  // none applies or when the JSON contradicts the shapes.
  static ClipVisionConfig from_weights(const io::TensorMap& tensors, const std::string& origin,
                                       const std::string& config_json = "",
                                       std::optional<int64_t> heads = std::nullopt);

  TORCH_ARG(int64_t, image_size) = 224;
  TORCH_ARG(int64_t, patch_size) = 14;
  TORCH_ARG(int64_t, width) = 1280;
  // Blocks in the checkpoint; the tower runs layers - skip_last_layers of them.
  TORCH_ARG(int64_t, layers) = 32;
  TORCH_ARG(int64_t, heads) = 16;
  TORCH_ARG(int64_t, mlp_width) = 5120;
  // Output width of the (unused) projection head `visual.head`, [width, embed_dim].
  TORCH_ARG(int64_t, embed_dim) = 1024;
  TORCH_ARG(double, norm_eps) = 1e-5;
  TORCH_ARG(ClipActivation, activation) = ClipActivation::kGelu;
  // Wan takes the output of all blocks but the last (use_31_block=True).
  TORCH_ARG(int64_t, skip_last_layers) = 1;

 public:
  int64_t grid() const { return image_size_ / patch_size_; }
  int64_t tokens() const { return grid() * grid() + 1; }  // patches + class token
  int64_t layers_used() const { return layers_ - skip_last_layers_; }
  int64_t head_dim() const { return width_ / heads_; }
  // Throws ValidationError naming `origin` for inconsistent sizes (width % heads, ...).
  void validate(const std::string& origin) const;
};

// What encode() records besides its result, for parity checks against the official modules.
struct ClipVisionTrace {
  at::Tensor pre_norm;              // [N, tokens, width] after pos embedding + pre_norm
  std::vector<at::Tensor> blocks;   // output of each block that ran, [N, tokens, width]
};

// Mirrors SelfAttention: one fused qkv projection, then the output projection.
class ClipSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit ClipSelfAttentionImpl(const ClipVisionConfig& config);
  // x: [B, L, width] -> [B, L, width]
  at::Tensor forward(const at::Tensor& x);

 private:
  int64_t heads_;
  LinearLayer to_qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(ClipSelfAttention);

// The MLP of AttentionBlock, an nn.Sequential in the official code: its linear layers sit at
// indices 0 and 2 (1 is the activation, 3 a dropout), which the checkpoint keys keep.
class ClipMlpImpl : public torch::nn::Module {
 public:
  explicit ClipMlpImpl(const ClipVisionConfig& config);
  // x: [B, L, width] -> [B, L, width]
  at::Tensor forward(const at::Tensor& x);

 private:
  ClipActivation activation_;
  LinearLayer fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(ClipMlp);

// Mirrors AttentionBlock with post_norm=False: x + attn(norm1(x)), then x + mlp(norm2(x)).
class ClipAttentionBlockImpl : public torch::nn::Module {
 public:
  explicit ClipAttentionBlockImpl(const ClipVisionConfig& config);
  // x: [B, L, width] -> [B, L, width]
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  ClipSelfAttention attn_{nullptr};
  ClipMlp mlp_{nullptr};
};
TORCH_MODULE(ClipAttentionBlock);

// Mirrors VisionTransformer (pool_type='token', pre_norm=True) without post_norm and head, and
// holding only the blocks that run.
class ClipVisionTransformerImpl : public torch::nn::Module {
 public:
  explicit ClipVisionTransformerImpl(const ClipVisionConfig& config);
  // pixels: [N, 3, image_size, image_size], normalised -> [N, tokens, width]
  at::Tensor forward(const at::Tensor& pixels, ClipVisionTrace* trace = nullptr);

  const at::Tensor& cls_embedding() const { return cls_embedding_; }

 private:
  ClipVisionConfig config_;
  torch::nn::Conv2d patch_embedding_{nullptr};
  at::Tensor cls_embedding_, pos_embedding_;
  torch::nn::LayerNorm pre_norm_{nullptr};
  torch::nn::ModuleList transformer_{nullptr};
};
TORCH_MODULE(ClipVisionTransformer);

// The tower under the checkpoint's `visual.` prefix, with Wan's preprocessing.
class ClipVisionImpl : public torch::nn::Module {
 public:
  explicit ClipVisionImpl(const ClipVisionConfig& config);

  // images: each [3, H, W] in [-1, 1] (any size) -> [N, 3, image_size, image_size] float32:
  // bicubic resize (align_corners=False, no antialias, like F.interpolate), x * 0.5 + 0.5, then
  // CLIP mean/std normalisation. Throws ValidationError for a bad shape or dtype.
  at::Tensor preprocess(const std::vector<at::Tensor>& images) const;

  // images: each [3, H, W] in [-1, 1] -> features [N, tokens, width] float32 (computed in the
  // module's dtype). FLF2V passes the first and last frame: [2, 257, width].
  at::Tensor encode(const std::vector<at::Tensor>& images, ClipVisionTrace* trace = nullptr);

  // pixels: [N, 3, image_size, image_size] as from preprocess -> [N, tokens, width] in the
  // compute dtype (see compute_dtype).
  at::Tensor forward(const at::Tensor& pixels, ClipVisionTrace* trace = nullptr);

  // The dtype activations use: the weights' dtype, except float32 for fp16 weights on the CPU
  // (LibTorch 1.13 has no CPU half kernels; the weights stay fp16 and are widened per op).
  at::ScalarType compute_dtype() const;

  const ClipVisionConfig& config() const { return config_; }

 private:
  ClipVisionConfig config_;
  ClipVisionTransformer visual_{nullptr};
};
TORCH_MODULE(ClipVision);

// The official CLIP constants (OpenAI's image statistics), as float32 like torchvision uses them.
constexpr float kClipMean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
constexpr float kClipStd[3] = {0.26862954f, 0.26130258f, 0.27577711f};

struct LoadClipVisionOptions {
  // fp16 is what the official pipelines use (clip_dtype = torch.float16).
  TORCH_ARG(at::ScalarType, dtype) = at::kHalf;
  TORCH_ARG(at::Device, device) = at::Device(at::kCPU);
  // Overrides every other source of the head count.
  TORCH_ARG(std::optional<int64_t>, heads) = std::nullopt;
  // A JSON configuration (see ClipVisionConfig::from_weights). Empty: `<stem>_config.json` beside
  // the weights if it exists, else the safetensors metadata entry "config" if present.
  TORCH_ARG(std::string, config_path) = "";
};

// Loads the vision tower from the official checkpoint (.pth, `visual.*`; the text tower is
// ignored) or from a Hugging Face / ComfyUI CLIPVisionModel file (clip_vision_h.safetensors).
ClipVision load_clip_vision(const std::string& path, const LoadClipVisionOptions& options = {});

// Fills `model` from tensors in either layout; `origin` names the source in errors. Keys of the
// text tower, the last block, post_norm and head are ignored; any other mismatch throws LoadError.
void load_clip_vision_weights(ClipVision& model, const io::TensorMap& tensors,
                              const std::string& origin, at::ScalarType dtype);

// Names (official layout), shapes and dtype of the tensors the tower holds, computed from the
// config alone. With include_unused, also those the checkpoint has but Wan does not run (the
// skipped blocks, visual.post_norm, visual.head), i.e. the whole visual tower.
std::vector<io::TensorInfo> clip_vision_expected_tensors(const ClipVisionConfig& config,
                                                         bool include_unused = false,
                                                         at::ScalarType dtype = at::kFloat);

// Number of parameters of clip_vision_expected_tensors(config, include_unused).
int64_t clip_vision_parameter_count(const ClipVisionConfig& config, bool include_unused = false);

}  // namespace wan::models
