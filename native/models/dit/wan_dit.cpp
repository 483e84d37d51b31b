#include "io/tensor_map.h"
#include "models/dit/wan_dit.h"

#include <spdlog/spdlog.h>
#include <torch/nn.h>

#include <map>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "io/key_layout.h"
#include "io/tensor_index.h"
#include "models/common/activation_parking.h"
#include "models/common/block_visit.h"
#include "models/common/weight_cast.h"
#include "models/common/weights.h"

namespace wan::models {
namespace {

torch::nn::Conv3d patch_conv(int64_t in, int64_t out, const std::array<int64_t, 3>& patch) {
  const std::vector<int64_t> kernel(patch.begin(), patch.end());
  return torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, kernel).stride(kernel));
}

}  // namespace

bool dit_keeps_float32(const std::string& key) {
  static const char* kPrefixes[] = {"time_embedding.", "time_projection.", "head.",
                                    "img_emb.proj.0.", "img_emb.proj.4.", "img_emb.emb_pos"};
  for (const char* prefix : kPrefixes)
    if (key.rfind(prefix, 0) == 0) return true;
  const std::string modulation = "modulation";
  if (key.size() >= modulation.size() &&
      key.compare(key.size() - modulation.size(), modulation.size(), modulation) == 0)
    return true;
  return key.find("norm") != std::string::npos;  // norm1..3, norm_q, norm_k, norm_k_img
}

WanDitImpl::WanDitImpl(const WanDitOptions& options) : options_(options) {
  const auto& c = options_.config();
  c.validate();
  const int64_t dim = c.dim;
  patch_embedding_ = register_module("patch_embedding", patch_conv(c.in_dim, dim, c.patch_size));
  auto text = register_module("text_embedding", std::make_shared<torch::nn::Module>());
  text_in_ = text->register_module("0", LinearLayer(c.text_dim, dim));
  text_out_ = text->register_module("2", LinearLayer(dim, dim));
  auto time = register_module("time_embedding", std::make_shared<torch::nn::Module>());
  time_in_ = time->register_module("0", LinearLayer(c.freq_dim, dim));
  time_out_ = time->register_module("2", LinearLayer(dim, dim));
  auto projection = register_module("time_projection", std::make_shared<torch::nn::Module>());
  time_projection_ = projection->register_module("1", LinearLayer(dim, 6 * dim));

  const auto block_options = WanAttentionBlockOptions(dim, c.ffn_dim, c.num_heads)
                                 .qk_norm(c.qk_norm)
                                 .cross_attn_norm(c.cross_attn_norm)
                                 .eps(c.eps)
                                 .image_cross_attn(c.has_image_input());
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_layers; ++i) blocks_->push_back(WanAttentionBlock(block_options));

  const int64_t patch_volume = c.patch_size[0] * c.patch_size[1] * c.patch_size[2];
  head_ = register_module("head", Head(dim, c.out_dim * patch_volume, c.eps));
  if (c.has_image_input()) {
    img_emb_ = register_module("img_emb",
                               MlpProj(c.img_dim, dim, c.variant == WanDitVariant::kFlf2v));
  }
  if (c.variant == WanDitVariant::kVace) {
    vace_blocks_ = register_module("vace_blocks", torch::nn::ModuleList());
    for (auto layer : c.vace_layers)
      vace_blocks_->push_back(VaceWanAttentionBlock(block_options, /*first=*/layer == 0));
    vace_patch_embedding_ =
        register_module("vace_patch_embedding", patch_conv(c.vace_in_dim, dim, c.patch_size));
  }
}

void WanDitImpl::validate_inputs(const std::vector<at::Tensor>& x, const at::Tensor& t,
                                 const std::vector<at::Tensor>& context, int64_t seq_len,
                                 const DitExtras& extras) const {
  const auto& c = config();
  const std::string where = "WanDit(" + to_string(c.variant) + ")";
  auto fail = [&](const std::string& what) { throw ValidationError(where + ": " + what); };
  const int64_t batch = static_cast<int64_t>(x.size());
  if (batch == 0) fail("x is empty; pass one [C, F, H, W] latent per sample");
  if (!t.defined() || (t.numel() != 1 && t.numel() != batch))
    fail("t must hold 1 or " + std::to_string(batch) + " timesteps, got " +
         (t.defined() ? std::to_string(t.numel()) : std::string("none")));
  if (static_cast<int64_t>(context.size()) != batch)
    fail("context has " + std::to_string(context.size()) + " entries for " +
         std::to_string(batch) + " samples");

  const bool image = c.has_image_input();
  if (image && static_cast<int64_t>(extras.y.size()) != batch)
    fail("y must hold one conditioning latent per sample (" + std::to_string(batch) + "), got " +
         std::to_string(extras.y.size()));
  if (!image && !extras.y.empty()) fail("y is only used by i2v/flf2v models");
  if (image) {
    const auto& clip = extras.clip_fea;
    const int64_t images = c.variant == WanDitVariant::kFlf2v ? 2 : 1;
    if (!clip.defined() || clip.dim() != 3 || clip.size(0) != images * batch ||
        clip.size(1) != kClipTokensPerImage || clip.size(2) != c.img_dim)
      fail("clip_fea must be [" + std::to_string(images * batch) + ", 257, " +
           std::to_string(c.img_dim) + "], got " +
           (clip.defined() ? io::format_shape(clip.sizes()) : std::string("none")));
  } else if (extras.clip_fea.defined()) {
    fail("clip_fea is only used by i2v/flf2v models");
  }
  const bool vace = c.variant == WanDitVariant::kVace;
  if (vace && static_cast<int64_t>(extras.vace_context.size()) != batch)
    fail("vace_context must hold one tensor per sample (" + std::to_string(batch) + "), got " +
         std::to_string(extras.vace_context.size()));
  if (!vace && !extras.vace_context.empty()) fail("vace_context is only used by VACE models");

  for (int64_t i = 0; i < batch; ++i) {
    const auto name = "x[" + std::to_string(i) + "]";
    const auto& u = x[i];
    if (!u.defined() || u.dim() != 4) fail(name + " must be [C, F, H, W]");
    int64_t channels = u.size(0);
    if (image) {
      const auto& y = extras.y[i];
      if (!y.defined() || y.dim() != 4 || y.sizes().slice(1) != u.sizes().slice(1))
        fail("y[" + std::to_string(i) + "] must be [C, " + std::to_string(u.size(1)) + ", " +
             std::to_string(u.size(2)) + ", " + std::to_string(u.size(3)) + "], got " +
             (y.defined() ? io::format_shape(y.sizes()) : std::string("none")));
      channels += y.size(0);
    }
    if (channels != c.in_dim)
      fail(name + (image ? " + y" : "") + " has " + std::to_string(channels) +
           " channels; the model takes " + std::to_string(c.in_dim));
    int64_t tokens = 1;
    for (int a = 0; a < 3; ++a) {
      const int64_t size = u.size(a + 1), patch = c.patch_size[a];
      if (size % patch != 0)
        fail(name + " size " + io::format_shape(u.sizes()) + " is not divisible by the patch size " +
             std::to_string(patch) + " along axis " + std::to_string(a + 1));
      if (size / patch > kRopeMaxPositions)
        fail(name + " has " + std::to_string(size / patch) + " patches along axis " +
             std::to_string(a + 1) + "; RoPE covers at most 1024");
      tokens *= size / patch;
    }
    if (tokens > seq_len)
      fail(name + " has " + std::to_string(tokens) + " tokens, more than seq_len " +
           std::to_string(seq_len));
    if (vace) {
      const auto& v = extras.vace_context[i];
      if (!v.defined() || v.dim() != 4 || v.size(0) != c.vace_in_dim ||
          v.sizes().slice(1) != u.sizes().slice(1))
        fail("vace_context[" + std::to_string(i) + "] must be [" + std::to_string(c.vace_in_dim) +
             ", " + std::to_string(u.size(1)) + ", " + std::to_string(u.size(2)) + ", " +
             std::to_string(u.size(3)) + "], got " +
             (v.defined() ? io::format_shape(v.sizes()) : std::string("none")));
    }
    const auto& text = context[i];
    if (!text.defined() || text.dim() != 2 || text.size(1) != c.text_dim)
      fail("context[" + std::to_string(i) + "] must be [L, " + std::to_string(c.text_dim) +
           "], got " + (text.defined() ? io::format_shape(text.sizes()) : std::string("none")));
    if (text.size(0) > c.text_len)
      fail("context[" + std::to_string(i) + "] has " + std::to_string(text.size(0)) +
           " tokens, more than text_len " + std::to_string(c.text_len));
  }
}

at::Tensor WanDitImpl::embed_patches(const torch::nn::Conv3d& conv,
                                     const std::vector<at::Tensor>& videos, int64_t seq_len,
                                     const char* name, const DitExtras& extras,
                                     std::vector<DitGrid>* grids) const {
  const auto cd = compute_dtype();
  const auto w = cast_weight(*conv, conv->weight, cd);
  const auto b = conv->bias.to(cd);
  const auto& kernel = *conv->options.stride();
  std::vector<at::Tensor> rows;
  for (const auto& video : videos) {
    auto u = at::conv3d(video.to(cd).unsqueeze(0), w, b, kernel);  // [1, dim, f, h, w]
    if (extras.debug) extras.debug(name, u);
    if (grids) grids->push_back({u.size(2), u.size(3), u.size(4)});
    u = u.flatten(2).transpose(1, 2).to(at::kFloat);  // [1, tokens, dim]
    rows.push_back(at::constant_pad_nd(u, {0, 0, 0, seq_len - u.size(1)}));
  }
  return at::cat(rows);  // [B, seq_len, dim]
}

std::vector<at::Tensor> WanDitImpl::unpatchify(const at::Tensor& x,
                                               const std::vector<DitGrid>& grids) const {
  const auto& c = config();
  const auto& p = c.patch_size;
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < grids.size(); ++i) {
    const auto [f, h, w] = grids[i];
    // 'fhwpqrc -> cfphqwr' of the official unpatchify.
    auto u = x[i].narrow(0, 0, f * h * w).reshape({f, h, w, p[0], p[1], p[2], c.out_dim});
    out.push_back(u.permute({6, 0, 3, 1, 4, 2, 5})
                      .reshape({c.out_dim, f * p[0], h * p[1], w * p[2]})
                      .to(at::kFloat));
  }
  return out;
}

std::vector<at::Tensor> WanDitImpl::forward(const std::vector<at::Tensor>& x, const at::Tensor& t,
                                            const std::vector<at::Tensor>& context,
                                            int64_t seq_len, const DitExtras& extras) {
  validate_inputs(x, t, context, seq_len, extras);
  at::NoGradGuard no_grad;
  const auto& c = config();
  const auto cd = compute_dtype();
  const auto& debug = extras.debug;
  auto emit = [&](const std::string& name, const at::Tensor& value) {
    if (debug) debug(name, value);
  };

  // Video tokens (i2v/flf2v: y concatenated on channels first).
  std::vector<at::Tensor> videos;
  for (size_t i = 0; i < x.size(); ++i)
    videos.push_back(c.has_image_input() ? at::cat({x[i], extras.y[i].to(x[i].scalar_type())}, 0)
                                         : x[i]);
  std::vector<DitGrid> grids;
  auto hidden = embed_patches(patch_embedding_, videos, seq_len, "patch_embedding", extras, &grids);
  std::vector<int64_t> lens;
  bool padded = false;
  for (const auto& g : grids) {
    lens.push_back(g[0] * g[1] * g[2]);
    padded = padded || lens.back() < seq_len;
  }

  // Time embedding and the 6-way modulation, float32.
  const auto sinusoid = sinusoidal_embedding_1d(c.freq_dim, t);
  const auto e = linear_in(time_out_, at::silu(linear_in(time_in_, sinusoid, at::kFloat)), at::kFloat);
  emit("time_embedding", e);
  const auto e0 = linear_in(time_projection_, at::silu(e), at::kFloat);
  emit("time_projection", e0);

  // Text: each T5 output zero-padded to text_len; the padded rows are embedded (carrying the
  // biases) and attended to, as in the official code.
  std::vector<at::Tensor> padded_text;
  for (const auto& u : context)
    padded_text.push_back(at::constant_pad_nd(u.to(cd), {0, 0, 0, c.text_len - u.size(0)}));
  auto text = linear_in(text_out_, at::gelu(linear_in(text_in_, at::stack(padded_text), cd), "tanh"), cd);
  emit("text_embedding", text);

  DitBlockContext ctx;
  if (c.has_image_input()) {
    const auto image = img_emb_->forward(extras.clip_fea, cd);  // [B, 257 or 514, dim]
    emit("img_emb", image);
    ctx.image_tokens = image.size(1);
    text = at::cat({image, text}, 1);
  }
  ctx.e0 = e0.view({e0.size(0), 6, c.dim});
  if (padded) ctx.seq_lens = at::tensor(lens, at::kLong);
  // float64 rotation for float32 compute, as the official rope_apply; float32 otherwise.
  std::tie(ctx.rope_cos, ctx.rope_sin) =
      rope_tables(grids, seq_len, c.head_dim(), cd == at::kFloat ? at::kDouble : at::kFloat);
  ctx.context = text;
  ctx.compute_dtype = cd;
  ctx.query_chunk = options_.attention_chunk();
  ctx.token_chunk = options_.token_chunk();

  // VACE: the hint of VACE block k is added after main block vace_layers[k]. The official code
  // computes every hint before the main blocks and holds them all through them (8 or 15 tensors
  // the size of the residual stream). Here VACE block 0 computes before main block 0 (it reads
  // the blocks' input) and VACE block k > 0 right after main block vace_layers[k], so beside the
  // main stream live only the VACE chain and, through main block 0, the first hint. The same
  // operations on the same values: identical output.
  std::map<int64_t, size_t> vace_after_layer;
  if (c.variant == WanDitVariant::kVace)
    for (size_t k = 0; k < c.vace_layers.size(); ++k) vace_after_layer[c.vace_layers[k]] = k;
  auto vace_block_after = [&](size_t j) -> std::optional<size_t> {
    const auto k = vace_after_layer.find(static_cast<int64_t>(j));
    if (k == vace_after_layer.end()) return std::nullopt;
    return k->second;
  };

  // Every block in the order it computes, so that a `stream` placement can bring each one's
  // weights in ahead of it (models/common/block_visit.h).
  std::vector<torch::nn::Module*> order;
  if (!vace_after_layer.empty()) order.push_back(vace_blocks_->ptr(0).get());
  for (size_t j = 0; j < blocks_->size(); ++j) {
    order.push_back(blocks_->ptr(j).get());
    if (const auto k = vace_block_after(j); k && *k > 0) order.push_back(vace_blocks_->ptr(*k).get());
  }
  size_t visited = 0;
  auto visit_next = [&] {
    auto* block = order[visited++];
    return visit_block(*block, visited < order.size() ? order[visited] : nullptr);
  };

  // With park_vace, what is not computing waits in CPU memory: the residual stream while a
  // VACE block computes (only the first reads it, to join), the chain while main blocks do, and
  // the first hint through main block 0. The last VACE block's chain is dropped, not parked.
  const bool park = options_.park_vace();
  at::Tensor vace_chain, hint;
  auto run_vace_block = [&](size_t k) {
    const auto visit = visit_next();
    auto* block = vace_blocks_->ptr<VaceWanAttentionBlockImpl>(k).get();
    if (block->first()) vace_chain = block->join(std::move(vace_chain), hidden, cd);
    if (park) {
      hidden = park_activation(hidden);
      vace_chain = unpark_activation(vace_chain);
    }
    auto [next, h] = block->forward(std::move(vace_chain), ctx);
    emit("vace_blocks." + std::to_string(k) + ".0", next);
    emit("vace_blocks." + std::to_string(k) + ".1", h);
    const bool last = k + 1 == vace_blocks_->size();
    vace_chain = last ? at::Tensor() : park ? park_activation(next) : std::move(next);
    hint = park && block->first() && !last ? park_activation(h) : std::move(h);
    if (park) hidden = unpark_activation(hidden);
  };
  if (!vace_after_layer.empty()) {
    vace_chain = embed_patches(vace_patch_embedding_, extras.vace_context, seq_len,
                               "vace_patch_embedding", extras, nullptr);
    run_vace_block(0);
  }
  for (size_t j = 0; j < blocks_->size(); ++j) {
    {
      const auto visit = visit_next();
      hidden = blocks_->ptr<WanAttentionBlockImpl>(j)->forward(hidden, ctx);
    }
    if (const auto k = vace_block_after(j)) {
      if (*k > 0) run_vace_block(*k);
      // In place: the block's output is this function's own, and the same sum.
      hidden.add_(unpark_activation(hint) * extras.vace_context_scale);
      hint = at::Tensor();
    }
    emit("blocks." + std::to_string(j), hidden);
    spdlog::debug("WanDit: block {}/{}", j + 1, blocks_->size());
  }

  const auto out = head_->forward(hidden, e);  // [B, seq_len, out_dim * prod(patch)]
  emit("head", out);
  return unpatchify(out, grids);
}

at::ScalarType dit_kept_dtype(const std::string& key, at::ScalarType stored,
                              std::optional<at::ScalarType> weight_dtype) {
  if (dit_keeps_float32(key)) return at::kFloat;
  return weight_dtype ? *weight_dtype : stored;
}

WanDit load_wan_dit(const std::string& path, std::optional<at::ScalarType> weight_dtype,
                    at::ScalarType compute_dtype) {
  const auto config = WanDitConfig::from_weights(io::read_tensor_infos(path), io::read_metadata(path));
  auto tensors = io::load_tensors(path);
  io::strip_prefix(tensors, kComfyDitPrefix);

  WanDit model(WanDitOptions(config).compute_dtype(compute_dtype));
  LoadWeightsOptions options;
  options.dtype_of = [&](const std::string& key, at::ScalarType stored) {
    return dit_kept_dtype(key, stored, weight_dtype);
  };
  load_weights(*model, tensors, path, options);
  int64_t bytes = 0, scales = 0;
  for (auto& item : model->named_parameters()) {
    auto& param = item.value();
    param.set_requires_grad(false);
    bytes += param.numel() * static_cast<int64_t>(param.element_size());
  }
  for (const auto& item : model->named_buffers()) {
    bytes += item.value().numel() * static_cast<int64_t>(item.value().element_size());
    scales += 1;
  }
  spdlog::debug("load_wan_dit: {} ({}, {} blocks, dim {}, {} heads{}) weights {}, compute {}, {}", path,
               to_string(config.variant), config.num_layers, config.dim, config.num_heads,
               scales ? ", fp8 scaled kept as stored" : "",
               weight_dtype ? c10::toString(*weight_dtype) : "as stored",
               c10::toString(compute_dtype), format_bytes(bytes));
  return model;
}

}  // namespace wan::models
