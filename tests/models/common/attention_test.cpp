// wan::models::attention: chunking is exact, k_lens masks keys, bias is added, and the automatic
// chunk keeps the score buffer bounded.
#include "models/common/attention.h"

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

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

TEST(Attention, ChunkedEqualsUnchunkedWithin1e6) {
  const auto [q, k, v] = random_qkv(2, 37, 29, 3, 16, 1);
  AttentionOptions whole;
  whole.query_chunk = 37;
  const auto full = attention(q, k, v, whole);
  EXPECT_ALLCLOSE(full, reference_attention(q, k, v, 1.0 / 4.0), 1e-5);
  for (int64_t chunk : {1, 2, 5, 16, 36, 64}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    AttentionOptions options;
    options.query_chunk = chunk;
    EXPECT_ALLCLOSE(attention(q, k, v, options), full, 1e-6);
  }
}

TEST(Attention, KLensIgnoresKeysPastEachSampleLength) {
  const auto [q, k, v] = random_qkv(2, 11, 13, 2, 8, 2);
  AttentionOptions options;
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

TEST(Attention, AddsBiasPerChunk) {
  const auto [q, k, v] = random_qkv(1, 9, 7, 2, 4, 3);
  const auto bias = at::randn({1, 2, 9, 7}, at::make_generator<at::CPUGeneratorImpl>(4));
  for (int64_t chunk : {1, 4, 9}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    AttentionOptions options;
    options.scale = 1.0;  // T5 style: no scaling
    options.bias = bias;
    options.query_chunk = chunk;
    EXPECT_ALLCLOSE(attention(q, k, v, options), reference_attention(q, k, v, 1.0, bias), 1e-5);
  }
  // A bias broadcast over queries ([.., 1, Lk]) is added to every chunk.
  const auto row_bias = at::randn({1, 2, 1, 7}, at::make_generator<at::CPUGeneratorImpl>(5));
  AttentionOptions options;
  options.bias = row_bias;
  options.query_chunk = 2;
  EXPECT_ALLCLOSE(attention(q, k, v, options), reference_attention(q, k, v, 0.5, row_bias), 1e-5);
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
