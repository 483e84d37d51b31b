// wan::models::attention, on both backends: chunking is exact, k_lens masks keys, bias is added,
// the two backends agree, and the automatic chunk keeps the chunked score buffer bounded.
#include "models/common/attention.h"

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "core/error.h"
#include "test_util.h"

namespace wan::models {
namespace {

// softmax(q k^T * scale + bias) v over the whole [Lq, Lk] matrix, float64.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               double scale, const at::Tensor& bias = {}) {
  const auto qh = q.to(at::kDouble).permute({0, 2, 1, 3});
  const auto kh = k.to(at::kDouble).permute({0, 2, 1, 3});
  const auto vh = v.to(at::kDouble).permute({0, 2, 1, 3});
  auto scores = at::matmul(qh, kh.transpose(-1, -2)) * scale;
  if (bias.defined()) scores = scores + bias.to(at::kDouble);
  return at::matmul(at::softmax(scores, -1), vh).permute({0, 2, 1, 3}).to(q.scalar_type());
}

struct Qkv {
  at::Tensor q, k, v;
};

Qkv random_qkv(int64_t b, int64_t lq, int64_t lk, int64_t h, int64_t d, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return {at::randn({b, lq, h, d}, gen), at::randn({b, lk, h, d}, gen),
          at::randn({b, lk, h, d}, gen)};
}

// Every behaviour test runs once per backend.
class AttentionOnBackend : public ::testing::TestWithParam<AttentionBackend> {
 protected:
  AttentionOptions options() const {
    AttentionOptions options;
    options.backend = GetParam();
    return options;
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, AttentionOnBackend,
                         ::testing::Values(AttentionBackend::kChunked, AttentionBackend::kSdpa),
                         [](const auto& backend) { return to_string(backend.param); });

TEST_P(AttentionOnBackend, ChunkedEqualsUnchunkedWithin1e6) {
  const auto [q, k, v] = random_qkv(2, 37, 29, 3, 16, 1);
  auto whole = options();
  whole.query_chunk = 37;
  const auto full = attention(q, k, v, whole);
  EXPECT_ALLCLOSE(full, reference_attention(q, k, v, 1.0 / 4.0), 1e-5);
  for (int64_t chunk : {1, 2, 5, 16, 36, 64}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    auto chunked = options();
    chunked.query_chunk = chunk;
    EXPECT_ALLCLOSE(attention(q, k, v, chunked), full, 1e-6);
  }
}

TEST_P(AttentionOnBackend, KLensIgnoresKeysPastEachSampleLength) {
  const auto [q, k, v] = random_qkv(2, 11, 13, 2, 8, 2);
  auto options = this->options();
  options.k_lens = at::tensor(std::vector<int64_t>{13, 6});
  options.query_chunk = 4;
  const auto got = attention(q, k, v, options);
  const double scale = 1.0 / std::sqrt(8.0);
  // Sample 0 sees every key; sample 1 only its first 6 keys (what the official varlen call does).
  EXPECT_ALLCLOSE(got.narrow(0, 0, 1),
                  reference_attention(q.narrow(0, 0, 1), k.narrow(0, 0, 1), v.narrow(0, 0, 1), scale),
                  1e-5);
  EXPECT_ALLCLOSE(got.narrow(0, 1, 1),
                  reference_attention(q.narrow(0, 1, 1), k.narrow(0, 1, 1).narrow(1, 0, 6),
                                      v.narrow(0, 1, 1).narrow(1, 0, 6), scale),
                  1e-5);
  // Garbage in the masked keys changes nothing.
  auto k2 = k.clone(), v2 = v.clone();
  k2.narrow(0, 1, 1).narrow(1, 6, 7).fill_(1e3);
  v2.narrow(0, 1, 1).narrow(1, 6, 7).fill_(-1e3);
  EXPECT_ALLCLOSE(attention(q, k2, v2, options), got, 0.0);
}

TEST_P(AttentionOnBackend, KLensOfOneSampleEqualsTheSlicedKeys) {
  const auto [q, k, v] = random_qkv(1, 10, 12, 2, 8, 6);
  auto options = this->options();
  options.k_lens = at::tensor(std::vector<int64_t>{5});
  EXPECT_ALLCLOSE(attention(q, k, v, options),
                  reference_attention(q, k.narrow(1, 0, 5), v.narrow(1, 0, 5), 1.0 / std::sqrt(8.0)),
                  1e-5);
}

TEST_P(AttentionOnBackend, AddsBiasPerChunk) {
  const auto [q, k, v] = random_qkv(1, 9, 7, 2, 4, 3);
  const auto bias = at::randn({1, 2, 9, 7}, at::make_generator<at::CPUGeneratorImpl>(4));
  for (int64_t chunk : {1, 4, 9}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    auto options = this->options();
    options.scale = 1.0;  // T5 style: no scaling
    options.bias = bias;
    options.query_chunk = chunk;
    EXPECT_ALLCLOSE(attention(q, k, v, options), reference_attention(q, k, v, 1.0, bias), 1e-5);
  }
  // A bias broadcast over queries ([.., 1, Lk]) is added to every chunk.
  const auto row_bias = at::randn({1, 2, 1, 7}, at::make_generator<at::CPUGeneratorImpl>(5));
  auto options = this->options();
  options.bias = row_bias;
  options.query_chunk = 2;
  EXPECT_ALLCLOSE(attention(q, k, v, options), reference_attention(q, k, v, 0.5, row_bias), 1e-5);
}

// The bias and the k_lens mask of a batch together (T5 with padded prompts).
TEST_P(AttentionOnBackend, AddsBiasAndKLensMaskTogether) {
  const auto [q, k, v] = random_qkv(2, 6, 6, 2, 4, 7);
  const auto bias = at::randn({1, 2, 6, 6}, at::make_generator<at::CPUGeneratorImpl>(8));
  auto options = this->options();
  options.scale = 1.0;
  options.bias = bias;
  options.k_lens = at::tensor(std::vector<int64_t>{6, 3});
  const auto got = attention(q, k, v, options);
  EXPECT_ALLCLOSE(got.narrow(0, 0, 1),
                  reference_attention(q.narrow(0, 0, 1), k.narrow(0, 0, 1), v.narrow(0, 0, 1), 1.0,
                                      bias),
                  1e-5);
  EXPECT_ALLCLOSE(got.narrow(0, 1, 1),
                  reference_attention(q.narrow(0, 1, 1), k.narrow(0, 1, 1).narrow(1, 0, 3),
                                      v.narrow(0, 1, 1).narrow(1, 0, 3), 1.0,
                                      bias.narrow(-1, 0, 3)),
                  1e-5);
}

// The fused kernel against the chunked one at a DiT-like head size, float32 and bfloat16, both
// measured against float64. bf16: the chunked path rounds the probabilities to bf16 before the
// second matmul, the fused kernel keeps them in float32, so it is the closer of the two.
TEST(Attention, SdpaMatchesChunkedAndFloat64) {
  const auto [q, k, v] = random_qkv(1, 300, 300, 4, 128, 9);
  AttentionOptions chunked, sdpa;
  chunked.backend = AttentionBackend::kChunked;
  sdpa.backend = AttentionBackend::kSdpa;
  const auto reference = reference_attention(q.to(at::kDouble), k.to(at::kDouble),
                                             v.to(at::kDouble), 1.0 / std::sqrt(128.0));
  const auto fused = attention(q, k, v, sdpa);
  // Measured 6.9e-7 and 7.4e-7 (300 keys); 2e-6 leaves room for other SIMD widths.
  EXPECT_ALLCLOSE(fused, attention(q, k, v, chunked), 2e-6);
  EXPECT_ALLCLOSE(fused.to(at::kDouble), reference, 2e-6);

  const auto qb = q.to(at::kBFloat16), kb = k.to(at::kBFloat16), vb = v.to(at::kBFloat16);
  const auto reference_bf16 = reference_attention(qb.to(at::kDouble), kb.to(at::kDouble),
                                                  vb.to(at::kDouble), 1.0 / std::sqrt(128.0));
  const auto fused_bf16 = attention(qb, kb, vb, sdpa);
  EXPECT_EQ(fused_bf16.scalar_type(), at::kBFloat16);
  EXPECT_ALLCLOSE(fused_bf16.to(at::kDouble), reference_bf16, 4e-3);  // bf16 output rounding
  EXPECT_ALLCLOSE(attention(qb, kb, vb, chunked).to(at::kDouble), reference_bf16, 2e-2);
}

TEST(Attention, BackendNamesRoundTripAndTheDefaultCanBeChanged) {
  EXPECT_EQ(parse_attention_backend("sdpa"), AttentionBackend::kSdpa);
  EXPECT_EQ(parse_attention_backend("chunked"), AttentionBackend::kChunked);
  EXPECT_THROW(parse_attention_backend("flash"), Error);
  const auto before = default_attention_backend();
  set_default_attention_backend(AttentionBackend::kChunked);
  EXPECT_EQ(default_attention_backend(), AttentionBackend::kChunked);
  set_default_attention_backend(before);
}

TEST(Attention, QueryChunkKeepsScoreBufferBounded) {
  const int64_t budget = int64_t{256} << 20;
  // DiT 1.3B at 480x832x81: 12 heads x 32,760 tokens; the full score matrix would be 51.5 GB.
  const int64_t heads = 12, tokens = 32760;
  const int64_t chunk = attention_query_chunk(1, heads, tokens, tokens, budget);
  EXPECT_GE(chunk, 1);
  EXPECT_LT(chunk, tokens);
  // Scores and probabilities of one chunk: 2 float32 buffers [1, H, chunk, Lk].
  EXPECT_LE(2 * heads * chunk * tokens * 4, budget);
  EXPECT_GT(2 * heads * (chunk + 1) * tokens * 4, budget);  // and uses the budget
  // Small problems run in one chunk; huge key counts still get at least one query.
  EXPECT_EQ(attention_query_chunk(1, 2, 10, 10, budget), 10);
  EXPECT_EQ(attention_query_chunk(4, 64, 1 << 20, int64_t{1} << 30, budget), 1);
}

}  // namespace
}  // namespace wan::models
