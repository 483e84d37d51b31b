#include "models/t5/umt5_encoder.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/tensor_index.h"
#include "models/t5/umt5_text_encoder.h"
#include "test_util.h"

namespace wan::models {
namespace {

using testing::golden_tensor;
using testing::tiny_path;

// Suggested tolerance of goldens/t5.safetensors (manifest): float32 max abs error.
constexpr double kAtol = 1e-5;  // measured at most 2.8e-6

std::string tiny_weights() { return tiny_path("weights/t5_tiny_encoder.pth"); }

Umt5Encoder tiny_encoder(const Umt5EncoderOptions& options = {}) {
  return load_umt5_encoder(io::load_tensors(tiny_weights()), tiny_weights(), options);
}

std::vector<std::string> golden_prompts() {
  const auto metadata = io::read_metadata(tiny_path("goldens/t5.safetensors"));
  return nlohmann::json::parse(metadata.at("prompts")).get<std::vector<std::string>>();
}

// Max abs difference, for the sensitivity and reduced-precision checks.
double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST(Umt5Config, DetectedFromTinyWeightsMatchesManifest) {
  const auto config =
      Umt5Config::from_tensors(io::load_tensors(tiny_weights()), tiny_weights());
  EXPECT_EQ(config, Umt5Config(512, 64, 64, 128, 4, 2));
  EXPECT_EQ(config.num_buckets(), 32);
  EXPECT_EQ(Umt5Config::from_tensor_infos(io::read_tensor_infos(tiny_weights()), tiny_weights()),
            config);
}

TEST(Umt5Config, Umt5XxlHoldsExactlyTheReleasedParameterCount) {
  const auto infos = umt5_expected_tensors(Umt5Config::umt5_xxl(), at::kBFloat16);
  int64_t params = 0, bytes = 0;
  for (const auto& info : infos) {
    params += info.numel();
    bytes += info.nbytes();
  }
  EXPECT_EQ(params, 5680910336);
  EXPECT_EQ(bytes, 11361820672);
  EXPECT_EQ(Umt5Config::umt5_xxl().parameter_count(), 5680910336);
  EXPECT_EQ(infos.size(), 2u + 24u * 10u);
}

TEST(Umt5ExpectedTensors, EqualTinyModuleParametersInOrder) {
  const auto config = Umt5Config(512, 64, 64, 128, 4, 2);
  Umt5Encoder encoder(config, Umt5EncoderOptions().dtype(at::kBFloat16));
  const auto expected = umt5_expected_tensors(config, at::kBFloat16);
  const auto params = encoder->named_parameters(/*recurse=*/true);
  ASSERT_EQ(params.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(params[i].key(), expected[i].name);
    EXPECT_EQ(params[i].value().sizes().vec(), expected[i].shape) << expected[i].name;
    EXPECT_EQ(expected[i].dtype, "BF16");
    EXPECT_EQ(params[i].value().scalar_type(), at::kBFloat16);
  }
  // The official checkpoint has the same key set.
  const auto infos = io::read_tensor_infos(tiny_weights());
  std::set<std::string> file_keys, expected_keys;
  for (const auto& info : infos) file_keys.insert(info.name);
  for (const auto& info : expected) expected_keys.insert(info.name);
  EXPECT_EQ(file_keys, expected_keys);
}

TEST(Umt5RelativePosition, BucketBoundariesMatchOfficialFormula) {
  // First distance of each bucket, from the official _relative_position_bucket
  // (bidirectional, 32 buckets, max_dist 128): keys after the query use buckets 16..31.
  const std::vector<std::pair<int64_t, int64_t>> starts = {
      {0, 0},   {1, 1},   {2, 2},   {3, 3},   {4, 4},   {5, 5},   {6, 6},   {7, 7},
      {8, 8},   {9, 12},  {10, 16}, {11, 23}, {12, 32}, {13, 46}, {14, 64}, {15, 91}};
  const int64_t len = 400;
  const auto buckets = t5_relative_position_buckets(len, len, 32, 128);
  const auto row = buckets[0];                // keys after query 0: offset = key index
  const auto col = buckets.select(1, 0);      // keys before query q: offset = -q
  for (size_t i = 0; i < starts.size(); ++i) {
    const auto [bucket, first] = starts[i];
    const int64_t last = i + 1 < starts.size() ? starts[i + 1].second - 1 : len - 1;
    for (int64_t d : {first, last}) {
      EXPECT_EQ(col[d].item<int64_t>(), bucket) << "offset -" << d;
      if (d > 0) {
        EXPECT_EQ(row[d].item<int64_t>(), bucket + 16) << "offset +" << d;
      }
    }
  }
}

TEST(Umt5TextEncoder, ContextPerPromptMatchesOfficialWithin1e5) {
  auto text_encoder = load_umt5_text_encoder(
      tiny_weights(), tiny_path("weights/tokenizer/spiece.model"), at::kFloat, 32);
  const auto prompts = golden_prompts();
  ASSERT_EQ(prompts.size(), 7u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE("prompt " + std::to_string(i));
    const auto context = text_encoder.encode(prompts[i]);
    EXPECT_EQ(context.scalar_type(), at::kFloat);
    EXPECT_ALLCLOSE(context, golden_tensor("t5", "context." + std::to_string(i)), kAtol);
  }
}

TEST(Umt5Encoder, BatchedMaskedOutputAndIntermediatesMatchOfficialWithin1e5) {
  auto encoder = tiny_encoder();
  const auto ids = golden_tensor("t5", "input_ids");
  const auto mask = golden_tensor("t5", "attention_mask");
  Umt5Trace trace;
  const auto out = encoder->forward(ids, mask, &trace);
  EXPECT_ALLCLOSE(out, golden_tensor("t5", "encoder_out_full"), kAtol);
  EXPECT_ALLCLOSE(trace.token_embedding, golden_tensor("t5", "debug.batch.token_embedding"), kAtol);
  ASSERT_EQ(trace.blocks.size(), 2u);
  for (int j = 0; j < 2; ++j) {
    const auto name = "debug.batch.blocks." + std::to_string(j);
    EXPECT_ALLCLOSE(trace.blocks[j], golden_tensor("t5", name), kAtol);
    EXPECT_ALLCLOSE(trace.block_pos_biases[j], golden_tensor("t5", name + ".pos_embedding"), kAtol);
  }
  EXPECT_ALLCLOSE(trace.norm, golden_tensor("t5", "debug.batch.norm"), kAtol);
}

TEST(Umt5Encoder, UnpaddedRealTokensEqualMaskedBatchRows) {
  auto encoder = tiny_encoder();
  const auto ids = golden_tensor("t5", "input_ids");
  const auto mask = golden_tensor("t5", "attention_mask");
  const auto batched = encoder->forward(ids, mask);
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const auto len = mask[b].sum().item<int64_t>();
    const auto single = encoder->forward(ids[b].narrow(0, 0, len).unsqueeze(0))[0];
    EXPECT_ALLCLOSE(single, batched[b].narrow(0, 0, len), 1e-5);
  }
}

TEST(Umt5Encoder, PerturbedWeightMovesOutputBeyondTolerance) {
  // Guards the parity tests: a wrong value in any of these tensors must be detectable at kAtol.
  const auto ids = golden_tensor("t5", "input_ids");
  const auto mask = golden_tensor("t5", "attention_mask");
  const auto expected = golden_tensor("t5", "encoder_out_full");
  for (const std::string key :
       {"blocks.1.ffn.gate.0.weight", "blocks.0.pos_embedding.embedding.weight",
        "blocks.0.attn.k.weight", "norm.weight"}) {
    auto tensors = io::load_tensors(tiny_weights());
    auto perturbed = tensors.at(key).clone();
    perturbed.view(-1)[0] += 0.05;
    tensors[key] = perturbed;
    auto encoder = load_umt5_encoder(tensors, "perturbed", {});
    const double err = max_abs_diff(encoder->forward(ids, mask), expected);
    EXPECT_GT(err, 10 * kAtol) << key;
  }
}

TEST(Umt5Encoder, MisShapedKeyErrorNamesTheKey) {
  auto tensors = io::load_tensors(tiny_weights());
  tensors["blocks.1.attn.k.weight"] = at::zeros({64, 32});
  try {
    load_umt5_encoder(tensors, "t5_tiny_encoder.pth", {});
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("blocks.1.attn.k.weight"), std::string::npos) << message;
    EXPECT_NE(message.find("t5_tiny_encoder.pth"), std::string::npos) << message;
  }
}

TEST(Umt5Encoder, MissingKeyErrorNamesTheKey) {
  auto tensors = io::load_tensors(tiny_weights());
  tensors.erase("blocks.1.ffn.fc2.weight");
  try {
    load_umt5_encoder(tensors, "t5_tiny_encoder.pth", {});
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.1.ffn.fc2.weight"), std::string::npos)
        << e.what();
  }
}

TEST(Umt5Encoder, RejectsMaskWithHoles) {
  auto encoder = tiny_encoder();
  const auto ids = at::ones({1, 4}, at::kLong);
  const auto mask = at::tensor(std::vector<int64_t>{1, 0, 1, 0}, at::kLong).unsqueeze(0);
  EXPECT_THROW(encoder->forward(ids, mask), ValidationError);
}

// Reduced-precision storage: the float32 golden is the reference; docs/t5.md records the numbers.
TEST(Umt5Encoder, Bf16WeightsStayNearFloat32Reference) {
  const auto ids = golden_tensor("t5", "input_ids");
  const auto mask = golden_tensor("t5", "attention_mask");
  const auto expected = golden_tensor("t5", "encoder_out_full");
  const double scale = expected.abs().max().item<double>();
  for (auto matmul : {Umt5Matmul::kReducedInputs, Umt5Matmul::kFloatWeights}) {
    auto encoder = tiny_encoder(Umt5EncoderOptions().dtype(at::kBFloat16).matmul(matmul));
    const auto out = encoder->forward(ids, mask);
    EXPECT_EQ(out.scalar_type(), at::kFloat);
    const double err = max_abs_diff(out, expected);
    std::printf("  [bf16 %s] max abs error %.3g (output max |x| %.3g)\n",
                matmul == Umt5Matmul::kReducedInputs ? "reduced-inputs" : "float-weights", err,
                scale);
    EXPECT_LT(err, 0.05 * scale);
  }
}

}  // namespace
}  // namespace wan::models
