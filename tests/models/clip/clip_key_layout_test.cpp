// The Hugging Face / ComfyUI layout of the CLIP vision tower maps onto the official one.
#include "models/clip/clip_key_layout.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/tensor_index.h"
#include "models/clip/clip_vision.h"
#include "test_util.h"

namespace wan::models {
namespace {

using wan::testing::data_path;
using wan::testing::golden_tensor;
using wan::testing::tiny_path;

io::TensorMap tiny_official() { return io::load_tensors(tiny_path("weights/clip_tiny.pth")); }

TEST(ClipKeyLayout, DetectsOfficialAndHuggingFace) {
  const auto official = tiny_official();
  EXPECT_EQ(detect_clip_key_layout(official, "x"), ClipKeyLayout::kOfficial);
  EXPECT_EQ(detect_clip_key_layout(clip_official_to_hf(official), "x"),
            ClipKeyLayout::kHuggingFace);
  io::TensorMap open_clip = {{"visual.transformer.resblocks.0.attn.in_proj_weight", at::zeros({3})}};
  EXPECT_THROW(detect_clip_key_layout(open_clip, "x"), LoadError);
  EXPECT_THROW(detect_clip_key_layout({{"model.weight", at::zeros({1})}}, "x"), LoadError);
}

TEST(ClipKeyLayout, HuggingFaceNamesAndShapes) {
  const auto hf = clip_official_to_hf(tiny_official());
  EXPECT_EQ(hf.at("vision_model.embeddings.class_embedding").sizes(), at::IntArrayRef({64}));
  EXPECT_EQ(hf.at("vision_model.embeddings.position_embedding.weight").sizes(),
            at::IntArrayRef({257, 64}));
  EXPECT_EQ(hf.at("vision_model.encoder.layers.2.self_attn.k_proj.weight").sizes(),
            at::IntArrayRef({64, 64}));
  EXPECT_EQ(hf.at("visual_projection.weight").sizes(), at::IntArrayRef({32, 64}));
  EXPECT_TRUE(hf.count("vision_model.pre_layrnorm.bias"));
  EXPECT_TRUE(hf.count("vision_model.post_layernorm.weight"));
  EXPECT_TRUE(hf.count("vision_model.encoder.layers.0.mlp.fc2.bias"));
  EXPECT_TRUE(hf.count("vision_model.encoder.layers.1.layer_norm2.weight"));
  for (const auto& [key, tensor] : hf) EXPECT_EQ(key.rfind("textual", 0), std::string::npos);
  // 5 embedding/pre-norm tensors + 3 blocks x 16 + post_norm 2 + projection 1.
  EXPECT_EQ(hf.size(), 5u + 3u * 16u + 2u + 1u);
}

TEST(ClipKeyLayout, RoundTripIsExact) {
  const auto official = tiny_official();
  const auto back = clip_hf_to_official(clip_official_to_hf(official), "round trip");
  size_t visual = 0;
  for (const auto& [key, tensor] : official) {
    if (key.rfind("visual.", 0) != 0) continue;
    ++visual;
    ASSERT_TRUE(back.count(key)) << key;
    EXPECT_TRUE(at::equal(back.at(key), tensor)) << key;
  }
  EXPECT_EQ(back.size(), visual);
}

TEST(ClipKeyLayout, MissingValueProjectionIsLoadError) {
  auto hf = clip_official_to_hf(tiny_official());
  hf.erase("vision_model.encoder.layers.1.self_attn.v_proj.bias");
  try {
    clip_hf_to_official(hf, "clip_vision_h.safetensors");
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("layers.1.self_attn.v_proj.bias"), std::string::npos)
        << e.what();
  }
}

// A ComfyUI-style file (Hugging Face keys, safetensors, with transformers' position_ids buffer)
// loads through the same entry point and gives bit-identical features.
TEST(ClipKeyLayout, HuggingFaceFileGivesIdenticalFeatures) {
  namespace fs = std::filesystem;
  auto hf = clip_official_to_hf(tiny_official());
  hf["vision_model.embeddings.position_ids"] = at::arange(257, at::kLong).unsqueeze(0);
  const auto path = (fs::temp_directory_path() /
                     ("clip_vision_hf_" + std::to_string(::getpid()) + ".safetensors"))
                        .string();
  io::save_safetensors(path, hf);

  const auto options = LoadClipVisionOptions().dtype(at::kFloat).config_path(
      data_path("clip/clip_tiny_config.json"));
  auto from_hf = load_clip_vision(path, options);
  auto from_official = load_clip_vision(tiny_path("weights/clip_tiny.pth"), options);
  fs::remove(path);

  const std::vector<at::Tensor> images = {golden_tensor("clip", "image_in"),
                                          golden_tensor("clip", "image2_in")};
  const auto a = from_hf->encode(images);
  const auto b = from_official->encode(images);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_ALLCLOSE(a, golden_tensor("clip", "features_pair"), 2e-5);
}

}  // namespace
}  // namespace wan::models
