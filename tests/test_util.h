// Helpers shared by the tests: fixture paths and tensor comparisons that report where they differ.
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "io/tensor_map.h"

namespace wan::testing {

// Absolute path of a file under tests/data/.
std::string data_path(const std::string& relative);
// Path of a file of the tiny fixture set (tests/data/wan-tiny/...).
std::string tiny_path(const std::string& relative);
// Loads a golden file once per process (cached).
const io::TensorMap& golden(const std::string& name);  // e.g. "vae" -> goldens/vae.safetensors
// A golden tensor by key; fails the test with the key name when absent.
at::Tensor golden_tensor(const std::string& name, const std::string& key);

// Max abs difference; prints it with its flat index. Shapes must match.
::testing::AssertionResult AllCloseAbs(const at::Tensor& got, const at::Tensor& expected,
                                       double atol);

}  // namespace wan::testing

#define EXPECT_ALLCLOSE(got, expected, atol) \
  EXPECT_TRUE(::wan::testing::AllCloseAbs((got), (expected), (atol)))
