#include "samplers/initial_noise.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/tensor_index.h"
#include "test_util.h"

namespace wan::samplers {
namespace {

TEST(InitialNoise, BitIdenticalToOfficialNoiseOfEveryE2eGolden) {
  for (const char* name : {"e2e_t2v_unipc", "e2e_t2v_dpmpp", "e2e_i2v", "e2e_flf2v", "e2e_vace"}) {
    SCOPED_TRACE(name);
    const auto metadata =
        io::read_metadata(testing::tiny_path(std::string("goldens/") + name + ".safetensors"));
    const auto kwargs = nlohmann::json::parse(metadata.at("generate_kwargs"));
    const int64_t seed = kwargs.at("seed").get<int64_t>();
    const at::Tensor expected = testing::golden_tensor(name, "noise");
    const at::Tensor noise = initial_noise(expected.sizes(), seed);
    ASSERT_EQ(noise.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(noise, expected))
        << "seed " << seed << ", max abs diff " << (noise - expected).abs().max().item<float>();
  }
}

TEST(InitialNoise, SeedChangesTheNoise) {
  EXPECT_FALSE(at::equal(initial_noise({16, 3, 8, 8}, 42), initial_noise({16, 3, 8, 8}, 43)));
  EXPECT_TRUE(at::equal(initial_noise({16, 3, 8, 8}, 42), initial_noise({16, 3, 8, 8}, 42)));
}

TEST(InitialNoise, RejectsNegativeSeedAndEmptyShape) {
  EXPECT_THROW(initial_noise({16, 3, 8, 8}, -1), ValidationError);
  EXPECT_THROW(initial_noise({16, 0, 8, 8}, 1), ValidationError);
}

}  // namespace
}  // namespace wan::samplers
