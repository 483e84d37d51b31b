#include "models/dit/wan_dit_layers.h"

#include <torch/nn.h>

#include "models/common/attention.h"
#include "models/dit/wan_dit_config.h"

namespace wan::models {
namespace {

// Float32 copy of a (possibly bf16-stored) small parameter.
at::Tensor f32(const at::Tensor& t) { return t.scalar_type() == at::kFloat ? t : t.to(at::kFloat); }

at::Tensor rms_or_identity(WanRmsNorm norm, const at::Tensor& x) {
  return norm ? norm->forward(x) : x;
}

// The two halves of a child holder named like an nn.Sequential ("ffn.0", "ffn.2", ...).
std::shared_ptr<torch::nn::Module> holder(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

}  // namespace

at::Tensor sinusoidal_embedding_1d(int64_t dim, const at::Tensor& position) {
  TORCH_CHECK(dim % 2 == 0, "sinusoidal_embedding_1d: odd dim");
  const int64_t half = dim / 2;
  const auto pos = position.to(at::kDouble).reshape({-1});
  const auto inv = at::pow(10000.0, -at::arange(half, pos.options()).div(half));
  const auto sinusoid = at::outer(pos, inv);  // [B, half]
  return at::cat({at::cos(sinusoid), at::sin(sinusoid)}, 1).to(at::kFloat);
}

std::pair<at::Tensor, at::Tensor> rope_tables(const std::vector<DitGrid>& grids, int64_t seq_len,
                                              int64_t head_dim, at::ScalarType dtype,
                                              double theta) {
  const int64_t pairs = head_dim / 2;
  // Official split of the complex pairs over (frame, row, column).
  const int64_t c_hw = pairs / 3;
  const std::array<int64_t, 3> counts{pairs - 2 * c_hw, c_hw, c_hw};
  const auto opts = at::TensorOptions().dtype(at::kDouble);
  std::array<at::Tensor, 3> inv;
  for (int a = 0; a < 3; ++a) {
    const double axis_dim = 2.0 * static_cast<double>(counts[a]);
    inv[a] = 1.0 / at::pow(theta, at::arange(0, 2 * counts[a], 2, opts).div(axis_dim));
  }
  std::vector<at::Tensor> cos_list, sin_list;
  for (const auto& grid : grids) {
    const int64_t f = grid[0], h = grid[1], w = grid[2], len = f * h * w;
    TORCH_CHECK(len <= seq_len, "rope_tables: grid larger than seq_len");
    const auto af = at::outer(at::arange(f, opts), inv[0]).view({f, 1, 1, -1}).expand({f, h, w, -1});
    const auto ah = at::outer(at::arange(h, opts), inv[1]).view({1, h, 1, -1}).expand({f, h, w, -1});
    const auto aw = at::outer(at::arange(w, opts), inv[2]).view({1, 1, w, -1}).expand({f, h, w, -1});
    const auto angles = at::cat({af, ah, aw}, -1).reshape({len, pairs});
    // Padded positions get the identity rotation: the official code leaves them untouched.
    auto cos = at::ones({seq_len, pairs}, opts);
    auto sin = at::zeros({seq_len, pairs}, opts);
    cos.narrow(0, 0, len).copy_(at::cos(angles));
    sin.narrow(0, 0, len).copy_(at::sin(angles));
    cos_list.push_back(cos);
    sin_list.push_back(sin);
  }
  // [B, L, 1, pairs]: broadcast over heads.
  return {at::stack(cos_list).unsqueeze(2).to(dtype), at::stack(sin_list).unsqueeze(2).to(dtype)};
}

at::Tensor rope_apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                      at::ScalarType out_dtype) {
  const auto sizes = x.sizes();  // [B, L, H, D]
  const auto pairs = x.to(cos.scalar_type()).reshape({sizes[0], sizes[1], sizes[2], -1, 2});
  const auto re = pairs.select(-1, 0), im = pairs.select(-1, 1);
  // (re + i im) * (cos + i sin), as the official complex product.
  auto rotated = at::stack({re * cos - im * sin, re * sin + im * cos}, -1);
  return rotated.reshape(sizes).to(out_dtype);
}

// ---- norms ----

WanRmsNormImpl::WanRmsNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor WanRmsNormImpl::forward(const at::Tensor& x) {
  const auto xf = x.to(at::kFloat);
  return xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_) * f32(weight);
}

WanLayerNormImpl::WanLayerNormImpl(const WanLayerNormOptions& options) : options_(options) {
  if (options_.elementwise_affine()) {
    weight = register_parameter("weight", at::ones({options_.dim()}));
    bias = register_parameter("bias", at::zeros({options_.dim()}));
  }
}

at::Tensor WanLayerNormImpl::forward(const at::Tensor& x) {
  return at::layer_norm(x.to(at::kFloat), {options_.dim()},
                        weight.defined() ? f32(weight) : at::Tensor(),
                        bias.defined() ? f32(bias) : at::Tensor(), options_.eps());
}

// ---- attention ----

WanSelfAttentionImpl::WanSelfAttentionImpl(const WanAttentionOptions& options)
    : options_(options) {
  const int64_t dim = options_.dim();
  q_ = register_module("q", LinearLayer(dim, dim));
  k_ = register_module("k", LinearLayer(dim, dim));
  v_ = register_module("v", LinearLayer(dim, dim));
  o_ = register_module("o", LinearLayer(dim, dim));
  if (options_.qk_norm()) {
    norm_q_ = register_module("norm_q", WanRmsNorm(dim, options_.eps()));
    norm_k_ = register_module("norm_k", WanRmsNorm(dim, options_.eps()));
  }
}

at::Tensor WanSelfAttentionImpl::attend(const TokenInput& input, int64_t b, int64_t s,
                                        const DitBlockContext& ctx) {
  const int64_t n = options_.num_heads(), d = options_.dim() / n;
  const auto cd = ctx.compute_dtype;
  at::Tensor q, k, v;  // [B, L, H, D] compute dtype, filled run by run
  for_token_chunks(s, ctx.token_chunk, [&](int64_t start, int64_t length) {
    const auto x = input(start, length);
    if (!q.defined()) {
      const auto options = x.options().dtype(cd);
      q = at::empty({b, s, n, d}, options);
      k = at::empty({b, s, n, d}, options);
      v = at::empty({b, s, n, d}, options);
    }
    const auto cos = ctx.rope_cos.narrow(1, start, length);
    const auto sin = ctx.rope_sin.narrow(1, start, length);
    q.narrow(1, start, length)
        .copy_(rope_apply(rms_or_identity(norm_q_, linear_in(q_, x, cd)).view({b, length, n, d}),
                          cos, sin, cd));
    k.narrow(1, start, length)
        .copy_(rope_apply(rms_or_identity(norm_k_, linear_in(k_, x, cd)).view({b, length, n, d}),
                          cos, sin, cd));
    v.narrow(1, start, length).copy_(linear_in(v_, x, cd).view({b, length, n, d}));
  });
  AttentionOptions options;
  options.k_lens = ctx.seq_lens;
  options.query_chunk = ctx.query_chunk;
  return attention(q, k, v, options).flatten(2);  // [B, L, dim]
}

at::Tensor WanSelfAttentionImpl::project_out(const at::Tensor& heads, at::ScalarType cd) {
  return linear_in(o_, heads, cd);
}

at::Tensor WanSelfAttentionImpl::forward(const at::Tensor& x, const DitBlockContext& ctx) {
  const auto input = [&](int64_t start, int64_t length) { return x.narrow(1, start, length); };
  return project_out(attend(input, x.size(0), x.size(1), ctx), ctx.compute_dtype);
}

WanT2VCrossAttentionImpl::WanT2VCrossAttentionImpl(const WanAttentionOptions& options)
    : options_(options) {
  const int64_t dim = options_.dim();
  q_ = register_module("q", LinearLayer(dim, dim));
  k_ = register_module("k", LinearLayer(dim, dim));
  v_ = register_module("v", LinearLayer(dim, dim));
  o_ = register_module("o", LinearLayer(dim, dim));
  if (options_.qk_norm()) {
    norm_q_ = register_module("norm_q", WanRmsNorm(dim, options_.eps()));
    norm_k_ = register_module("norm_k", WanRmsNorm(dim, options_.eps()));
  }
}

at::Tensor WanT2VCrossAttentionImpl::project_queries(const at::Tensor& x,
                                                     const DitBlockContext& ctx) {
  const int64_t n = options_.num_heads();
  return rms_or_identity(norm_q_, linear_in(q_, x, ctx.compute_dtype))
      .to(ctx.compute_dtype)
      .view({x.size(0), x.size(1), n, options_.dim() / n});
}

at::Tensor WanT2VCrossAttentionImpl::attend_heads(const at::Tensor& q, const at::Tensor& k,
                                                  const at::Tensor& v,
                                                  const DitBlockContext& ctx) {
  AttentionOptions options;  // no key mask: padded text rows are attended to, as official
  options.query_chunk = ctx.query_chunk;
  return attention(q, k, v, options);
}

CrossKeysValues WanT2VCrossAttentionImpl::keys_values(const DitBlockContext& ctx) {
  const auto cd = ctx.compute_dtype;
  const auto text = ctx.context.narrow(1, ctx.image_tokens, ctx.context.size(1) - ctx.image_tokens);
  const int64_t n = options_.num_heads(), d = options_.dim() / n;
  const int64_t b = text.size(0), l = text.size(1);
  CrossKeysValues kv;
  kv.k = rms_or_identity(norm_k_, linear_in(k_, text, cd)).to(cd).view({b, l, n, d});
  kv.v = linear_in(v_, text, cd).view({b, l, n, d});
  return kv;
}

at::Tensor WanT2VCrossAttentionImpl::attend(const at::Tensor& x, const CrossKeysValues& kv,
                                            const DitBlockContext& ctx) {
  return project_out(attend_heads(project_queries(x, ctx), kv.k, kv.v, ctx), ctx);
}

at::Tensor WanT2VCrossAttentionImpl::project_out(const at::Tensor& heads,
                                                 const DitBlockContext& ctx) {
  return linear_in(o_, heads.flatten(2), ctx.compute_dtype);
}

at::Tensor WanT2VCrossAttentionImpl::forward(const at::Tensor& x, const DitBlockContext& ctx) {
  return attend(x, keys_values(ctx), ctx);
}

WanI2VCrossAttentionImpl::WanI2VCrossAttentionImpl(const WanAttentionOptions& options)
    : WanT2VCrossAttentionImpl(options) {
  const int64_t dim = options_.dim();
  k_img_ = register_module("k_img", LinearLayer(dim, dim));
  v_img_ = register_module("v_img", LinearLayer(dim, dim));
  if (options_.qk_norm()) norm_k_img_ = register_module("norm_k_img", WanRmsNorm(dim, options_.eps()));
}

CrossKeysValues WanI2VCrossAttentionImpl::keys_values(const DitBlockContext& ctx) {
  const auto cd = ctx.compute_dtype;
  CrossKeysValues kv = WanT2VCrossAttentionImpl::keys_values(ctx);
  const auto image = ctx.context.narrow(1, 0, ctx.image_tokens);
  const int64_t n = options_.num_heads(), d = options_.dim() / n;
  const int64_t b = image.size(0), l = image.size(1);
  kv.k_img = rms_or_identity(norm_k_img_, linear_in(k_img_, image, cd)).to(cd).view({b, l, n, d});
  kv.v_img = linear_in(v_img_, image, cd).view({b, l, n, d});
  return kv;
}

at::Tensor WanI2VCrossAttentionImpl::attend(const at::Tensor& x, const CrossKeysValues& kv,
                                            const DitBlockContext& ctx) {
  const auto q = project_queries(x, ctx);  // [B, L, H, D]
  const auto img_x = attend_heads(q, kv.k_img, kv.v_img, ctx);
  const auto text_x = attend_heads(q, kv.k, kv.v, ctx);
  return project_out(text_x + img_x, ctx);
}

// ---- blocks ----

WanAttentionBlockImpl::WanAttentionBlockImpl(const WanAttentionBlockOptions& options)
    : options_(options) {
  const int64_t dim = options_.dim();
  const auto attn = WanAttentionOptions(dim, options_.num_heads())
                        .qk_norm(options_.qk_norm())
                        .eps(options_.eps());
  norm1_ = register_module("norm1", WanLayerNorm(WanLayerNormOptions(dim).eps(options_.eps())));
  self_attn_ = register_module("self_attn", WanSelfAttention(attn));
  if (options_.cross_attn_norm()) {
    norm3_ = register_module(
        "norm3", WanLayerNorm(WanLayerNormOptions(dim).eps(options_.eps()).elementwise_affine(true)));
  }
  if (options_.image_cross_attn())
    cross_attn_ = register_module("cross_attn", std::make_shared<WanI2VCrossAttentionImpl>(attn));
  else
    cross_attn_ = register_module("cross_attn", std::make_shared<WanT2VCrossAttentionImpl>(attn));
  norm2_ = register_module("norm2", WanLayerNorm(WanLayerNormOptions(dim).eps(options_.eps())));
  auto ffn = holder(*this, "ffn");
  ffn_in_ = ffn->register_module("0", LinearLayer(dim, options_.ffn_dim()));
  ffn_out_ = ffn->register_module("2", LinearLayer(options_.ffn_dim(), dim));
  modulation_ = register_parameter("modulation", at::randn({1, 6, dim}) / std::sqrt(double(dim)));
}

at::Tensor WanAttentionBlockImpl::forward(const at::Tensor& x_in, const DitBlockContext& ctx) {
  const auto cd = ctx.compute_dtype;
  const int64_t b = x_in.size(0), s = x_in.size(1), chunk = ctx.token_chunk;
  // shift/scale/gate of the attention (0..2) and of the FFN (3..5): each [B, 1, dim] float32.
  const auto e = (f32(modulation_) + ctx.e0).chunk(6, 1);
  // The float32 residual stream, updated in place one run of tokens at a time: every per-token
  // step holds a run's temporaries, not the whole sequence's (the same arithmetic per token).
  auto x = x_in.clone();
  {
    const auto heads = self_attn_->attend(
        [&](int64_t start, int64_t length) {
          return (norm1_->forward(x.narrow(1, start, length)) * (1 + e[1]) + e[0]).to(cd);
        },
        b, s, ctx);
    for_token_chunks(s, chunk, [&](int64_t start, int64_t length) {
      const auto y = self_attn_->project_out(heads.narrow(1, start, length), cd);
      x.narrow(1, start, length).add_(y.to(at::kFloat) * e[2]);
    });
  }
  const auto kv = cross_attn_->keys_values(ctx);
  for_token_chunks(s, chunk, [&](int64_t start, int64_t length) {
    auto xs = x.narrow(1, start, length);
    const auto cross_in = (norm3_ ? norm3_->forward(xs) : xs).to(cd);
    const auto y = cross_attn_->attend(cross_in, kv, ctx).to(at::kFloat);
    xs.add_(y);
  });
  for_token_chunks(s, chunk, [&](int64_t start, int64_t length) {
    auto xs = x.narrow(1, start, length);
    const auto h = (norm2_->forward(xs) * (1 + e[4]) + e[3]).to(cd);
    const auto y = linear_in(ffn_out_, at::gelu(linear_in(ffn_in_, h, cd), "tanh"), cd);
    xs.add_(y.to(at::kFloat) * e[5]);
  });
  return x;
}

VaceWanAttentionBlockImpl::VaceWanAttentionBlockImpl(const WanAttentionBlockOptions& options,
                                                     bool first)
    : WanAttentionBlockImpl(options) {
  const int64_t dim = options.dim();
  if (first) before_proj_ = register_module("before_proj", LinearLayer(dim, dim));
  after_proj_ = register_module("after_proj", LinearLayer(dim, dim));
}

at::Tensor VaceWanAttentionBlockImpl::join(at::Tensor c, const at::Tensor& x,
                                           at::ScalarType compute_dtype) {
  TORCH_CHECK(before_proj_, "VACE: only the first VACE block joins the chain to the video tokens");
  auto joined = linear_in(before_proj_, c, compute_dtype).to(at::kFloat);
  c = at::Tensor();
  return joined.add_(x);  // before_proj(c) + x, in place: the same sum
}

std::pair<at::Tensor, at::Tensor> VaceWanAttentionBlockImpl::forward(at::Tensor c,
                                                                     const DitBlockContext& ctx) {
  c = WanAttentionBlockImpl::forward(c, ctx);
  auto hint = linear_in(after_proj_, c, ctx.compute_dtype).to(at::kFloat);
  return {std::move(c), std::move(hint)};
}

// ---- head and image projection ----

HeadImpl::HeadImpl(int64_t dim, int64_t out_features, double eps) {
  norm_ = register_module("norm", WanLayerNorm(WanLayerNormOptions(dim).eps(eps)));
  head_ = register_module("head", LinearLayer(dim, out_features));
  modulation_ = register_parameter("modulation", at::randn({1, 2, dim}) / std::sqrt(double(dim)));
}

at::Tensor HeadImpl::forward(const at::Tensor& x, const at::Tensor& e) {
  const auto mod = (f32(modulation_) + e.unsqueeze(1)).chunk(2, 1);  // shift, scale [B, 1, dim]
  return linear_in(head_, norm_->forward(x) * (1 + mod[1]) + mod[0], at::kFloat);
}

MlpProjImpl::MlpProjImpl(int64_t in_dim, int64_t out_dim, bool flf_pos_emb) {
  auto proj = holder(*this, "proj");
  // torch.nn.LayerNorm defaults: eps 1e-5, affine.
  norm_in_ = proj->register_module("0", torch::nn::LayerNorm(torch::nn::LayerNormOptions({in_dim})));
  fc1_ = proj->register_module("1", LinearLayer(in_dim, in_dim));
  fc2_ = proj->register_module("3", LinearLayer(in_dim, out_dim));
  norm_out_ = proj->register_module("4", torch::nn::LayerNorm(torch::nn::LayerNormOptions({out_dim})));
  if (flf_pos_emb)
    emb_pos_ = register_parameter("emb_pos", at::zeros({1, 2 * kClipTokensPerImage, in_dim}));
}

at::Tensor MlpProjImpl::forward(const at::Tensor& image_embeds, at::ScalarType dtype) {
  auto x = image_embeds.to(at::kFloat);
  if (emb_pos_.defined()) {
    // Two images' tokens side by side: [2B, 257, d] -> [B, 514, d].
    x = x.reshape({-1, emb_pos_.size(1), x.size(2)}) + f32(emb_pos_);
  }
  auto layer_norm = [](torch::nn::LayerNorm norm, const at::Tensor& t) {
    const auto& o = norm->options;
    return at::layer_norm(t.to(at::kFloat), o.normalized_shape(), f32(norm->weight),
                          f32(norm->bias), o.eps());
  };
  x = layer_norm(norm_in_, x);
  x = linear_in(fc2_, at::gelu(linear_in(fc1_, x, dtype)), dtype);
  return layer_norm(norm_out_, x).to(dtype);
}

}  // namespace wan::models
