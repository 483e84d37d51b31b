// Model configuration sidecars: one reader, one behaviour. A value of the wrong type or outside
// its bound is an error naming the file and the key; sizes are checked against the weights.
#include "models/common/model_config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <fstream>

#include "core/error.h"
#include "io/tensor_index.h"
#include "models/dit/wan_dit_config.h"
#include "test_util.h"

namespace wan::models {
namespace {

namespace fs = std::filesystem;

struct Scratch {
  fs::path dir = fs::temp_directory_path() / ("wan_model_config_" + std::to_string(::getpid()));
  Scratch() { fs::create_directories(dir); }
  ~Scratch() { fs::remove_all(dir); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << text;
    return dir / name;
  }
};

std::string load_error(const std::function<void()>& load) {
  try {
    load();
  } catch (const LoadError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a LoadError";
  return "";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ModelConfig, WrongTypesNameTheFileAndTheKey) {
  Scratch scratch;
  const auto file = scratch.write("m_config.json",
                                  R"({"num_heads": "40", "eps": [1], "flag": 1, "name": 5,
                                      "layers": [0, "1"], "big": 18446744073709551615})");
  const auto config = ModelConfig::read(file);
  ASSERT_TRUE(config);
  for (const auto& [key, load] : std::vector<std::pair<std::string, std::function<void()>>>{
           {"num_heads", [&] { config->integer("num_heads", 1, 100); }},
           {"eps", [&] { config->number("eps", 0, 1); }},
           {"flag", [&] { config->boolean("flag"); }},
           {"name", [&] { config->string("name"); }},
           {"layers", [&] { config->integers("layers", 0, 10, 10); }},
           {"big", [&] { config->integer("big", 0, INT64_MAX); }}}) {
    const std::string error = load_error(load);
    EXPECT_TRUE(has(error, file.string())) << error;
    EXPECT_TRUE(has(error, "\"" + key + "\"")) << error;
  }
  EXPECT_FALSE(config->integer("absent", 0, 1));
}

TEST(ModelConfig, ValuesOutsideTheirBoundsAreRefused) {
  const auto config = ModelConfig::parse(R"({"n": 11, "x": 1e300, "l": [1, 2, 3]})", "cfg");
  EXPECT_EQ(*config.integer("n", 0, 11), 11);
  EXPECT_TRUE(has(load_error([&] { config.integer("n", 0, 10); }), "[0, 10]"));
  load_error([&] { config.number("x", 0, 1e10); });
  load_error([&] { config.integers("l", 0, 10, 2); });  // too many entries
  load_error([&] { config.integers("l", 2, 10, 5); });  // an entry below the minimum
}

TEST(ModelConfig, BrokenFilesAreLoadErrors) {
  Scratch scratch;
  EXPECT_FALSE(ModelConfig::read(scratch.dir / "absent_config.json"));
  std::string deep(100000, '[');
  for (const std::string& text : {std::string("{\"a\": "), std::string("[1]"), deep,
                                  std::string("{\"text_len\": 1e400}"), std::string("{\"a\": \"\xff\"}")}) {
    const auto file = scratch.write("bad_config.json", text);
    EXPECT_TRUE(has(load_error([&] { ModelConfig::read(file); }), file.string()));
  }
  fs::create_directories(scratch.dir / "dir_config.json");
  load_error([&] { ModelConfig::read(scratch.dir / "dir_config.json"); });
  ASSERT_EQ(::mkfifo((scratch.dir / "fifo_config.json").c_str(), 0600), 0);
  load_error([&] { ModelConfig::read(scratch.dir / "fifo_config.json"); });  // must not block
}

TEST(ModelConfig, TextLenBesideAnEncoderIsBounded) {
  Scratch scratch;
  const auto weights = scratch.dir / "t5.safetensors";
  EXPECT_EQ(text_len_beside(weights, 512), 512);  // no sidecar
  scratch.write("t5_config.json", R"({"text_len": 77})");
  EXPECT_EQ(text_len_beside(weights, 512), 77);
  for (const char* value : {"20000000", "0", "-5", "\"512\"", "5.5"}) {
    scratch.write("t5_config.json", std::string("{\"text_len\": ") + value + "}");
    EXPECT_TRUE(has(load_error([&] { text_len_beside(weights, 512); }), "text_len")) << value;
  }
}

// The DiT reads its sidecar through the same reader: an absurd text_len, a head count that does
// not fit the weights or a string where a number belongs is refused before anything is built.
TEST(ModelConfig, DitConfigurationIsCheckedAgainstItsWeights) {
  const auto infos = io::read_tensor_infos(testing::tiny_path("weights/dit_t2v_tiny.safetensors"));
  const auto dim = WanDitConfig::from_weights(infos, {}).dim;
  auto error_for = [&](const std::string& config) {
    return load_error([&] { WanDitConfig::from_weights(infos, {{"config", config}}); });
  };
  for (const std::string& text_len :
       {std::string("20000000"), std::to_string(kMaxConfigTextLen + 1), std::string("0")})
    EXPECT_TRUE(has(error_for("{\"text_len\": " + text_len + "}"), "text_len")) << text_len;
  EXPECT_TRUE(has(error_for(R"({"num_heads": "4"})"), "num_heads"));
  EXPECT_TRUE(has(error_for("{\"num_heads\": " + std::to_string(dim + 1) + "}"), "num_heads"));
  int64_t heads = 2;
  while (heads < dim && dim % heads == 0) ++heads;
  ASSERT_LT(heads, dim);
  EXPECT_TRUE(has(error_for("{\"num_heads\": " + std::to_string(heads) + "}"), "divisible"));
  EXPECT_TRUE(has(error_for(R"({"dim": "64"})"), "dim"));
  EXPECT_TRUE(has(error_for(R"({"eps": -1})"), "eps"));
}

// Sizes that come from the weights' own header are bounded too: an empty tensor can claim any
// shape in no bytes at all.
TEST(ModelConfig, DitSizesFromHeadersAreBounded) {
  auto infos = io::read_tensor_infos(testing::tiny_path("weights/dit_t2v_tiny.safetensors"));
  // The head count the intact file resolves to, given explicitly: the sidecar beside the file
  // now contradicts the forged shape and is skipped.
  const std::string heads =
      "{\"num_heads\": " + std::to_string(WanDitConfig::from_weights(infos, {}).num_heads) + "}";
  for (auto& info : infos)
    if (info.name.find("text_embedding.0.weight") != std::string::npos) info.shape[1] = int64_t(1) << 40;
  EXPECT_TRUE(has(load_error([&] { WanDitConfig::from_weights(infos, {{"config", heads}}); }),
                  "text_dim"));
}

}  // namespace
}  // namespace wan::models
