#include "io/torch_zip.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "core/error.h"
#include "io/tensor_index.h"
#include "models/common/weights.h"
#include "test_util.h"

namespace wan::io {
namespace {

void expect_load_error(const std::string& path, const std::string& fragment) {
  try {
    load_tensors(path);
    FAIL() << "expected a LoadError containing '" << fragment << "'";
  } catch (const LoadError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// Every tensor of the three official-format fixtures equals the summary torch.load produced.
TEST(TorchZip, FixtureCheckpointsMatchTorchLoad) {
  std::ifstream in(testing::data_path("io/pth_reference.json"));
  const auto reference = nlohmann::json::parse(in);
  int checked = 0;
  for (const auto& [file, tensors_ref] : reference.items()) {
    const auto path = testing::tiny_path("weights/" + file);
    const auto tensors = load_tensors(path);
    const auto infos = read_tensor_infos(path);
    EXPECT_EQ(tensors.size(), tensors_ref.size()) << file;
    EXPECT_EQ(infos.size(), tensors_ref.size()) << file;
    for (const auto& info : infos) {
      const auto& ref = tensors_ref.at(info.name);
      EXPECT_EQ(info.shape, ref["shape"].get<std::vector<int64_t>>()) << info.name;
      EXPECT_EQ(info.dtype, ref["dtype"].get<std::string>()) << info.name;
    }
    for (const auto& [name, ref] : tensors_ref.items()) {
      ASSERT_TRUE(tensors.count(name)) << file << " lacks " << name;
      const auto t = tensors.at(name).to(at::kDouble).flatten();
      EXPECT_EQ(t.numel(), tensors.at(name).numel());
      EXPECT_NEAR(t.sum().item<double>(), ref["sum"].get<double>(),
                  1e-9 * (1 + std::abs(ref["sum_sq"].get<double>())))
          << name;
      EXPECT_NEAR((t * t).sum().item<double>(), ref["sum_sq"].get<double>(),
                  1e-9 * (1 + ref["sum_sq"].get<double>()))
          << name;
      const auto first = ref["first"].get<std::vector<double>>();
      for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(t[i].item<double>(), first[i]) << name;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(TorchZip, ReadsViewsDtypesAndParameters) {
  const auto tensors = load_tensors(testing::data_path("io/small_state_dict.pth"));
  const auto base = at::arange(12, at::kFloat).reshape({3, 4});
  EXPECT_TRUE(at::equal(tensors.at("a"), base));
  EXPECT_TRUE(at::equal(tensors.at("a_t"), base.t()));
  EXPECT_TRUE(at::equal(tensors.at("a_row"), base[1]));
  // Views of one storage share memory, as in torch.
  EXPECT_EQ(tensors.at("a").data_ptr(), tensors.at("a_t").data_ptr());
  EXPECT_EQ(tensors.at("b").scalar_type(), at::kBFloat16);
  EXPECT_EQ(tensors.at("b")[1].item<float>(), -2.25f);
  EXPECT_TRUE(at::equal(tensors.at("i"), at::tensor({7, -9}, at::kLong)));
  EXPECT_TRUE(at::equal(tensors.at("p"), at::ones({2, 2})));
}

TEST(TorchZip, RefusesPickleThatNamesOsSystem) {
  expect_load_error(testing::data_path("io/evil_os_system.pth"), "global 'posix.system' is not allowed");
  expect_load_error(testing::data_path("io/evil_os_system.pth"), "at byte 2");
  expect_load_error(testing::data_path("io/evil_builtins_eval.pth"), "'builtins.eval'");
}

TEST(TorchZip, RefusesCompressedRecords) {
  expect_load_error(testing::data_path("io/compressed_record.pth"), "is compressed (method 8)");
}

TEST(TorchZip, RefusesTruncatedFiles) {
  expect_load_error(testing::data_path("io/truncated.pth"), "truncated");
}

// A module whose registered names match a checkpoint except for one shape.
struct TwoLinear : torch::nn::Module {
  TwoLinear() {
    register_parameter("a", torch::zeros({3, 4}));
    register_parameter("extra", torch::zeros({2}));
  }
};

TEST(LoadWeights, ReportsMissingMisshapedAndUnexpectedKeysAtOnce) {
  TwoLinear module;
  TensorMap tensors{{"a", at::ones({4, 3})}, {"stray", at::ones({1})}};
  try {
    models::load_weights(module, tensors, "model.pth");
    FAIL() << "expected LoadError";
  } catch (const LoadError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model.pth"), std::string::npos) << msg;
    EXPECT_NE(msg.find("a (expected [3, 4], found [4, 3])"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1 missing: extra"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1 unexpected: stray"), std::string::npos) << msg;
  }
  // Nothing was assigned by the failed load.
  EXPECT_TRUE(at::equal(module.named_parameters()["a"], at::zeros({3, 4})));
}

}  // namespace
}  // namespace wan::io
