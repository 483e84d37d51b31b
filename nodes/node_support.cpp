#include "nodes/node_support.h"

#include <filesystem>

#include "core/error.h"
#include "image/image_ops.h"

namespace wan::nodes {

at::ScalarType parse_dtype(const std::string& text, const std::string& where) {
  if (text == "fp32") return at::kFloat;
  if (text == "bf16") return at::kBFloat16;
  if (text == "fp16") return at::kHalf;
  throw ValidationError(where + ": dtype '" + text + "' is not one of fp32, bf16, fp16");
}

graph::Input placement_input(const char* default_placement) {
  return graph::Choice("placement", device::placement_choices())
      .default_to(default_placement)
      .tooltip("gpu: weights live on the compute device; cpu: weights stay in CPU memory and "
               "compute there; offload: weights visit the compute device only while it computes");
}

media::OutputMetadata output_metadata(const graph::RunContext& run) {
  media::OutputMetadata metadata;
  if (!run.prompt.is_null())
    metadata.prompt = media::comfy_json_dumps(nlohmann::ordered_json::parse(run.prompt.dump()));
  if (!run.workflow.is_null())
    metadata.extra.emplace_back(
        "workflow", media::comfy_json_dumps(nlohmann::ordered_json::parse(run.workflow.dump())));
  return metadata;
}

std::string input_path(const graph::RunContext& run, const std::string& name) {
  const std::filesystem::path path(name);
  if (path.is_absolute() || run.input_dir.empty()) return path.string();
  return (run.input_dir / path).string();
}

at::Tensor first_frame_as_wan_image(const at::Tensor& image, const std::string& where) {
  if (!image.defined() || image.dim() < 3 || image.size(-1) != 3)
    throw ValidationError(where + ": expected an IMAGE [F, H, W, 3]");
  const auto frame = image.dim() == 4 ? image[0] : image;
  return image::to_wan_image(frame.to(at::kFloat).cpu());
}

}  // namespace wan::nodes
