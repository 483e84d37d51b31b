// Building blocks of the Wan2.1 DiT, named after the classes of the official
// wan/modules/model.py and wan/modules/vace_model.py and registered under their checkpoint keys.
//
// Dtype policy (as the official code under autocast): the residual stream, time modulation,
// norms and the head run in float32; linear layers and convolutions run in the compute dtype
// carried by DitBlockContext (float32 for parity, bf16 for speed), their weights cast per call by
// linear_in (models/common/weight_cast.h) when kept in another dtype (fp16, fp8).
#pragma once
#include <ATen/ATen.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "models/common/linear_layer.h"
#include "models/common/weight_cast.h"

namespace wan::models {

// Patch-grid size (frames, height, width) of one sample after patch embedding.
using DitGrid = std::array<int64_t, 3>;

// Everything a block needs besides its input, computed once per forward.
struct DitBlockContext {
  at::Tensor e0;        // [B or 1, 6, dim] float32 time modulation (time_projection output)
  at::Tensor seq_lens;  // [B] int64 real tokens per sample; undefined when no sample is padded
  at::Tensor rope_cos;  // [B, L, 1, head_dim / 2] (float64 for float32 compute, else float32)
  at::Tensor rope_sin;  // same shape; padded positions hold cos 1 / sin 0 (left unrotated)
  at::Tensor context;   // [B, image_tokens + text_len, dim] compute dtype
  int64_t image_tokens = 0;  // leading context tokens that are CLIP image tokens (i2v/flf2v)
  at::ScalarType compute_dtype = at::kFloat;
  int64_t query_chunk = 0;  // 0: attention picks a chunk bounding its score buffer
  // Video tokens each block's per-token work (norms, projections, FFN, residual updates)
  // computes at a time, so that only the attention's q, k, v and output span the whole sequence;
  // 0: all at once.
  int64_t token_chunk = 0;
};

// Calls fn(start, length) over [0, tokens) in runs of `chunk` tokens (one run when chunk <= 0).
template <class Fn>
void for_token_chunks(int64_t tokens, int64_t chunk, Fn&& fn) {
  const int64_t step = chunk > 0 ? chunk : tokens;
  for (int64_t start = 0; start < tokens; start += step) fn(start, std::min(step, tokens - start));
}

// The compute-dtype input of tokens [start, start + length) of a block's attention.
using TokenInput = std::function<at::Tensor(int64_t start, int64_t length)>;

// Mirrors sinusoidal_embedding_1d: [B] positions -> [B, dim] float32 (computed in float64).
at::Tensor sinusoidal_embedding_1d(int64_t dim, const at::Tensor& position);

// Mirrors rope_params + the frequency split of rope_apply: per token of each grid, the rotation
// angles of the head_dim / 2 complex pairs; the first head_dim/2 - 2*(head_dim/2/3) pairs follow
// the frame index, the next head_dim/2/3 the row, the last head_dim/2/3 the column.
// Returns {cos, sin}, each [B, seq_len, 1, head_dim / 2] in `dtype`.
std::pair<at::Tensor, at::Tensor> rope_tables(const std::vector<DitGrid>& grids, int64_t seq_len,
                                              int64_t head_dim, at::ScalarType dtype,
                                              double theta = 10000.0);

// Mirrors rope_apply: rotates consecutive (real, imag) pairs of x [B, L, H, D] by the tables;
// the arithmetic runs in the tables' dtype and the result has `out_dtype`.
at::Tensor rope_apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                      at::ScalarType out_dtype);

// Mirrors WanRMSNorm: x * rsqrt(mean(x^2) + eps) * weight, computed in float32.
class WanRmsNormImpl : public torch::nn::Module {
 public:
  WanRmsNormImpl(int64_t dim, double eps);
  // x: [..., dim] -> float32 [..., dim]
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(WanRmsNorm);

struct WanLayerNormOptions {
  explicit WanLayerNormOptions(int64_t dim) : dim_(dim) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(double, eps) = 1e-6;
  TORCH_ARG(bool, elementwise_affine) = false;
};

// Mirrors WanLayerNorm (and torch.nn.LayerNorm): normalisation in float32.
class WanLayerNormImpl : public torch::nn::Module {
 public:
  explicit WanLayerNormImpl(const WanLayerNormOptions& options);
  // x: [..., dim] -> float32 [..., dim]
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight, bias;  // undefined without elementwise_affine

 private:
  WanLayerNormOptions options_;
};
TORCH_MODULE(WanLayerNorm);

struct WanAttentionOptions {
  WanAttentionOptions(int64_t dim, int64_t num_heads) : dim_(dim), num_heads_(num_heads) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(bool, qk_norm) = true;
  TORCH_ARG(double, eps) = 1e-6;
};

// Mirrors WanSelfAttention: q/k RMS-normed over the full dim, 3-D RoPE, keys limited to the real
// tokens of each sample.
class WanSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit WanSelfAttentionImpl(const WanAttentionOptions& options);
  // x: [B, L, dim] (compute dtype) -> [B, L, dim] (compute dtype)
  at::Tensor forward(const at::Tensor& x, const DitBlockContext& ctx);
  // The attention of `tokens` tokens whose input `input` gives ctx.token_chunk at a time: q, k
  // (normed, rotated) and v are filled chunk by chunk, then attended over whole. Returns the
  // heads [B, L, dim] (compute dtype) before the output projection.
  at::Tensor attend(const TokenInput& input, int64_t batch, int64_t tokens,
                    const DitBlockContext& ctx);
  at::Tensor project_out(const at::Tensor& heads, at::ScalarType compute_dtype);

 private:
  WanAttentionOptions options_;
  LinearLayer q_{nullptr}, k_{nullptr}, v_{nullptr}, o_{nullptr};
  WanRmsNorm norm_q_{nullptr}, norm_k_{nullptr};
};
TORCH_MODULE(WanSelfAttention);

// The cross-attention's keys and values of the context, computed once per block call and shared
// by every chunk of queries.
struct CrossKeysValues {
  at::Tensor k, v;          // text part [B, Lt, H, D]
  at::Tensor k_img, v_img;  // image part (i2v/flf2v) [B, Li, H, D]; undefined otherwise
};

// Mirrors WanT2VCrossAttention: queries from the video tokens, keys/values from all text_len
// context rows (zero-padded rows included, as the official code attends to them).
class WanT2VCrossAttentionImpl : public torch::nn::Module {
 public:
  explicit WanT2VCrossAttentionImpl(const WanAttentionOptions& options);
  virtual ~WanT2VCrossAttentionImpl() = default;
  // x: [B, L, dim], ctx.context: [B, Lc, dim] (compute dtype) -> [B, L, dim] (compute dtype)
  at::Tensor forward(const at::Tensor& x, const DitBlockContext& ctx);
  virtual CrossKeysValues keys_values(const DitBlockContext& ctx);
  // The queries of x (any run of tokens) over `kv`: [B, L, dim] (compute dtype).
  virtual at::Tensor attend(const at::Tensor& x, const CrossKeysValues& kv,
                            const DitBlockContext& ctx);

 protected:
  // [B, L, H, D] attention of the queries over keys and values.
  at::Tensor attend_heads(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const DitBlockContext& ctx);
  at::Tensor project_queries(const at::Tensor& x, const DitBlockContext& ctx);
  at::Tensor project_out(const at::Tensor& heads, const DitBlockContext& ctx);

  WanAttentionOptions options_;
  LinearLayer q_{nullptr}, k_{nullptr}, v_{nullptr}, o_{nullptr};
  WanRmsNorm norm_q_{nullptr}, norm_k_{nullptr};
};
TORCH_MODULE(WanT2VCrossAttention);

// Mirrors WanI2VCrossAttention: the leading image tokens of the context get their own key/value
// path (k_img, v_img, norm_k_img); the two attentions are summed before `o`.
class WanI2VCrossAttentionImpl : public WanT2VCrossAttentionImpl {
 public:
  explicit WanI2VCrossAttentionImpl(const WanAttentionOptions& options);
  CrossKeysValues keys_values(const DitBlockContext& ctx) override;
  at::Tensor attend(const at::Tensor& x, const CrossKeysValues& kv,
                    const DitBlockContext& ctx) override;

 private:
  LinearLayer k_img_{nullptr}, v_img_{nullptr};
  WanRmsNorm norm_k_img_{nullptr};
};
TORCH_MODULE(WanI2VCrossAttention);

struct WanAttentionBlockOptions {
  WanAttentionBlockOptions(int64_t dim, int64_t ffn_dim, int64_t num_heads)
      : dim_(dim), ffn_dim_(ffn_dim), num_heads_(num_heads) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, ffn_dim);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(bool, qk_norm) = true;
  TORCH_ARG(bool, cross_attn_norm) = true;
  TORCH_ARG(double, eps) = 1e-6;
  // i2v/flf2v blocks use WanI2VCrossAttention ("i2v_cross_attn"), the others WanT2VCrossAttention.
  TORCH_ARG(bool, image_cross_attn) = false;
};

// Mirrors WanAttentionBlock: modulated self-attention, cross-attention, modulated tanh-GELU FFN.
class WanAttentionBlockImpl : public torch::nn::Module {
 public:
  explicit WanAttentionBlockImpl(const WanAttentionBlockOptions& options);
  // x: [B, L, dim] float32 -> [B, L, dim] float32
  at::Tensor forward(const at::Tensor& x, const DitBlockContext& ctx);

 private:
  WanAttentionBlockOptions options_;
  WanLayerNorm norm1_{nullptr}, norm2_{nullptr}, norm3_{nullptr};
  WanSelfAttention self_attn_{nullptr};
  std::shared_ptr<WanT2VCrossAttentionImpl> cross_attn_;
  LinearLayer ffn_in_{nullptr}, ffn_out_{nullptr};  // ffn.0, ffn.2
  at::Tensor modulation_;                                  // [1, 6, dim]
};
TORCH_MODULE(WanAttentionBlock);

// Mirrors VaceWanAttentionBlock: the first one (layer 0) joins c to the video tokens,
// before_proj(c) + x; each returns the updated c and its hint after_proj(c).
class VaceWanAttentionBlockImpl : public WanAttentionBlockImpl {
 public:
  VaceWanAttentionBlockImpl(const WanAttentionBlockOptions& options, bool first);
  bool first() const { return static_cast<bool>(before_proj_); }
  // The first block only: before_proj(c) + x, [B, L, dim] float32. `c` is dropped once
  // projected, so the caller should hand it over.
  at::Tensor join(at::Tensor c, const at::Tensor& x, at::ScalarType compute_dtype);
  // c (joined, for the first block): [B, L, dim] float32 -> (c, hint), float32. The input is
  // dropped before the hint is projected, so the caller should hand it over.
  std::pair<at::Tensor, at::Tensor> forward(at::Tensor c, const DitBlockContext& ctx);

 private:
  LinearLayer before_proj_{nullptr}, after_proj_{nullptr};
};
TORCH_MODULE(VaceWanAttentionBlock);

// Mirrors Head: modulated layer norm and the projection to out_dim * prod(patch_size), float32.
class HeadImpl : public torch::nn::Module {
 public:
  HeadImpl(int64_t dim, int64_t out_features, double eps);
  // x: [B, L, dim] float32, e: [B, dim] float32 -> [B, L, out_features] float32
  at::Tensor forward(const at::Tensor& x, const at::Tensor& e);

 private:
  WanLayerNorm norm_{nullptr};
  LinearLayer head_{nullptr};
  at::Tensor modulation_;  // [1, 2, dim]
};
TORCH_MODULE(Head);

// Mirrors MLPProj (img_emb): LayerNorm, Linear, exact GELU, Linear, LayerNorm over CLIP features;
// flf2v first adds emb_pos to the 2 x 257 tokens of the first and last frame.
class MlpProjImpl : public torch::nn::Module {
 public:
  MlpProjImpl(int64_t in_dim, int64_t out_dim, bool flf_pos_emb);
  // image_embeds: [B * n_img, 257, in_dim] -> [B, n_img * 257, out_dim] in `dtype`
  at::Tensor forward(const at::Tensor& image_embeds, at::ScalarType dtype);

 private:
  torch::nn::LayerNorm norm_in_{nullptr}, norm_out_{nullptr};  // proj.0, proj.4
  LinearLayer fc1_{nullptr}, fc2_{nullptr};              // proj.1, proj.3
  at::Tensor emb_pos_;                                         // [1, 514, in_dim] (flf2v)
};
TORCH_MODULE(MlpProj);

}  // namespace wan::models
