// Small helpers the node classes share: dtype choices and the JSON metadata embedded in outputs.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "device/placement.h"
#include "graph/node_registry.h"
#include "graph/node_schema.h"
#include "media/embedded_metadata.h"

namespace wan::nodes {

inline constexpr const char* kCategoryLoaders = "wan/loaders";
inline constexpr const char* kCategoryConditioning = "wan/conditioning";
inline constexpr const char* kCategorySampling = "wan/sampling";
inline constexpr const char* kCategoryImage = "wan/image";
inline constexpr const char* kCategoryOutput = "wan/output";

// "fp32" | "bf16" | "fp16" -> ATen dtype; throws ValidationError naming the node and input.
at::ScalarType parse_dtype(const std::string& text, const std::string& where);

// The `placement` input every loader has, with its default.
graph::Input placement_input(const char* default_placement);

// The prompt and workflow of the run, as ComfyUI embeds them in saved files.
media::OutputMetadata output_metadata(const graph::RunContext& run);

// A path given to LoadImage/LoadVideo: absolute, or relative to the run's input folder.
std::string input_path(const graph::RunContext& run, const std::string& name);

// The first frame of an IMAGE batch as a Wan image [3, H, W] in [-1, 1].
at::Tensor first_frame_as_wan_image(const at::Tensor& image, const std::string& where);

}  // namespace wan::nodes
