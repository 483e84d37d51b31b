#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/tensor_index.h"
#include "test_util.h"

namespace wan::io {
namespace {

namespace fs = std::filesystem;

std::string temp_dir() {
  auto dir = fs::temp_directory_path() / ("wan_io_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir.string();
}

// Writes a safetensors file from a raw header and data, bypassing the writer's checks.
std::string write_raw(const std::string& name, const std::string& header, const std::string& data,
                      int64_t claimed_len = -1) {
  const std::string path = temp_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = claimed_len >= 0 ? static_cast<uint64_t>(claimed_len) : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(len >> (8 * i)));
  out << header << data;
  return path;
}

void expect_load_error(const std::string& path, const std::string& fragment) {
  try {
    load_tensors(path);
    FAIL() << "expected a LoadError containing '" << fragment << "'";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTripsEveryNativeDtypeAndMetadata) {
  TensorMap tensors;
  tensors["f64"] = at::randn({3, 2}, at::kDouble);
  tensors["f32"] = at::randn({4, 5});
  tensors["f16"] = at::randn({7}).to(at::kHalf);
  tensors["bf16"] = at::randn({2, 3, 2}).to(at::kBFloat16);
  tensors["i64"] = at::arange(-5, 5, at::kLong);
  tensors["i32"] = at::arange(-3, 3, at::kInt);
  tensors["i16"] = at::arange(-3, 3, at::kShort);
  tensors["i8"] = at::arange(-3, 3, at::kChar);
  tensors["u8"] = at::arange(0, 250, 7, at::kByte);
  tensors["bool"] = at::arange(0, 6) % 2 == 0;
  tensors["scalar"] = at::tensor(3.5f).reshape({});
  tensors["empty"] = at::empty({0, 4});
  const std::string path = temp_dir() + "/roundtrip.safetensors";
  save_safetensors(path, tensors, {{"format", "pt"}, {"config", "{\"dim\": 4}"}});

  std::map<std::string, std::string> metadata;
  const auto loaded = load_safetensors(path, {}, &metadata);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, tensor] : tensors) {
    const auto& got = loaded.at(name);
    EXPECT_EQ(got.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(at::equal(got, tensor)) << name;
  }
  EXPECT_EQ(metadata.at("format"), "pt");
  EXPECT_EQ(read_metadata(path).at("config"), "{\"dim\": 4}");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST(Safetensors, TensorsViewTheMappingAndOutliveTheLoader) {
  const std::string path = temp_dir() + "/zero_copy.safetensors";
  save_safetensors(path, {{"a", at::arange(1024, at::kFloat)}, {"b", at::ones({16})}});
  at::Tensor a, b;
  {
    auto loaded = load_safetensors(path);
    a = loaded.at("a");
    b = loaded.at("b");
  }
  // Both views point into one mapping: b's data follows a's 4096 bytes.
  EXPECT_EQ(static_cast<char*>(b.data_ptr()) - static_cast<char*>(a.data_ptr()), 4096);
  EXPECT_EQ(a[1023].item<float>(), 1023.0f);
  a.add_(1);  // copy-on-write: the file is untouched
  EXPECT_EQ(load_safetensors(path).at("a")[0].item<float>(), 0.0f);
}

TEST(Safetensors, HeaderOnlyReadsNamesShapesDtypes) {
  const std::string path = temp_dir() + "/header.safetensors";
  save_safetensors(path, {{"w", at::zeros({3, 4}).to(at::kBFloat16)}});
  const auto infos = read_tensor_infos(path);
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].name, "w");
  EXPECT_EQ(infos[0].dtype, "BF16");
  EXPECT_EQ(infos[0].shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(infos[0].nbytes(), 24);
}

TEST(Safetensors, ReadsShardedCheckpointsThroughTheIndex) {
  const std::string dir = temp_dir() + "/sharded";
  fs::create_directories(dir);
  save_safetensors(dir + "/model-00001-of-00002.safetensors", {{"a", at::ones({2})}});
  save_safetensors(dir + "/model-00002-of-00002.safetensors", {{"b", at::zeros({3})}},
                   {{"config", "{}"}});
  std::ofstream(dir + "/model.safetensors.index.json")
      << R"({"metadata": {"total_size": 20}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})";
  const std::string index = dir + "/model.safetensors.index.json";
  const auto tensors = load_tensors(index);
  EXPECT_EQ(tensors.size(), 2u);
  EXPECT_TRUE(at::equal(tensors.at("b"), at::zeros({3})));
  EXPECT_EQ(read_tensor_infos(index).size(), 2u);
  EXPECT_EQ(read_metadata(index).at("config"), "{}");
}

TEST(Safetensors, RejectsHostileHeadersWithClearErrors) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  expect_load_error(write_raw("empty_header.safetensors", "", "", 0), "not valid JSON");
  {
    const std::string path = temp_dir() + "/tiny.safetensors";
    std::ofstream(path) << "abc";
    expect_load_error(path, "shorter than the 8-byte header length");
  }
  expect_load_error(write_raw("beyond.safetensors", ok, std::string(8, '\0'), 1 << 20),
                    "runs past the end");
  expect_load_error(write_raw("huge.safetensors", ok, "", int64_t{1} << 40), "exceeds the format's bound");
  expect_load_error(write_raw("json.safetensors", "{\"a\": [", ""), "not valid JSON");
  expect_load_error(
      write_raw("dtype.safetensors", R"({"a":{"dtype":"F4","shape":[2],"data_offsets":[0,8]}})",
                std::string(8, '\0')),
      "unknown dtype 'F4'");
  expect_load_error(
      write_raw("size.safetensors", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                std::string(8, '\0')),
      "!= byte range 8");
  expect_load_error(write_raw("range.safetensors", ok, std::string(4, '\0')), "outside");
  expect_load_error(write_raw("overlap.safetensors",
                              R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                              std::string(12, '\0')),
                    "overlap");
  expect_load_error(write_raw("truncated.safetensors", ok, std::string(5, '\0')), "outside");
  expect_load_error(write_raw("neg.safetensors",
                              R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                              std::string(8, '\0')),
                    "negative");
}

TEST(Safetensors, FixtureGoldensMatchTheManifest) {
  std::ifstream in(testing::tiny_path("manifest.json"));
  const auto manifest = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& [name, entry] : manifest["files"].items()) {
    if (name.size() < 12 || name.substr(name.size() - 12) != ".safetensors") continue;
    const auto path = testing::tiny_path(name);
    const auto tensors = load_tensors(path);
    if (!entry.contains("tensors")) continue;
    EXPECT_EQ(tensors.size(), entry["tensors"].size()) << name;
    for (const auto& [key, spec] : entry["tensors"].items()) {
      ASSERT_TRUE(tensors.count(key)) << name << " lacks " << key;
      const auto& t = tensors.at(key);
      EXPECT_EQ(scalar_type_to_dtype(t.scalar_type()), spec["dtype"].get<std::string>()) << key;
      EXPECT_EQ(t.sizes().vec(), spec["shape"].get<std::vector<int64_t>>()) << key;
      ++checked;
    }
  }
  EXPECT_GT(checked, 400);
}

}  // namespace
}  // namespace wan::io
