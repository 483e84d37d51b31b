#include "models/common/attention.h"

#include <ATen/ops/scaled_dot_product_attention.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/error.h"

namespace wan::models {
namespace {

AttentionBackend backend_from_environment() {
  const char* name = std::getenv("WAN_ATTENTION");
  if (!name || !*name) return AttentionBackend::kSdpa;
  try {
    return parse_attention_backend(name);
  } catch (const Error& e) {
    throw Error(std::string("environment variable WAN_ATTENTION: ") + e.what());
  }
}

std::atomic<AttentionBackend>& default_backend() {
  static std::atomic<AttentionBackend> backend{backend_from_environment()};
  return backend;
}

// Keys past k_lens[b] get -inf so they take no probability mass: float32 [B, 1, 1, Lk].
at::Tensor key_mask(const at::Tensor& k_lens, int64_t batch, int64_t lk, const at::Device& device) {
  const auto positions = at::arange(lk, at::TensorOptions().device(device).dtype(at::kLong));
  const auto lens = k_lens.to(device, at::kLong).view({batch, 1});
  return at::zeros({batch, 1, 1, lk}, at::TensorOptions().device(device).dtype(at::kFloat))
      .masked_fill_((positions.view({1, lk}) >= lens).view({batch, 1, 1, lk}),
                    -std::numeric_limits<float>::infinity());
}

at::Tensor chunked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const AttentionOptions& options, double scale) {
  const int64_t batch = q.size(0), lq = q.size(1), heads = q.size(2), head_dim = q.size(3);
  const int64_t lk = k.size(1);
  const int64_t chunk =
      options.query_chunk > 0
          ? options.query_chunk
          : attention_query_chunk(batch, heads, lq, lk, int64_t{256} << 20);

  const auto qh = q.permute({0, 2, 1, 3});  // [B, H, Lq, D]
  const auto kt = k.permute({0, 2, 3, 1});  // [B, H, D, Lk]
  const auto vh = v.permute({0, 2, 1, 3});  // [B, H, Lk, D]
  const auto mask =
      options.k_lens.defined() ? key_mask(options.k_lens, batch, lk, k.device()) : at::Tensor();

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
    if (mask.defined()) scores.add_(mask);
    auto probs = at::softmax(scores, -1).to(v.scalar_type());
    scores = at::Tensor();  // free before the second matmul
    out.narrow(1, start, len).copy_(at::matmul(probs, vh).permute({0, 2, 1, 3}));
  }
  return out;
}

at::Tensor sdpa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const AttentionOptions& options, double scale) {
  const int64_t batch = q.size(0), lq = q.size(1), heads = q.size(2), head_dim = q.size(3);
  int64_t lk = k.size(1);
  auto kh = k.permute({0, 2, 1, 3});  // [B, H, Lk, D]
  auto vh = v.permute({0, 2, 1, 3});
  // One sample: drop the ignored keys instead of masking them, so the kernel runs without a
  // mask (the fastest flash path, on CUDA too).
  at::Tensor mask;
  if (options.k_lens.defined() && batch == 1) {
    const int64_t valid = std::clamp<int64_t>(options.k_lens.reshape({-1})[0].item<int64_t>(), 0, lk);
    kh = kh.narrow(2, 0, valid);
    vh = vh.narrow(2, 0, valid);
    lk = valid;
  } else if (options.k_lens.defined()) {
    mask = key_mask(options.k_lens, batch, lk, k.device());
  }
  if (options.bias.defined()) mask = mask.defined() ? options.bias + mask : options.bias;
  // CUDA's memory-efficient kernel takes a bias of the query's dtype only (else math, which
  // would hold every score); the CPU flash kernel adds a float32 mask in float32.
  if (mask.defined() && !q.is_cpu() && mask.scalar_type() != q.scalar_type())
    mask = mask.to(q.scalar_type());

  const auto qh = q.permute({0, 2, 1, 3});  // [B, H, Lq, D]
  auto out = at::empty({batch, lq, heads, head_dim}, q.options());
  const int64_t chunk = options.query_chunk > 0 ? options.query_chunk : std::max<int64_t>(lq, 1);
  for (int64_t start = 0; start < lq; start += chunk) {
    const int64_t len = std::min(chunk, lq - start);
    std::optional<at::Tensor> chunk_mask;
    if (mask.defined()) chunk_mask = mask.size(-2) == 1 ? mask : mask.narrow(-2, start, len);
    const auto o = at::scaled_dot_product_attention(qh.narrow(2, start, len), kh, vh, chunk_mask,
                                                    /*dropout_p=*/0.0, /*is_causal=*/false, scale);
    out.narrow(1, start, len).copy_(o.permute({0, 2, 1, 3}));  // [B, H, len, D] -> [B, len, H, D]
  }
  return out;
}

}  // namespace

std::string to_string(AttentionBackend backend) {
  return backend == AttentionBackend::kSdpa ? "sdpa" : "chunked";
}

AttentionBackend parse_attention_backend(const std::string& name) {
  if (name == "sdpa") return AttentionBackend::kSdpa;
  if (name == "chunked") return AttentionBackend::kChunked;
  throw Error("'" + name + "' is not an attention backend; use sdpa or chunked.");
}

AttentionBackend default_attention_backend() { return default_backend().load(); }

void set_default_attention_backend(AttentionBackend backend) { default_backend().store(backend); }

int64_t attention_query_chunk(int64_t batch, int64_t heads, int64_t lq, int64_t lk,
                              int64_t budget_bytes) {
  // Scores and their softmax coexist briefly: two float32 buffers per query row.
  const int64_t bytes_per_query = std::max<int64_t>(1, batch * heads * lk * 4 * 2);
  return std::clamp<int64_t>(budget_bytes / bytes_per_query, 1, std::max<int64_t>(lq, 1));
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionOptions& options) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention expects [B, L, H, D]");
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(3))));
  const auto backend = options.backend.value_or(default_attention_backend());
  if (backend == AttentionBackend::kSdpa && options.softmax_in_float)
    return sdpa_attention(q, k, v, options, scale);
  return chunked_attention(q, k, v, options, scale);
}

}  // namespace wan::models
