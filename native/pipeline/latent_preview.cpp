#include "pipeline/latent_preview.h"

#include <c10/util/Exception.h>

#include "core/error.h"

namespace wan::pipeline {

namespace {

// Wan 2.1's latent-to-RGB factors, rows per latent channel, as ComfyUI publishes them
// (comfy/latent_formats.py, Wan21): the projection its "latent2rgb" previews use.
constexpr float kRgbFactors[16][3] = {
    {-0.1299f, -0.1692f, 0.2932f}, {0.0671f, 0.0406f, 0.0442f},   {0.3568f, 0.2548f, 0.1747f},
    {0.0372f, 0.2344f, 0.1420f},   {0.0313f, 0.0189f, -0.0328f},  {0.0296f, -0.0956f, -0.0665f},
    {-0.3477f, -0.4059f, -0.2925f}, {0.0166f, 0.1902f, 0.1975f},  {-0.0412f, 0.0267f, -0.1364f},
    {-0.1293f, 0.0740f, 0.1636f},  {0.0680f, 0.3019f, 0.1128f},   {0.0032f, 0.0581f, 0.0639f},
    {-0.1251f, 0.0927f, 0.1699f},  {0.0060f, -0.0633f, 0.0005f},  {0.3477f, 0.2275f, 0.2950f},
    {0.1984f, 0.0913f, 0.1861f}};
constexpr float kRgbBias[3] = {-0.1835f, -0.0868f, -0.3360f};

}  // namespace

at::Tensor latent_preview_rgb8(const at::Tensor& x0) {
  if (x0.dim() != 4 || x0.size(0) != 16 || x0.size(1) < 1)
    throw ValidationError("latent preview: expected a latent [16, T, h, w], got " +
                          c10::str(x0.sizes()));
  const auto cpu = at::TensorOptions().dtype(at::kFloat);
  const at::Tensor factors = at::from_blob(const_cast<float*>(&kRgbFactors[0][0]), {16, 3}, cpu);
  const at::Tensor bias = at::from_blob(const_cast<float*>(kRgbBias), {3}, cpu);
  const at::Tensor frame = x0.select(1, 0).detach().to(at::kCPU, at::kFloat).permute({1, 2, 0});
  const at::Tensor rgb = at::matmul(frame, factors) + bias;  // [h, w, 3]
  return ((rgb + 1.0) / 2.0).clamp(0, 1).mul(255).to(at::kByte).contiguous();
}

}  // namespace wan::pipeline
