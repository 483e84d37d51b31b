// WanDitConfig: presets, detection from checkpoint headers, and the expected-tensor table.
#include "models/dit/wan_dit_config.h"

#include <gtest/gtest.h>
#include <torch/nn.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/tensor_index.h"
#include "models/dit/wan_dit.h"
#include "test_util.h"

namespace wan::models {
namespace {

namespace fs = std::filesystem;
using testing::tiny_path;

std::string weights_of(const std::string& variant) {
  return tiny_path("weights/dit_" + variant + "_tiny.safetensors");
}

// A scratch folder removed at the end of the test.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) : path(fs::temp_directory_path() / name) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

TEST(WanDitConfig, DetectsEveryTinyVariantFromItsWeights) {
  struct Expect {
    std::string name;
    WanDitVariant variant;
    int64_t in_dim, layers, text_len;
  };
  for (const auto& e : std::vector<Expect>{{"t2v", WanDitVariant::kT2v, 16, 2, 32},
                                           {"i2v", WanDitVariant::kI2v, 36, 2, 512},
                                           {"flf2v", WanDitVariant::kFlf2v, 36, 2, 512},
                                           {"vace", WanDitVariant::kVace, 16, 4, 32}}) {
    SCOPED_TRACE(e.name);
    const auto c = WanDitConfig::from_file(weights_of(e.name));
    EXPECT_EQ(c.variant, e.variant);
    EXPECT_EQ(c.dim, 64);
    EXPECT_EQ(c.ffn_dim, 128);
    EXPECT_EQ(c.num_heads, 4);
    EXPECT_EQ(c.num_layers, e.layers);
    EXPECT_EQ(c.in_dim, e.in_dim);
    EXPECT_EQ(c.out_dim, 16);
    EXPECT_EQ(c.text_dim, 64);
    EXPECT_EQ(c.freq_dim, 256);
    EXPECT_EQ(c.text_len, e.text_len);
    EXPECT_EQ(c.patch_size, (std::array<int64_t, 3>{1, 2, 2}));
    if (c.has_image_input()) {
      EXPECT_EQ(c.img_dim, 64);
    }
    if (c.variant == WanDitVariant::kVace) {
      EXPECT_EQ(c.vace_layers, (std::vector<int64_t>{0, 3}));
      EXPECT_EQ(c.vace_in_dim, 96);
    }
  }
}

TEST(WanDitConfig, FallsBackFromMetadataToConfigFilesToDefaults) {
  auto infos = io::read_tensor_infos(weights_of("vace"));
  // No metadata, but the fixture's "<stem>_config.json" sits beside the file.
  auto c = WanDitConfig::from_weights(infos, {});
  EXPECT_EQ(c.text_len, 32);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.vace_layers, (std::vector<int64_t>{0, 3}));

  // A folder with a config.json (official layout) wins over nothing else.
  TempDir dir("wan_dit_config_test");
  for (auto& info : infos) info.file = (dir.path / "diffusion_pytorch_model.safetensors").string();
  write_text(dir.path / "config.json",
             R"({"model_type": "vace", "dim": 64, "num_heads": 2, "text_len": 77,
                 "vace_layers": [0, 1]})");
  c = WanDitConfig::from_weights(infos, {});
  EXPECT_EQ(c.num_heads, 2);
  EXPECT_EQ(c.text_len, 77);
  EXPECT_EQ(c.vace_layers, (std::vector<int64_t>{0, 1}));

  // Metadata comes first.
  c = WanDitConfig::from_weights(infos, {{"config", R"({"num_heads": 8, "text_len": 16})"}});
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.text_len, 16);

  // Nothing at all: official defaults (text_len 512, head_dim 128 -> dim 64 has no whole head
  // count, so this must fail with a message that says what to add).
  fs::remove(dir.path / "config.json");
  try {
    WanDitConfig::from_weights(infos, {});
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("num_heads"), std::string::npos) << e.what();
  }
}

// VACE block k computes after main block vace_layers[k] and feeds block k + 1, so the list
// must increase; a list out of order is refused by name, not run in another order.
TEST(WanDitConfig, VaceLayersMustIncrease) {
  auto c = WanDitConfig::vace_1_3b();
  c.vace_layers = {0, 10, 5};
  try {
    c.validate();
    FAIL() << "expected an error for vace_layers [0, 10, 5]";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("vace_layers entry 5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("must increase"), std::string::npos) << e.what();
  }
  c.vace_layers = {0, 5, 10};
  EXPECT_NO_THROW(c.validate());
}

TEST(WanDitConfig, OfficialDefaultsApplyWithoutAnyConfiguration) {
  // A 1.3B-shaped header (no data needed): heads from head_dim 128, text_len 512, VACE spacing.
  std::vector<io::TensorInfo> infos;
  for (const auto& info : wan_dit_expected_tensors(WanDitConfig::vace_1_3b())) {
    auto copy = info;
    copy.name = kComfyDitPrefix + copy.name;  // ComfyUI layout
    infos.push_back(copy);
  }
  const auto c = WanDitConfig::from_weights(infos, {});
  EXPECT_EQ(c.variant, WanDitVariant::kVace);
  EXPECT_EQ(c.num_heads, 12);
  EXPECT_EQ(c.text_len, 512);
  EXPECT_EQ(c.num_layers, 30);
  EXPECT_EQ(c.ffn_dim, 8960);
  EXPECT_EQ(c.vace_layers, WanDitConfig::vace_1_3b().vace_layers);
  EXPECT_EQ(wan_dit_expected_tensors(c).size(), infos.size());
}

TEST(WanDitConfig, PresetsMatchOfficialConfigs) {
  const auto t2v = WanDitConfig::t2v_1_3b();
  EXPECT_EQ(t2v.dim, 1536);
  EXPECT_EQ(t2v.num_heads, 12);
  EXPECT_EQ(t2v.head_dim(), 128);
  EXPECT_EQ(t2v.num_layers, 30);
  EXPECT_EQ(t2v.ffn_dim, 8960);
  EXPECT_EQ(WanDitConfig::t2v_14b().dim, 5120);
  EXPECT_EQ(WanDitConfig::i2v_14b().in_dim, 36);
  EXPECT_EQ(WanDitConfig::flf2v_14b().variant, WanDitVariant::kFlf2v);
  EXPECT_EQ(WanDitConfig::vace_14b().vace_layers, (std::vector<int64_t>{0, 5, 10, 15, 20, 25, 30, 35}));
  EXPECT_EQ(WanDitConfig::vace_1_3b().vace_layers.size(), 15u);
  EXPECT_EQ(WanDitConfig::preset("i2v_14b").variant, WanDitVariant::kI2v);
  EXPECT_THROW(WanDitConfig::preset("t2v_2b"), ValidationError);
}

TEST(WanDitConfig, T2v13bHasTheOfficialParameterCount) {
  // 1,418,996,800 parameters = 5.68 GB in float32 (stated in docs/dit.md).
  const int64_t count = wan_dit_parameter_count(WanDitConfig::t2v_1_3b());
  EXPECT_EQ(count, 1418996800);
  EXPECT_NEAR(count * 4 / 1e9, 5.68, 0.005);
}

TEST(WanDitConfig, PresetParameterCountsMatchTheDocumentedTable) {
  EXPECT_EQ(wan_dit_parameter_count(WanDitConfig::vace_1_3b()), 2153972032);
  EXPECT_EQ(wan_dit_parameter_count(WanDitConfig::t2v_14b()), 14288491584);
  EXPECT_EQ(wan_dit_parameter_count(WanDitConfig::i2v_14b()), 16394878784);
  EXPECT_EQ(wan_dit_parameter_count(WanDitConfig::flf2v_14b()), 16395536704);
  EXPECT_EQ(wan_dit_parameter_count(WanDitConfig::vace_14b()), 17337592896);
}

TEST(WanDitConfig, ExpectedTensorsEqualModuleParametersForEveryVariant) {
  for (const std::string variant : {"t2v", "i2v", "flf2v", "vace"}) {
    SCOPED_TRACE(variant);
    const auto config = WanDitConfig::from_file(weights_of(variant));
    WanDit model{WanDitOptions(config)};
    std::map<std::string, std::vector<int64_t>> module;
    for (const auto& item : model->named_parameters())
      module[item.key()] = item.value().sizes().vec();
    std::map<std::string, std::vector<int64_t>> expected, file;
    for (const auto& info : wan_dit_expected_tensors(config)) expected[info.name] = info.shape;
    for (const auto& info : io::read_tensor_infos(weights_of(variant))) file[info.name] = info.shape;
    EXPECT_EQ(expected, module);
    EXPECT_EQ(expected, file);
    EXPECT_TRUE(model->named_buffers().is_empty());
  }
}

TEST(WanDitConfig, RejectsCheckpointsThatAreNotAWanDit) {
  io::TensorInfo info;
  info.name = "encoder.block.0.weight";
  info.shape = {4, 4};
  try {
    WanDitConfig::from_weights({info}, {});
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("patch_embedding.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("blocks.0.ffn.0.weight"), std::string::npos) << msg;
  }
}

TEST(WanDitConfig, IgnoresAConfigurationThatContradictsTheWeights) {
  auto infos = io::read_tensor_infos(weights_of("t2v"));
  // A stray config of another model (dim 1536): skipped, the next source (the fixture's
  // <stem>_config.json) is used.
  const auto c = WanDitConfig::from_weights(infos, {{"config", R"({"dim": 1536, "num_heads": 12})"}});
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.text_len, 32);
}

}  // namespace
}  // namespace wan::models
