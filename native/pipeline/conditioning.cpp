#include "pipeline/conditioning.h"

namespace wan::pipeline {

const char* conditioning_kind_name(ConditioningKind kind) {
  switch (kind) {
    case ConditioningKind::kImageToVideo: return "i2v";
    case ConditioningKind::kFirstLastFrame: return "flf2v";
    case ConditioningKind::kVace: return "vace";
  }
  return "?";
}

std::vector<int64_t> WanConditioning::noise_shape() const {
  auto latent = shape.latent_shape();
  latent[1] += reference_frames;
  return latent;
}

WanConditioning WanConditioning::to(at::Device device) const {
  WanConditioning out = *this;
  for (at::Tensor* t : {&out.clip_features, &out.y, &out.vace_context})
    if (t->defined()) *t = t->to(device);
  return out;
}

}  // namespace wan::pipeline
