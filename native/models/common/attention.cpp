#include "models/common/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace wan::models {

int64_t attention_query_chunk(int64_t batch, int64_t heads, int64_t lq, int64_t lk,
                              int64_t budget_bytes) {
  // Scores and their softmax coexist briefly: two float32 buffers per query row.
  const int64_t bytes_per_query = std::max<int64_t>(1, batch * heads * lk * 4 * 2);
  return std::clamp<int64_t>(budget_bytes / bytes_per_query, 1, std::max<int64_t>(lq, 1));
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionOptions& options) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention expects [B, L, H, D]");
  const int64_t batch = q.size(0), lq = q.size(1), heads = q.size(2), head_dim = q.size(3);
  const int64_t lk = k.size(1);
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(head_dim)));
  const int64_t chunk =
      options.query_chunk > 0
          ? options.query_chunk
          : attention_query_chunk(batch, heads, lq, lk, int64_t{256} << 20);

  const auto qh = q.permute({0, 2, 1, 3});  // [B, H, Lq, D]
  const auto kt = k.permute({0, 2, 3, 1});  // [B, H, D, Lk]
  const auto vh = v.permute({0, 2, 1, 3});  // [B, H, Lk, D]

  // Keys past k_lens[b] get -inf so they take no probability mass: [B, 1, 1, Lk].
  at::Tensor key_mask;
  if (options.k_lens.defined()) {
    const auto positions = at::arange(lk, k.options().dtype(at::kLong));
    const auto lens = options.k_lens.to(k.device(), at::kLong).view({batch, 1});
    key_mask = at::zeros({batch, 1, 1, lk}, k.options().dtype(at::kFloat))
                   .masked_fill_((positions.view({1, lk}) >= lens).view({batch, 1, 1, lk}),
                                 -std::numeric_limits<float>::infinity());
  }

  auto out = at::empty({batch, lq, heads, head_dim}, q.options());
  for (int64_t start = 0; start < lq; start += chunk) {
    const int64_t len = std::min(chunk, lq - start);
    auto scores = at::matmul(qh.narrow(2, start, len), kt);  // [B, H, len, Lk]
    if (options.softmax_in_float) scores = scores.to(at::kFloat);
    if (scale != 1.0) scores.mul_(scale);
    if (options.bias.defined()) {
      const auto& bias = options.bias;
      scores.add_(bias.size(-2) == 1 ? bias : bias.narrow(-2, start, len));
    }
    if (key_mask.defined()) scores.add_(key_mask);
    auto probs = at::softmax(scores, -1).to(v.scalar_type());
    scores = at::Tensor();  // free before the second matmul
    out.narrow(1, start, len).copy_(at::matmul(probs, vh).permute({0, 2, 1, 3}));
  }
  return out;
}

}  // namespace wan::models
