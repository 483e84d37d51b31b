#include "test_util.h"

#include <map>
#include <mutex>
#include <sstream>

#include "io/tensor_index.h"

namespace wan::testing {

std::string data_path(const std::string& relative) {
  return std::string(WAN_TEST_DATA_DIR) + "/" + relative;
}

std::string tiny_path(const std::string& relative) { return data_path("wan-tiny/" + relative); }

const io::TensorMap& golden(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, io::TensorMap> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, io::load_tensors(tiny_path("goldens/" + name + ".safetensors"))).first;
  return it->second;
}

at::Tensor golden_tensor(const std::string& name, const std::string& key) {
  const auto& map = golden(name);
  auto it = map.find(key);
  if (it == map.end()) {
    ADD_FAILURE() << "golden " << name << " has no tensor " << key;
    return at::Tensor();
  }
  return it->second;
}

::testing::AssertionResult AllCloseAbs(const at::Tensor& got, const at::Tensor& expected,
                                       double atol) {
  if (!got.defined() || !expected.defined())
    return ::testing::AssertionFailure() << "undefined tensor";
  if (got.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure()
           << "shape " << got.sizes() << " != expected " << expected.sizes();
  }
  const auto diff = (got.to(at::kDouble).cpu() - expected.to(at::kDouble).cpu()).abs().flatten();
  if (diff.numel() == 0) return ::testing::AssertionSuccess();
  const auto index = diff.argmax().item<int64_t>();
  const double max_err = diff[index].item<double>();
  std::ostringstream msg;
  msg << "max abs error " << max_err << " at flat index " << index << " (atol " << atol << ")";
  if (!(max_err <= atol)) return ::testing::AssertionFailure() << msg.str();
  std::printf("  [parity] %s\n", msg.str().c_str());
  return ::testing::AssertionSuccess() << msg.str();
}

}  // namespace wan::testing
