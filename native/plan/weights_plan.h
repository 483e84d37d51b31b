// The weights a loader will hold, counted from the model file's header (or, with a preset, from
// the official checkpoint's shapes) through the loaders' own rules (models/common/weights.h), so
// the bytes equal the device manager's. The loader nodes' plan() methods call these with their
// inputs and adopt the result.
#pragma once
#include <c10/core/ScalarType.h>

#include <filesystem>
#include <optional>
#include <string>

#include "plan/plan_context.h"

namespace wan::plan {

// A UMT5 encoder kept in `dtype` (fp8 stays fp8). `tokenizer`: spiece.model (or its folder) to
// count prompt tokens with; empty when the checkpoint carries its own or none is at hand.
ModelPlan t5_weights(const PlanContext& plan, const std::string& model_name, at::ScalarType dtype,
                     const std::string& tokenizer);

ModelPlan vae_weights(const PlanContext& plan, const std::string& model_name,
                      at::ScalarType dtype);

// `weight_dtype` nullopt keeps every tensor as stored (fp8 with its scale).
ModelPlan dit_weights(const PlanContext& plan, const std::string& model_name,
                      std::optional<at::ScalarType> weight_dtype, at::ScalarType compute_dtype);

ModelPlan clip_vision_weights(const PlanContext& plan, const std::string& model_name,
                              at::ScalarType dtype);

}  // namespace wan::plan
