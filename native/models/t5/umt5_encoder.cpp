#include "models/t5/umt5_encoder.h"

#include <cmath>
#include <functional>
#include <set>

#include "core/error.h"
#include "models/common/attention.h"
#include "models/common/block_visit.h"
#include "models/common/linear_layer.h"
#include "models/common/weight_cast.h"

namespace wan::models {
namespace {

using ShapeOf = std::function<const std::vector<int64_t>*(const std::string&)>;

const std::vector<int64_t>& require_shape(const ShapeOf& shape_of, const std::string& key,
                                          size_t rank, const std::string& origin) {
  const auto* shape = shape_of(key);
  if (shape == nullptr)
    throw LoadError(origin + ": no tensor '" + key +
                    "'; not a UMT5 encoder in the official layout (HF-layout checkpoints are "
                    "renamed by hf_t5_to_official first)");
  if (shape->size() != rank)
    throw LoadError(origin + ": tensor '" + key + "' has rank " + std::to_string(shape->size()) +
                    ", expected " + std::to_string(rank));
  return *shape;
}

Umt5Config config_from_shapes(const ShapeOf& shape_of, const std::vector<std::string>& keys,
                              const std::string& origin) {
  const auto& embedding = require_shape(shape_of, "token_embedding.weight", 2, origin);
  const auto& q = require_shape(shape_of, "blocks.0.attn.q.weight", 2, origin);
  const auto& fc1 = require_shape(shape_of, "blocks.0.ffn.fc1.weight", 2, origin);
  const auto& pos = require_shape(shape_of, "blocks.0.pos_embedding.embedding.weight", 2, origin);

  // Layers: the block indices that carry a norm1 weight, which must run 0..N-1.
  std::set<int64_t> indices;
  const std::string prefix = "blocks.", suffix = ".norm1.weight";
  for (const auto& key : keys) {
    if (key.rfind(prefix, 0) != 0 || key.size() <= prefix.size() + suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const auto number = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
    if (number.find_first_not_of("0123456789") == std::string::npos)
      indices.insert(std::stoll(number));
  }
  const auto layers = static_cast<int64_t>(indices.size());
  if (layers == 0 || *indices.rbegin() != layers - 1)
    throw LoadError(origin + ": block indices of 'blocks.<i>.norm1.weight' are not 0.." +
                    std::to_string(layers - 1));

  auto config = Umt5Config(embedding[0], embedding[1], q[0], fc1[0], pos[1], layers)
                    .num_buckets(pos[0]);
  if (config.dim_attn() % config.num_heads() != 0)
    throw LoadError(origin + ": attention width " + std::to_string(config.dim_attn()) +
                    " (blocks.0.attn.q.weight) is not a multiple of " +
                    std::to_string(config.num_heads()) +
                    " heads (blocks.0.pos_embedding.embedding.weight)");
  return config;
}

// Official GELU of t5.py (tanh approximation), written with the same operations in the same order.
at::Tensor gelu_tanh(const at::Tensor& x) {
  const double c = std::sqrt(2.0 / M_PI);
  return x.mul(0.5) * (at::tanh((x + at::pow(x, 3.0).mul(0.044715)).mul(c)) + 1.0);
}

}  // namespace

// ---- Umt5Config ------------------------------------------------------------------------------

Umt5Config Umt5Config::umt5_xxl() {
  return Umt5Config(/*vocab=*/256384, /*dim=*/4096, /*dim_attn=*/4096, /*dim_ffn=*/10240,
                    /*num_heads=*/64, /*num_layers=*/24);
}

Umt5Config Umt5Config::from_tensors(const io::TensorMap& tensors, const std::string& origin) {
  std::map<std::string, std::vector<int64_t>> shapes;
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : tensors) {
    shapes[key] = tensor.sizes().vec();
    keys.push_back(key);
  }
  return config_from_shapes(
      [&](const std::string& key) {
        auto it = shapes.find(key);
        return it == shapes.end() ? nullptr : &it->second;
      },
      keys, origin);
}

Umt5Config Umt5Config::from_tensor_infos(const std::vector<io::TensorInfo>& infos,
                                         const std::string& origin) {
  std::map<std::string, std::vector<int64_t>> shapes;
  std::vector<std::string> keys;
  for (const auto& info : infos) {
    shapes[info.name] = info.shape;
    keys.push_back(info.name);
  }
  return config_from_shapes(
      [&](const std::string& key) {
        auto it = shapes.find(key);
        return it == shapes.end() ? nullptr : &it->second;
      },
      keys, origin);
}

int64_t Umt5Config::parameter_count() const {
  int64_t total = 0;
  for (const auto& info : umt5_expected_tensors(*this, at::kFloat)) total += info.numel();
  return total;
}

bool Umt5Config::operator==(const Umt5Config& o) const {
  return vocab_ == o.vocab_ && dim_ == o.dim_ && dim_attn_ == o.dim_attn_ &&
         dim_ffn_ == o.dim_ffn_ && num_heads_ == o.num_heads_ && num_layers_ == o.num_layers_ &&
         num_buckets_ == o.num_buckets_ && max_distance_ == o.max_distance_ && eps_ == o.eps_;
}

// ---- Leaf modules ----------------------------------------------------------------------------

// Matrices and embeddings are registered with their shapes and no storage (unloaded_tensor):
// load_weights replaces every one of them. Allocated uninitialised, they cost no resident pages
// but were counted as the whole model in CPU memory while it loaded (11.4 GB for UMT5-XXL).
T5LinearImpl::T5LinearImpl(int64_t in_features, int64_t out_features,
                           const Umt5EncoderOptions& options)
    : compute_dtype_(options.dtype()),
      matmul_(options.matmul()),
      upcast_rows_(std::max<int64_t>(1, options.upcast_rows())) {
  weight = register_parameter("weight", unloaded_tensor({out_features, in_features}, options.dtype()),
                              /*requires_grad=*/false);
}

at::Tensor T5LinearImpl::forward(const at::Tensor& x) {
  const auto out_dtype = x.scalar_type();
  if (weight.scalar_type() == out_dtype) return at::linear(x, weight);
  if (compute_dtype_ == out_dtype || matmul_ == Umt5Matmul::kReducedInputs)
    return at::linear(x.to(compute_dtype_), cast_weight(*this, weight, compute_dtype_))
        .to(out_dtype);
  // kFloatWeights: upcast a block of rows at a time so no full float32 copy exists.
  const auto scale = weight_scale_of(*this);
  std::vector<at::Tensor> parts;
  const int64_t rows = weight.size(0);
  for (int64_t start = 0; start < rows; start += upcast_rows_) {
    const int64_t count = std::min(upcast_rows_, rows - start);
    const auto row_scale = scale.defined() && scale.dim() > 0 ? scale.narrow(0, start, count) : scale;
    parts.push_back(at::linear(x, cast_weight(weight.narrow(0, start, count), out_dtype, row_scale)));
  }
  return parts.size() == 1 ? parts[0] : at::cat(parts, -1);
}

void T5LinearImpl::set_matmul(Umt5Matmul matmul, int64_t upcast_rows) {
  matmul_ = matmul;
  upcast_rows_ = std::max<int64_t>(1, upcast_rows);
}

T5LayerNormImpl::T5LayerNormImpl(int64_t dim, double eps, at::ScalarType dtype) : eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}, dtype), /*requires_grad=*/false);
}

at::Tensor T5LayerNormImpl::forward(const at::Tensor& x) {
  // Same operations as T5LayerNorm; with a bf16 weight the product promotes to float32.
  const auto xf = x.to(at::kFloat);
  auto normed = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  // A bf16 weight promotes to float32 by itself; fp8 does not take part in promotion.
  return (weight.scalar_type() == at::kFloat8_e4m3fn || weight.scalar_type() == at::kFloat8_e5m2
              ? weight.to(at::kFloat)
              : weight) *
         normed;
}

T5EmbeddingImpl::T5EmbeddingImpl(int64_t count, int64_t dim, at::ScalarType dtype) {
  weight = register_parameter("weight", unloaded_tensor({count, dim}, dtype), /*requires_grad=*/false);
}

at::Tensor T5EmbeddingImpl::forward(const at::Tensor& ids) { return at::embedding(weight, ids); }

// ---- Relative position bias ------------------------------------------------------------------

at::Tensor t5_relative_position_buckets(int64_t lq, int64_t lk, int64_t num_buckets,
                                        int64_t max_distance) {
  const auto options = at::TensorOptions().dtype(at::kLong);
  auto rel_pos = at::arange(lk, options).unsqueeze(0) - at::arange(lq, options).unsqueeze(1);
  // Bidirectional: half of the buckets for keys after the query, half for keys before.
  const int64_t half = num_buckets / 2;
  auto buckets = rel_pos.gt(0).to(at::kLong) * half;
  rel_pos = at::abs(rel_pos);
  // Exact buckets up to max_exact, logarithmic ones up to max_distance, then the last bucket.
  const int64_t max_exact = half / 2;
  auto large = (at::log(rel_pos.to(at::kFloat) / max_exact) /
                std::log(static_cast<double>(max_distance) / max_exact) * (half - max_exact))
                   .to(at::kLong) +
               max_exact;
  large = at::min(large, at::full_like(large, half - 1));
  return buckets + at::where(rel_pos < max_exact, rel_pos, large);
}

T5RelativeEmbeddingImpl::T5RelativeEmbeddingImpl(const Umt5Config& config, at::ScalarType dtype) {
  embedding_ = register_module(
      "embedding", T5Embedding(config.num_buckets(), config.num_heads(), dtype));
}

at::Tensor T5RelativeEmbeddingImpl::forward(const at::Tensor& buckets) {
  // [lq, lk, heads] -> [1, heads, lq, lk]
  return embedding_(buckets).permute({2, 0, 1}).unsqueeze(0).to(at::kFloat).contiguous();
}

// ---- Attention, feed-forward, block ----------------------------------------------------------

T5AttentionImpl::T5AttentionImpl(const Umt5Config& config, const Umt5EncoderOptions& options)
    : num_heads_(config.num_heads()) {
  q_ = register_module("q", T5Linear(config.dim(), config.dim_attn(), options));
  k_ = register_module("k", T5Linear(config.dim(), config.dim_attn(), options));
  v_ = register_module("v", T5Linear(config.dim(), config.dim_attn(), options));
  o_ = register_module("o", T5Linear(config.dim_attn(), config.dim(), options));
}

at::Tensor T5AttentionImpl::forward(const at::Tensor& x, const at::Tensor& bias,
                                    const at::Tensor& k_lens) {
  const int64_t batch = x.size(0), len = x.size(1);
  // [B, L, dim] -> [B, L, heads, head_dim]
  const auto q = q_(x).view({batch, len, num_heads_, -1});
  const auto k = k_(x).view({batch, len, num_heads_, -1});
  const auto v = v_(x).view({batch, len, num_heads_, -1});
  AttentionOptions attention_options;
  attention_options.scale = 1.0;  // T5 folds the 1/sqrt(d) scaling into its initialisation
  attention_options.bias = bias;
  attention_options.k_lens = k_lens;
  const auto out = attention(q, k, v, attention_options);  // [B, L, heads, head_dim]
  return o_(out.reshape({batch, len, -1}));
}

T5FeedForwardImpl::T5FeedForwardImpl(const Umt5Config& config, const Umt5EncoderOptions& options) {
  // The official gate is nn.Sequential(Linear, GELU): its weight is "gate.0.weight".
  gate_ = T5Linear(config.dim(), config.dim_ffn(), options);
  register_module("gate", torch::nn::ModuleList(gate_));
  fc1_ = register_module("fc1", T5Linear(config.dim(), config.dim_ffn(), options));
  fc2_ = register_module("fc2", T5Linear(config.dim_ffn(), config.dim(), options));
}

at::Tensor T5FeedForwardImpl::forward(const at::Tensor& x) {
  return fc2_(fc1_(x) * gelu_tanh(gate_(x)));
}

T5SelfAttentionImpl::T5SelfAttentionImpl(const Umt5Config& config,
                                         const Umt5EncoderOptions& options) {
  // Registration order follows the official module, so named_parameters() lists the
  // checkpoint's keys in the checkpoint's order.
  norm1_ = register_module("norm1", T5LayerNorm(config.dim(), config.eps(), options.dtype()));
  attn_ = register_module("attn", T5Attention(config, options));
  norm2_ = register_module("norm2", T5LayerNorm(config.dim(), config.eps(), options.dtype()));
  ffn_ = register_module("ffn", T5FeedForward(config, options));
  pos_embedding_ =
      register_module("pos_embedding", T5RelativeEmbedding(config, options.dtype()));
}

at::Tensor T5SelfAttentionImpl::position_bias(const at::Tensor& buckets) {
  return pos_embedding_(buckets);
}

at::Tensor T5SelfAttentionImpl::forward(const at::Tensor& x, const at::Tensor& buckets,
                                        const at::Tensor& k_lens) {
  const auto bias = pos_embedding_(buckets);  // [1, heads, L, L]
  auto h = x + attn_(norm1_(x), bias, k_lens);
  return h + ffn_(norm2_(h));
}

// ---- Encoder ---------------------------------------------------------------------------------

Umt5EncoderImpl::Umt5EncoderImpl(const Umt5Config& config, const Umt5EncoderOptions& options)
    : config_(config), options_(options) {
  token_embedding_ = register_module(
      "token_embedding", T5Embedding(config.vocab(), config.dim(), options.dtype()));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers(); ++i)
    blocks_->push_back(T5SelfAttention(config, options));
  norm_ = register_module("norm", T5LayerNorm(config.dim(), config.eps(), options.dtype()));
}

void Umt5EncoderImpl::set_matmul(Umt5Matmul matmul, int64_t upcast_rows) {
  options_.matmul(matmul).upcast_rows(upcast_rows);
  for (auto& module : modules(/*include_self=*/false))
    if (auto* linear = dynamic_cast<T5LinearImpl*>(module.get()))
      linear->set_matmul(matmul, upcast_rows);
}

namespace {

// Number of real tokens per row of a right-padded mask: int64 [B]. Throws when the mask has
// holes or an empty row, which the tokenizer never produces.
at::Tensor mask_lengths(const at::Tensor& mask, int64_t batch, int64_t len) {
  if (mask.dim() != 2 || mask.size(0) != batch || mask.size(1) != len)
    throw ValidationError("Umt5Encoder: mask has " + std::to_string(mask.dim()) +
                          " dims / " + std::to_string(mask.numel()) +
                          " elements; it must be [B, L] like the ids, [" + std::to_string(batch) +
                          ", " + std::to_string(len) + "]");
  const auto real = mask.ne(0).to(at::kLong).cpu();
  const auto lens = real.sum(1);
  const auto prefix = at::arange(len, at::kLong).unsqueeze(0) < lens.unsqueeze(1);
  if (!at::equal(prefix.to(at::kLong), real))
    throw ValidationError(
        "Umt5Encoder: attention mask is not right-padded (1s then 0s in each row); the "
        "tokenizer pads on the right");
  if (lens.min().item<int64_t>() < 1)
    throw ValidationError("Umt5Encoder: a mask row has no real token; every prompt has an EOS");
  return lens;
}

}  // namespace

at::Tensor Umt5EncoderImpl::forward(const at::Tensor& ids, const at::Tensor& mask,
                                    Umt5Trace* trace) {
  TORCH_CHECK(ids.dim() == 2, "Umt5Encoder expects ids [B, L]");
  const int64_t batch = ids.size(0), len = ids.size(1);
  at::Tensor k_lens;
  if (mask.defined()) {
    k_lens = mask_lengths(mask, batch, len);
    if (k_lens.min().item<int64_t>() == len) k_lens = at::Tensor();  // no padding to skip
  }

  auto x = token_embedding_(ids.to(at::kLong)).to(at::kFloat);  // [B, L, dim]
  if (trace) trace->token_embedding = x;
  // Buckets depend only on L; each block looks them up in its own table.
  const auto buckets =
      t5_relative_position_buckets(len, len, config_.num_buckets(), config_.max_distance())
          .to(ids.device());
  for (size_t i = 0; i < blocks_->size(); ++i) {
    // Placement `stream` brings each block in for its visit (and the next one ahead).
    const auto visit =
        visit_block(*(*blocks_)[i], i + 1 < blocks_->size() ? (*blocks_)[i + 1].get() : nullptr);
    auto* block = (*blocks_)[i]->as<T5SelfAttentionImpl>();
    if (trace) trace->block_pos_biases.push_back(block->position_bias(buckets));
    x = block->forward(x, buckets, k_lens);
    if (trace) trace->blocks.push_back(x);
  }
  x = norm_(x);
  if (trace) trace->norm = x;
  return x;
}

// ---- Expected tensors ------------------------------------------------------------------------

std::vector<io::TensorInfo> umt5_expected_tensors(const Umt5Config& config,
                                                  at::ScalarType dtype) {
  const std::string type = io::scalar_type_to_dtype(dtype);
  std::vector<io::TensorInfo> infos;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    infos.push_back(io::TensorInfo{std::move(name), type, std::move(shape), ""});
  };
  const int64_t dim = config.dim(), attn = config.dim_attn(), ffn = config.dim_ffn();
  add("token_embedding.weight", {config.vocab(), dim});
  for (int64_t i = 0; i < config.num_layers(); ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    add(p + "norm1.weight", {dim});
    add(p + "attn.q.weight", {attn, dim});
    add(p + "attn.k.weight", {attn, dim});
    add(p + "attn.v.weight", {attn, dim});
    add(p + "attn.o.weight", {dim, attn});
    add(p + "norm2.weight", {dim});
    add(p + "ffn.gate.0.weight", {ffn, dim});
    add(p + "ffn.fc1.weight", {ffn, dim});
    add(p + "ffn.fc2.weight", {dim, ffn});
    add(p + "pos_embedding.embedding.weight", {config.num_buckets(), config.num_heads()});
  }
  add("norm.weight", {dim});
  return infos;
}

}  // namespace wan::models
