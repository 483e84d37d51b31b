// The UMT5 text encoder of Wan: T5Encoder of the official wan/modules/t5.py with shared_pos=false
// (each block owns its relative position bias), gated-GELU feed-forward and no attention scaling.
// Parameter names match models_t5_umt5-xxl-enc-bf16.pth.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "io/tensor_map.h"

namespace wan::models {

// Sizes of a UMT5 encoder. Presets name released models; from_tensors / from_tensor_infos read
// them off a checkpoint in the official layout.
struct Umt5Config {
  Umt5Config(int64_t vocab, int64_t dim, int64_t dim_attn, int64_t dim_ffn, int64_t num_heads,
             int64_t num_layers)
      : vocab_(vocab),
        dim_(dim),
        dim_attn_(dim_attn),
        dim_ffn_(dim_ffn),
        num_heads_(num_heads),
        num_layers_(num_layers) {}

  // google/umt5-xxl encoder as used by every Wan2.1 pipeline (5,680,910,336 parameters).
  static Umt5Config umt5_xxl();
  // Reads the sizes from official-layout tensors; throws LoadError naming the key it needs.
  static Umt5Config from_tensors(const io::TensorMap& tensors, const std::string& origin);
  static Umt5Config from_tensor_infos(const std::vector<io::TensorInfo>& infos,
                                      const std::string& origin);

  int64_t parameter_count() const;
  bool operator==(const Umt5Config& other) const;

  TORCH_ARG(int64_t, vocab);
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, dim_attn);
  TORCH_ARG(int64_t, dim_ffn);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(int64_t, num_layers);
  // Relative position buckets (half per direction) and the distance where they stop growing.
  TORCH_ARG(int64_t, num_buckets) = 32;
  TORCH_ARG(int64_t, max_distance) = 128;
  TORCH_ARG(double, eps) = 1e-6;
};

// How a linear layer multiplies when its weight is stored in bf16/fp16 while the activations
// are float32 (the encoder keeps its residual stream, norms and softmax in float32).
enum class Umt5Matmul {
  // Round the activations to the weight dtype and use the native reduced-precision GEMM
  // (oneDNN accumulates in float32); the output returns to float32. Fastest on CPU.
  kReducedInputs,
  // Upcast the weight to float32, a block of rows at a time, and multiply in float32.
  kFloatWeights,
};

struct Umt5EncoderOptions {
  // Dtype the linear layers compute in (kFloat for parity, kBFloat16 as the checkpoint ships),
  // and the dtype parameters are kept in, except those stored narrower (fp8), which stay as
  // stored and are cast per call (models/common/weight_cast.h).
  TORCH_ARG(at::ScalarType, dtype) = at::kFloat;
  TORCH_ARG(Umt5Matmul, matmul) = Umt5Matmul::kReducedInputs;
  // Weight rows upcast per multiply in kFloatWeights: 128 rows of 4096 float32 values (2 MiB)
  // stay in cache between the upcast and the multiply.
  TORCH_ARG(int64_t, upcast_rows) = 128;
};

// Linear layer without bias (T5 has none) whose weight may be stored in a reduced dtype (bf16,
// or fp8 with a scale_weight buffer).
class T5LinearImpl : public torch::nn::Module {
 public:
  T5LinearImpl(int64_t in_features, int64_t out_features, const Umt5EncoderOptions& options);
  // x: [..., in] float32 -> [..., out] float32
  at::Tensor forward(const at::Tensor& x);
  void set_matmul(Umt5Matmul matmul, int64_t upcast_rows);
  at::Tensor weight;

 private:
  at::ScalarType compute_dtype_;
  Umt5Matmul matmul_;
  int64_t upcast_rows_;
};
TORCH_MODULE(T5Linear);

// Mirrors T5LayerNorm: x * rsqrt(mean(x^2) + eps) * weight, statistics in float32.
class T5LayerNormImpl : public torch::nn::Module {
 public:
  T5LayerNormImpl(int64_t dim, double eps, at::ScalarType dtype);
  // x: [B, L, dim] -> [B, L, dim] float32
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(T5LayerNorm);

// Lookup table with a weight parameter (nn.Embedding without its float32 initialisation, so a
// 2 GiB bf16 table is never materialised in float32).
class T5EmbeddingImpl : public torch::nn::Module {
 public:
  T5EmbeddingImpl(int64_t count, int64_t dim, at::ScalarType dtype);
  // ids: int64 [...] -> [..., dim] in the weight dtype
  at::Tensor forward(const at::Tensor& ids);
  at::Tensor weight;
};
TORCH_MODULE(T5Embedding);

// Bucket index of each (query, key) offset for a bidirectional T5 bias: int64 [lq, lk].
// Uses the same float32 operations as the official _relative_position_bucket so bucket
// boundaries agree exactly.
at::Tensor t5_relative_position_buckets(int64_t lq, int64_t lk, int64_t num_buckets,
                                        int64_t max_distance);

// Mirrors T5RelativeEmbedding (bidirectional).
class T5RelativeEmbeddingImpl : public torch::nn::Module {
 public:
  T5RelativeEmbeddingImpl(const Umt5Config& config, at::ScalarType dtype);
  // buckets: int64 [lq, lk] -> bias [1, heads, lq, lk] float32
  at::Tensor forward(const at::Tensor& buckets);

 private:
  T5Embedding embedding_{nullptr};
};
TORCH_MODULE(T5RelativeEmbedding);

// Mirrors T5Attention (self-attention, no scaling).
class T5AttentionImpl : public torch::nn::Module {
 public:
  T5AttentionImpl(const Umt5Config& config, const Umt5EncoderOptions& options);
  // x: [B, L, dim], bias: [1, heads, L, L], k_lens: int64 [B] or undefined -> [B, L, dim]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& bias, const at::Tensor& k_lens);

 private:
  int64_t num_heads_;
  T5Linear q_{nullptr}, k_{nullptr}, v_{nullptr}, o_{nullptr};
};
TORCH_MODULE(T5Attention);

// Mirrors T5FeedForward: fc2(fc1(x) * gelu_tanh(gate(x))).
class T5FeedForwardImpl : public torch::nn::Module {
 public:
  T5FeedForwardImpl(const Umt5Config& config, const Umt5EncoderOptions& options);
  // x: [B, L, dim] -> [B, L, dim]
  at::Tensor forward(const at::Tensor& x);

 private:
  T5Linear gate_{nullptr}, fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(T5FeedForward);

// Mirrors T5SelfAttention, the encoder block (pre-norm attention and feed-forward).
class T5SelfAttentionImpl : public torch::nn::Module {
 public:
  T5SelfAttentionImpl(const Umt5Config& config, const Umt5EncoderOptions& options);
  // x: [B, L, dim], buckets: int64 [L, L], k_lens: int64 [B] or undefined -> [B, L, dim]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& buckets, const at::Tensor& k_lens);
  // This block's relative position bias: [1, heads, L, L].
  at::Tensor position_bias(const at::Tensor& buckets);

 private:
  T5LayerNorm norm1_{nullptr}, norm2_{nullptr};
  T5Attention attn_{nullptr};
  T5FeedForward ffn_{nullptr};
  T5RelativeEmbedding pos_embedding_{nullptr};
};
TORCH_MODULE(T5SelfAttention);

// Intermediate outputs of one forward call, for parity tests against the official submodules.
struct Umt5Trace {
  at::Tensor token_embedding;                 // [B, L, dim]
  std::vector<at::Tensor> blocks;             // each [B, L, dim]
  std::vector<at::Tensor> block_pos_biases;   // each [1, heads, L, L]
  at::Tensor norm;                            // [B, L, dim] (the output)
};

// Mirrors T5Encoder of the official code (shared_pos=false).
class Umt5EncoderImpl : public torch::nn::Module {
 public:
  explicit Umt5EncoderImpl(const Umt5Config& config, const Umt5EncoderOptions& options = {});
  // ids: int64 [B, L]; mask: int64/bool [B, L] with 1 for real tokens, right padding only
  // (undefined = all real) -> float32 [B, L, dim]. Padded keys are ignored; padded query rows are
  // still computed, as in the official code.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask = {},
                     Umt5Trace* trace = nullptr);

  // Switches how every linear layer multiplies reduced-precision weights.
  void set_matmul(Umt5Matmul matmul, int64_t upcast_rows = 128);

  const Umt5Config& config() const { return config_; }
  const Umt5EncoderOptions& options() const { return options_; }

 private:
  Umt5Config config_;
  Umt5EncoderOptions options_;
  T5Embedding token_embedding_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};  // of T5SelfAttention
  T5LayerNorm norm_{nullptr};
};
TORCH_MODULE(Umt5Encoder);

// Every parameter an encoder of `config` holds, in registration order, with its storage dtype;
// allocates nothing.
std::vector<io::TensorInfo> umt5_expected_tensors(const Umt5Config& config,
                                                  at::ScalarType dtype);

}  // namespace wan::models
