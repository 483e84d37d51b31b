// The Wan2.1 diffusion transformer: WanModel (t2v, i2v, flf2v) and VaceWanModel (vace) of the
// official wan/modules/model.py and wan/modules/vace_model.py, one class for all variants.
#pragma once
#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "models/dit/wan_dit_config.h"
#include "models/dit/wan_dit_layers.h"

namespace wan::models {

// Receives intermediate outputs by the official module names: "patch_embedding" (once per
// sample, [1, dim, f, h, w]), "vace_patch_embedding" (likewise), "time_embedding" [B, dim],
// "time_projection" [B, 6 * dim], "text_embedding" [B, text_len, dim], "img_emb" [B, n, dim],
// "vace_blocks.<j>.0" / ".1" (c and its hint), "blocks.<j>" (after the VACE hint, if any) and
// "head" [B, L, out_dim * prod(patch)].
using DitDebugHook = std::function<void(const std::string& name, const at::Tensor& value)>;

// Conditioning beyond x, t and the text context.
struct DitExtras {
  // i2v: [B, 257, img_dim]; flf2v: [2B, 257, img_dim] (first and last frame of each sample).
  at::Tensor clip_fea;
  // i2v/flf2v: per sample [in_dim - C_x, F, H, W] (mask + encoded image), concatenated to x.
  std::vector<at::Tensor> y;
  // vace: per sample [vace_in_dim, F, H, W].
  std::vector<at::Tensor> vace_context;
  double vace_context_scale = 1.0;
  DitDebugHook debug;  // optional
};

// Tokens per run of a block's per-token work: 4096 x 5120 (14B) is 80 MiB per float32 [L, dim].
inline constexpr int64_t kDitTokenChunk = 4096;

struct WanDitOptions {
  explicit WanDitOptions(WanDitConfig config) : config_(std::move(config)) {}
  TORCH_ARG(WanDitConfig, config);
  // Dtype of the linear layers and convolutions (float32 for parity, bf16 for speed).
  TORCH_ARG(at::ScalarType, compute_dtype) = at::kFloat;
  // Attention queries per chunk; 0 lets attention bound its score buffer itself.
  TORCH_ARG(int64_t, attention_chunk) = 0;
  // Tokens each block's per-token work computes at a time (DitBlockContext::token_chunk); the
  // sequence-long activations are then the residual stream and the attention's q, k, v and
  // output only. 0: the whole sequence at once.
  TORCH_ARG(int64_t, token_chunk) = kDitTokenChunk;
  // VACE: while a VACE block computes, the residual stream waits in CPU memory, and while main
  // blocks compute, the VACE chain and the first hint do (models/common/activation_parking.h):
  // the device then holds one sequence-long float32 stream at a time, as for t2v, for
  // 4 x tokens x dim x 4 bytes moved per VACE block and call. Same values either way.
  TORCH_ARG(bool, park_vace) = false;
};

// Mirrors WanModel / VaceWanModel.
class WanDitImpl : public torch::nn::Module {
 public:
  explicit WanDitImpl(const WanDitOptions& options);

  // x: per sample [C_x, F, H, W]; t: [B] (or [1]) int64/float timesteps; context: per sample
  // [L_i <= text_len, text_dim]; seq_len >= tokens of every sample (F/pt * H/ph * W/pw).
  // Returns per sample [out_dim, F, H, W] float32. Throws ValidationError on bad inputs.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& x, const at::Tensor& t,
                                  const std::vector<at::Tensor>& context, int64_t seq_len,
                                  const DitExtras& extras = {});

  const WanDitConfig& config() const { return options_.config(); }
  at::ScalarType compute_dtype() const { return options_.compute_dtype(); }
  void set_attention_chunk(int64_t queries) { options_.attention_chunk(queries); }
  void set_token_chunk(int64_t tokens) { options_.token_chunk(tokens); }
  void set_park_vace(bool on) { options_.park_vace(on); }
  bool parks_vace() const { return options_.park_vace(); }

 private:
  void validate_inputs(const std::vector<at::Tensor>& x, const at::Tensor& t,
                       const std::vector<at::Tensor>& context, int64_t seq_len,
                       const DitExtras& extras) const;
  // Conv3d patch embedding of each sample, flattened and zero-padded: [B, seq_len, dim] float32.
  at::Tensor embed_patches(const torch::nn::Conv3d& conv, const std::vector<at::Tensor>& videos,
                           int64_t seq_len, const char* name, const DitExtras& extras,
                           std::vector<DitGrid>* grids) const;
  std::vector<at::Tensor> unpatchify(const at::Tensor& x, const std::vector<DitGrid>& grids) const;

  WanDitOptions options_;
  torch::nn::Conv3d patch_embedding_{nullptr}, vace_patch_embedding_{nullptr};
  LinearLayer text_in_{nullptr}, text_out_{nullptr};  // text_embedding.0 / .2
  LinearLayer time_in_{nullptr}, time_out_{nullptr};  // time_embedding.0 / .2
  LinearLayer time_projection_{nullptr};              // time_projection.1
  torch::nn::ModuleList blocks_{nullptr}, vace_blocks_{nullptr};
  Head head_{nullptr};
  MlpProj img_emb_{nullptr};
};
TORCH_MODULE(WanDit);

// The dtype policy: parameters kept in float32 whatever the weight dtype (time embedding and
// projection, head, img_emb ends, modulation, norms). The planner uses the same rule.
bool dit_keeps_float32(const std::string& key);

// The dtype load_wan_dit keeps the floating-point tensor `key` in when the file stores it as
// `stored`: float32 for the float32 parts of the dtype policy, else `weight_dtype`, or the
// stored dtype when `weight_dtype` is unset ("as stored": fp16 stays fp16, fp8 stays fp8).
at::ScalarType dit_kept_dtype(const std::string& key, at::ScalarType stored,
                              std::optional<at::ScalarType> weight_dtype);

// Reads a DiT checkpoint (safetensors, sharded index.json, .pth; ComfyUI prefix and fp8-scaled
// weights accepted), detects its configuration and loads it. Weights are kept as
// dit_kept_dtype says (unset `weight_dtype`: each as stored, fp8 with its scale); matmuls run
// in `compute_dtype`, each layer casting its weight per call.
WanDit load_wan_dit(const std::string& path,
                    std::optional<at::ScalarType> weight_dtype = at::kBFloat16,
                    at::ScalarType compute_dtype = at::kBFloat16);

}  // namespace wan::models
