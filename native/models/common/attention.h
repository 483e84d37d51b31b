// The one attention used by every model: softmax(q k^T * scale + bias) v, computed in chunks of
// queries so that the score buffer is [B, H, chunk, Lk] instead of [B, H, Lq, Lk].
#pragma once
#include <ATen/ATen.h>

#include <optional>

namespace wan::models {

struct AttentionOptions {
  // Multiplier of q k^T; unset means 1/sqrt(head_dim). T5 uses 1.0 (no scaling).
  std::optional<double> scale;
  // Additive bias broadcastable to [B, H, Lq, Lk] (T5's relative position bias), or undefined.
  at::Tensor bias;
  // Number of valid keys per sample, int64 [B]; keys at positions >= k_lens[b] are ignored.
  at::Tensor k_lens;
  // Queries per chunk; 0 picks a chunk so the score buffer stays near 256 MiB.
  int64_t query_chunk = 0;
  // Scores and softmax are computed in float32 (as the official code does on CPU).
  bool softmax_in_float = true;
};

// q: [B, Lq, H, D], k/v: [B, Lk, H, D] -> [B, Lq, H, D] in q's dtype.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionOptions& options = {});

// Queries per chunk that keep a [B, H, chunk, Lk] float32 score buffer near `budget_bytes`.
int64_t attention_query_chunk(int64_t batch, int64_t heads, int64_t lq, int64_t lk,
                              int64_t budget_bytes);

}  // namespace wan::models
