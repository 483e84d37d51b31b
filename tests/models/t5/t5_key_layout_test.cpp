#include "models/t5/t5_key_layout.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "core/error.h"
#include "io/tensor_index.h"
#include "models/t5/t5_tokenizer.h"
#include "models/t5/umt5_text_encoder.h"
#include "test_util.h"

namespace wan::models {
namespace {

using testing::golden_tensor;
using testing::tiny_path;

std::string tiny_weights() { return tiny_path("weights/t5_tiny_encoder.pth"); }

std::string spiece_bytes() {
  std::ifstream file(tiny_path("weights/tokenizer/spiece.model"), std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

at::Tensor bytes_tensor(const std::string& bytes) {
  auto t = at::empty({static_cast<int64_t>(bytes.size())}, at::kByte);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  return t;
}

// The tiny official checkpoint renamed to ComfyUI's repackaged layout, with the tied embedding
// copy and the embedded tokenizer that those files carry.
io::TensorMap tiny_hf_layout() {
  auto hf = official_to_hf_t5(io::load_tensors(tiny_weights()));
  hf["encoder.embed_tokens.weight"] = hf.at("shared.weight");
  hf["spiece_model"] = bytes_tensor(spiece_bytes());
  return hf;
}

TEST(T5KeyLayout, RenamesToHuggingFaceNames) {
  const auto hf = official_to_hf_t5(io::load_tensors(tiny_weights()));
  for (const char* key : {"shared.weight", "encoder.final_layer_norm.weight",
                          "encoder.block.0.layer.0.layer_norm.weight",
                          "encoder.block.1.layer.0.SelfAttention.q.weight",
                          "encoder.block.1.layer.0.SelfAttention.o.weight",
                          "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight",
                          "encoder.block.1.layer.1.DenseReluDense.wi_0.weight",
                          "encoder.block.1.layer.1.DenseReluDense.wi_1.weight",
                          "encoder.block.1.layer.1.DenseReluDense.wo.weight",
                          "encoder.block.1.layer.1.layer_norm.weight"})
    EXPECT_TRUE(hf.count(key)) << key;
  EXPECT_TRUE(is_hf_t5_layout(hf));
  EXPECT_FALSE(is_hf_t5_layout(io::load_tensors(tiny_weights())));
  // Round trip restores every official key.
  const auto official = io::load_tensors(tiny_weights());
  const auto back = hf_t5_to_official(hf);
  ASSERT_EQ(back.size(), official.size());
  for (const auto& [key, tensor] : official) {
    ASSERT_TRUE(back.count(key)) << key;
    EXPECT_TRUE(at::equal(back.at(key), tensor)) << key;
  }
}

TEST(T5KeyLayout, HuggingFaceLayoutEncodesIdentically) {
  const auto ids = golden_tensor("t5", "input_ids");
  const auto mask = golden_tensor("t5", "attention_mask");
  auto official = load_umt5_encoder(io::load_tensors(tiny_weights()), "official", {});
  std::optional<std::string> spiece;
  auto hf = load_umt5_encoder(tiny_hf_layout(), "hf", {}, &spiece);
  EXPECT_TRUE(at::equal(hf->forward(ids, mask), official->forward(ids, mask)));

  // The embedded tokenizer is the fixture's spiece.model.
  ASSERT_TRUE(spiece.has_value());
  Umt5TextEncoder text_encoder(T5Tokenizer::from_bytes(*spiece, "hf:spiece_model", 32), hf);
  EXPECT_ALLCLOSE(text_encoder.encode("A small red fox runs across a snowy field at sunrise."),
                  golden_tensor("t5", "context.0"), 1e-5);
}

TEST(T5KeyLayout, TiedEmbeddingAloneIsAccepted) {
  auto hf = tiny_hf_layout();
  hf.erase("shared.weight");
  const auto official = hf_t5_to_official(hf);
  EXPECT_TRUE(official.count("token_embedding.weight"));
  EXPECT_FALSE(official.count("encoder.embed_tokens.weight"));
}

TEST(T5KeyLayout, ScaledFp8WeightsAreDequantizedBeforeLoading) {
  // A "scaled" file stores weight / scale next to `<name>.scale_weight`; loading multiplies back.
  auto hf = tiny_hf_layout();
  const std::string key = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight";
  const auto original = hf.at(key);
  hf[key] = original / 4.0;
  hf["encoder.block.0.layer.1.DenseReluDense.wi_0.scale_weight"] = at::full({}, 4.0f);
  hf["scaled_fp8"] = at::empty({0}, at::kFloat);
  auto scaled = load_umt5_encoder(hf, "scaled", {});
  auto reference = load_umt5_encoder(tiny_hf_layout(), "reference", {});
  const auto ids = golden_tensor("t5", "input_ids");
  const auto mask = golden_tensor("t5", "attention_mask");
  EXPECT_ALLCLOSE(scaled->forward(ids, mask), reference->forward(ids, mask), 1e-6);
}

TEST(T5KeyLayout, UnknownKeyIsReportedByName) {
  auto hf = tiny_hf_layout();
  hf["decoder.block.0.layer.0.SelfAttention.q.weight"] = at::zeros({64, 64});
  try {
    load_umt5_encoder(hf, "umt5_hf.safetensors", {});
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("decoder.block.0.layer.0.SelfAttention.q.weight"),
              std::string::npos)
        << e.what();
  }
}

TEST(T5KeyLayout, SpieceModelMustBeBytes) {
  io::TensorMap tensors{{"spiece_model", at::zeros({4}, at::kFloat)}};
  EXPECT_THROW(take_spiece_model(tensors, "bad.safetensors"), LoadError);
}

}  // namespace
}  // namespace wan::models
