#include "samplers/guidance.h"

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace wan::samplers {

at::Tensor cfg_combine(const at::Tensor& cond, const at::Tensor& uncond, double guide_scale) {
  if (!cond.defined() || !uncond.defined())
    throw ValidationError("cfg_combine: cond and uncond must both be given.");
  if (cond.sizes() != uncond.sizes() || cond.device() != uncond.device() ||
      cond.scalar_type() != uncond.scalar_type()) {
    std::ostringstream msg;
    msg << "cfg_combine: cond " << cond.sizes() << " " << cond.scalar_type() << " on "
        << cond.device() << " does not match uncond " << uncond.sizes() << " "
        << uncond.scalar_type() << " on " << uncond.device()
        << "; run both DiT passes on the same latent.";
    throw ValidationError(msg.str());
  }
  if (!std::isfinite(guide_scale)) {
    throw ValidationError("cfg_combine: guide_scale " + std::to_string(guide_scale) +
                          " is not finite.");
  }
  // The scale multiplies the difference as a scalar of the tensor's dtype (a Python float does
  // the same); a fused add-with-alpha would round differently.
  return uncond + (cond - uncond) * guide_scale;
}

}  // namespace wan::samplers
