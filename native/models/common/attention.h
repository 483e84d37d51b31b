// The one attention used by every model: softmax(q k^T * scale + bias) v, through one of two
// kernels that compute the same function:
// - kChunked: matmul + softmax in chunks of queries, so that the score buffer is
//   [B, H, chunk, Lk] instead of [B, H, Lq, Lk];
// - kSdpa: at::scaled_dot_product_attention (torch >= 2.0), which picks a fused kernel (flash
//   attention on CPU and CUDA, memory-efficient attention on CUDA with a mask) that never holds
//   the scores of more than one block. docs/dit.md has the parity and the benchmark of both.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>

namespace wan::models {

enum class AttentionBackend { kChunked, kSdpa };

// "chunked", "sdpa".
std::string to_string(AttentionBackend backend);
// The inverse of to_string; throws wan::Error naming the valid spellings.
AttentionBackend parse_attention_backend(const std::string& name);

// The backend of every attention whose options leave `backend` unset: kSdpa, unless the
// environment variable WAN_ATTENTION (chunked|sdpa) says otherwise when first read.
AttentionBackend default_attention_backend();
// Changes that default for the whole process (tests run the model parity suites under both).
void set_default_attention_backend(AttentionBackend backend);

struct AttentionOptions {
  // Multiplier of q k^T; unset means 1/sqrt(head_dim). T5 uses 1.0 (no scaling).
  std::optional<double> scale;
  // Additive bias broadcastable to [B, H, Lq, Lk] (T5's relative position bias), or undefined.
  at::Tensor bias;
  // Number of valid keys per sample, int64 [B]; keys at positions >= k_lens[b] are ignored.
  at::Tensor k_lens;
  // Queries per chunk; 0 lets the backend choose: kChunked picks a chunk so the score buffer
  // stays near 256 MiB, kSdpa passes all queries to one fused call.
  int64_t query_chunk = 0;
  // Scores and softmax are computed in float32 (as the official code does on CPU). The fused
  // kernels always accumulate in float32, so false (half-precision softmax) runs kChunked.
  bool softmax_in_float = true;
  // Unset: default_attention_backend().
  std::optional<AttentionBackend> backend;
};

// q: [B, Lq, H, D], k/v: [B, Lk, H, D] -> [B, Lq, H, D] in q's dtype.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionOptions& options = {});

// Queries per chunk that keep a [B, H, chunk, Lk] float32 score buffer near `budget_bytes`.
int64_t attention_query_chunk(int64_t batch, int64_t heads, int64_t lq, int64_t lk,
                              int64_t budget_bytes);

}  // namespace wan::models
