#include "nodes/node_support.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "core/error.h"
#include "core/path_rules.h"
#include "image/image_ops.h"
#include "media/video_file.h"

namespace wan::nodes {

at::ScalarType parse_dtype(const std::string& text, const std::string& where) {
  if (text == "fp32") return at::kFloat;
  if (text == "bf16") return at::kBFloat16;
  if (text == "fp16") return at::kHalf;
  throw ValidationError(where + ": dtype '" + text + "' is not one of fp32, bf16, fp16");
}

graph::Input placement_input(const char* default_placement, bool streams_blocks) {
  return graph::Choice("placement", streams_blocks ? device::stream_placement_choices()
                                                   : device::placement_choices())
      .default_to(default_placement)
      .tooltip(streams_blocks
                   ? "gpu: weights live on the compute device; cpu: weights stay in CPU memory "
                     "and compute there; offload: weights visit the compute device only while it "
                     "computes; stream: like offload, but the blocks visit it one at a time"
                   : "gpu: weights live on the compute device; cpu: weights stay in CPU memory and "
                     "compute there; offload: weights visit the compute device only while it "
                     "computes");
}

media::OutputMetadata output_metadata(const graph::RunContext& run) {
  media::OutputMetadata metadata;
  if (!run.embed_metadata) return metadata;
  if (!run.embedded_prompt.is_null())
    metadata.prompt = media::comfy_json_dumps(run.embedded_prompt);
  else if (!run.prompt.is_null())
    metadata.prompt = media::comfy_json_dumps_sorted(run.prompt);
  if (run.extra_pnginfo.is_object()) {
    for (const auto& [key, value] : run.extra_pnginfo.items())
      metadata.extra.emplace_back(key, media::comfy_json_dumps(value));
  } else if (!run.workflow.is_null()) {
    metadata.extra.emplace_back(
        "workflow", media::comfy_json_dumps_sorted(run.workflow));
  }
  return metadata;
}

namespace {

std::string resolve_input(const std::string& name, const std::filesystem::path& input_dir,
                          const std::filesystem::path& output_dir,
                          const std::filesystem::path& temp_dir) {
  const AnnotatedName file = parse_annotated_name(name);
  const std::filesystem::path base =
      file.folder == AnnotatedFolder::kOutput ? output_dir
      : file.folder == AnnotatedFolder::kTemp ? (temp_dir.empty() ? output_dir / "temp" : temp_dir)
                                              : input_dir;
  const std::filesystem::path path(file.name);
  if (path.is_absolute() || base.empty()) return path.string();
  return (base / path).string();
}

}  // namespace

std::string input_path(const graph::RunContext& run, const std::string& name) {
  return resolve_input(name, run.input_dir, run.output_dir, run.temp_dir);
}

std::string input_path(const plan::PlanContext& plan, const std::string& name) {
  return resolve_input(name, plan.input_dir(), plan.output_dir(), {});
}

std::optional<media::ImageExtent> planned_image_input(const plan::PlanContext& plan,
                                                      const std::string& name,
                                                      std::optional<int64_t> frame_load_cap) {
  const std::string path = input_path(plan, name);
  // Once per file: placement auto plans a prompt many times.
  auto warn_once = [&](const std::string& why) {
    static std::mutex mutex;
    static std::set<std::string> warned;
    std::lock_guard<std::mutex> lock(mutex);
    if (warned.insert(path).second)
      spdlog::warn("memory plan: {}: {}; its frames are not counted", plan.node_label(), why);
  };
  try {
    // Placement auto plans a prompt dozens of times: each input's headers are read once while
    // its files (the file, or the frames a folder or glob matches) keep their sizes and times.
    std::string stamp = std::to_string(frame_load_cap.value_or(-1));
    std::vector<std::string> files = media::list_frame_files(path);
    if (files.empty()) files.push_back(path);
    for (const auto& file : files) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(file, ec);
      const auto time = std::filesystem::last_write_time(file, ec);
      stamp += "|" + file + ":" + std::to_string(ec ? 0 : size) + ":" +
               std::to_string(ec ? 0 : time.time_since_epoch().count());
    }
    static std::mutex cache_mutex;
    static std::map<std::string, std::pair<std::string, std::optional<media::ImageExtent>>> cache;
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      const auto hit = cache.find(path);
      if (hit != cache.end() && hit->second.first == stamp) return hit->second.second;
    }
    std::optional<media::ImageExtent> extent =
        frame_load_cap ? media::probe_video(path, *frame_load_cap) : media::probe_image(path);
    if (!extent) warn_once(path + ": the video declares no frame count or duration");
    std::lock_guard<std::mutex> lock(cache_mutex);
    cache[path] = {stamp, extent};
    return extent;
  } catch (const std::exception& e) {
    warn_once(e.what());
    return std::nullopt;
  }
}

plan::PlannedValue hold_loaded_frames(plan::PlanContext& plan, const media::ImageExtent& extent) {
  const int64_t frame = extent.height * extent.width;
  plan::PlannedValue images;
  images.shape.frames = extent.frames;
  images.shape.height = extent.height;
  images.shape.width = extent.width;
  images.cpu_bytes = 12 * extent.frames * frame;
  plan.hold(images, extent.video_file
                        ? 15 * extent.frames * frame
                        : std::max(2 * images.cpu_bytes, images.cpu_bytes + 16 * frame));
  return images;
}

nlohmann::json ui_files(const std::vector<media::SavedOutput>& saved, const std::string& type,
                        bool animated) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& file : saved)
    files.push_back({{"filename", file.filename}, {"subfolder", file.subfolder}, {"type", type}});
  nlohmann::json ui = {{"images", files}};
  if (animated) ui["animated"] = nlohmann::json::array({true});
  return ui;
}

at::Tensor first_frame_as_wan_image(const at::Tensor& image, const std::string& where) {
  if (!image.defined() || image.dim() < 3 || image.size(-1) != 3)
    throw ValidationError(where + ": expected an IMAGE [F, H, W, 3]");
  const auto frame = image.dim() == 4 ? image[0] : image;
  return image::to_wan_image(frame.to(at::kFloat).cpu());
}

void log_loaded(const graph::RunContext& run, const std::string& path, const std::string& details,
                const device::ModelHandle& model) {
  spdlog::info("{}: loaded {}{}, {}, placement {}, on {}", run.node_label(), path,
               details.empty() ? "" : " (" + details + ")", format_bytes(model.bytes()),
               device::placement_name(model.placement()),
               model.on_compute_device() ? run.devices().compute().name() : std::string("cpu"));
}

}  // namespace wan::nodes
