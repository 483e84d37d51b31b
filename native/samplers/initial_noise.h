// The initial latent noise of a sampling run, reproducible from a seed.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

namespace wan::samplers {

// float32 standard normal noise of `shape`, drawn on the CPU from a generator seeded with `seed`:
// bit-identical to torch.randn(shape, dtype=float32, generator=torch.Generator("cpu")
// .manual_seed(seed)), i.e. the noise the official pipelines draw when run on the CPU. The result
// is then moved to `device` (the CUDA generator would give other numbers, so it is never used).
// Throws ValidationError for a negative seed or an empty/negative dimension.
at::Tensor initial_noise(at::IntArrayRef shape, int64_t seed, at::Device device = at::kCPU);

}  // namespace wan::samplers
