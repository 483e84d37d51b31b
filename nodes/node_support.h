// Small helpers the node classes share: dtype choices and the JSON metadata embedded in outputs.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "device/device_manager.h"
#include "device/placement.h"
#include "graph/node_registry.h"
#include "graph/node_schema.h"
#include "media/embedded_metadata.h"
#include "media/image_file.h"
#include "media/output_files.h"
#include "plan/plan_context.h"

namespace wan::nodes {

inline constexpr const char* kCategoryLoaders = "wan/loaders";
inline constexpr const char* kCategoryConditioning = "wan/conditioning";
inline constexpr const char* kCategorySampling = "wan/sampling";
inline constexpr const char* kCategoryImage = "wan/image";
inline constexpr const char* kCategoryOutput = "wan/output";

// "fp32" | "bf16" | "fp16" -> ATen dtype; throws ValidationError naming the node and input.
at::ScalarType parse_dtype(const std::string& text, const std::string& where);

// The `placement` input every loader has, with its default; `streams_blocks` adds "stream" (a
// model whose forward visits its blocks through models/common/block_visit.h).
graph::Input placement_input(const char* default_placement, bool streams_blocks = false);

// The prompt and extra_pnginfo (or the workflow) of the run, as ComfyUI embeds them in saved
// files; nothing when the run disables metadata.
media::OutputMetadata output_metadata(const graph::RunContext& run);

// A file an input names: absolute, or relative to the run's input folder. ComfyUI's annotated
// names ("x.png [input]", "x.png [output]", "x.png [temp]") pick that folder.
std::string input_path(const graph::RunContext& run, const std::string& name);
// The same for a node's plan(), from the planner's folders.
std::string input_path(const plan::PlanContext& plan, const std::string& name);

// The frames an image input will decode to, from the files' headers: one image file (LoadImage;
// no frame_load_cap) or a frames spec (WanLoadImageFrames). None, with a warning naming the file
// once per process, when they cannot be read before the run.
std::optional<media::ImageExtent> planned_image_input(const plan::PlanContext& plan,
                                                      const std::string& name,
                                                      std::optional<int64_t> frame_load_cap);
// What media::load_video holds making `extent`'s IMAGE (float32 RGB), counted as held from now
// on: image files each decoded frame until they are joined (twice the IMAGE at the end), the
// last one's decoding beside them (28 bytes a pixel, as LoadImage); a video file its RGB24 frames,
// stacked, then the IMAGE made from them (15 bytes a pixel at once; the decoder's own buffers
// are libav's, not counted). Returns the IMAGE's planned value.
plan::PlannedValue hold_loaded_frames(plan::PlanContext& plan, const media::ImageExtent& extent);

// An output node's ComfyUI `ui`: {"images": [{"filename", "subfolder", "type"}...]} and, for
// animations and videos, "animated": [true].
nlohmann::json ui_files(const std::vector<media::SavedOutput>& saved, const std::string& type,
                        bool animated);

// A loader's one log line: "LoadDiT (node 1): loaded <path> (<details>), 2.68 GiB, placement
// offload, on cpu".
void log_loaded(const graph::RunContext& run, const std::string& path, const std::string& details,
                const device::ModelHandle& model);

// The first frame of an IMAGE batch as a Wan image [3, H, W] in [-1, 1].
at::Tensor first_frame_as_wan_image(const at::Tensor& image, const std::string& where);

}  // namespace wan::nodes
