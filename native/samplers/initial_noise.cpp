#include "samplers/initial_noise.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <sstream>

#include "core/error.h"

namespace wan::samplers {

at::Tensor initial_noise(at::IntArrayRef shape, int64_t seed, at::Device device) {
  if (seed < 0) {
    // The official code replaces a negative seed by a random one; a caller that wants that
    // must pick the seed itself so that the run stays reproducible.
    throw ValidationError("initial_noise: seed " + std::to_string(seed) +
                          " is negative; use a seed from 0 to 2^63-1.");
  }
  if (shape.empty() ||
      std::any_of(shape.begin(), shape.end(), [](int64_t size) { return size <= 0; })) {
    std::ostringstream msg;
    msg << "initial_noise: shape " << shape << " has no elements; every dimension must be >= 1.";
    throw ValidationError(msg.str());
  }
  at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  at::Tensor noise = at::randn(shape, generator, at::TensorOptions().dtype(at::kFloat));
  return noise.to(device);
}

}  // namespace wan::samplers
