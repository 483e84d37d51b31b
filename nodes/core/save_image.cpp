// ComfyUI core's image savers: SaveImage and PreviewImage (nodes.py), SaveAnimatedWEBP
// (comfy_extras/nodes_images.py). Same files, names and embedded metadata as ComfyUI writes.
#include <random>

#include "media/video_writer.h"
#include "nodes/node_support.h"
#include "plan/activation_estimates.h"
#include "plan/plan_context.h"

namespace wan::nodes {

class SaveImage : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("SaveImage", "image")
        .comfy_core("nodes")
        .display_name("Save Image")
        .description("Saves the input images to your ComfyUI output directory.")
        .output_node()
        .input(graph::Socket("images", "IMAGE"))
        .input(graph::String("filename_prefix").default_to("ComfyUI").output_prefix())
        .hidden("prompt", "PROMPT")
        .hidden("extra_pnginfo", "EXTRA_PNGINFO");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto saved = media::save_images(
        run.output_dir.string(), in.string("filename_prefix"), in.tensor("images"),
        output_metadata(run), 4, [&](int64_t done, int64_t total) { run.report_step(done, total); });
    run.report_ui(ui_files(saved, "output", false));
    return {};
  }

  // Writes files from its input's 8-bit copy; holds nothing after.
  bool plan(const graph::Values&, plan::PlanContext& plan) const override {
    if (const plan::PlannedValue* images = plan.input("images"))
      plan.hold(plan::PlannedValue{}, plan::eight_bit_copy_bytes(*images));
    return true;
  }
};

class PreviewImage : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("PreviewImage", "image")
        .comfy_core("nodes")
        .display_name("Preview Image")
        .description("Saves the input images to your ComfyUI output directory.")
        .output_node()
        .input(graph::Socket("images", "IMAGE"))
        .hidden("prompt", "PROMPT")
        .hidden("extra_pnginfo", "EXTRA_PNGINFO");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    // ComfyUI: "ComfyUI_temp_" + five random letters, in the temp folder, zlib level 1.
    static const char kLetters[] = "abcdefghijklmnopqrstupvxyz";
    std::random_device seed;
    std::mt19937 pick(seed());
    std::string prefix = "ComfyUI_temp_";
    for (int i = 0; i < 5; ++i) prefix += kLetters[pick() % (sizeof(kLetters) - 1)];
    const auto folder = run.temp_dir.empty() ? run.output_dir / "temp" : run.temp_dir;
    const auto saved = media::save_images(
        folder.string(), prefix, in.tensor("images"), output_metadata(run), 1,
        [&](int64_t done, int64_t total) { run.report_step(done, total); });
    run.report_ui(ui_files(saved, "temp", false));
    return {};
  }

  // Writes files from its input's 8-bit copy; holds nothing after.
  bool plan(const graph::Values&, plan::PlanContext& plan) const override {
    if (const plan::PlannedValue* images = plan.input("images"))
      plan.hold(plan::PlannedValue{}, plan::eight_bit_copy_bytes(*images));
    return true;
  }
};

class SaveAnimatedWEBP : public graph::Node {
 public:
  static graph::NodeSchema schema() {
    return graph::NodeSchema("SaveAnimatedWEBP", "image/animation")
        .comfy_core("comfy_extras.nodes_images")
        .output_node()
        .input(graph::Socket("images", "IMAGE"))
        .input(graph::String("filename_prefix").default_to("ComfyUI").output_prefix())
        .input(graph::Float("fps").default_to(6.0).min(0.01).max(1000.0).step(0.01))
        .input(graph::Boolean("lossless").default_to(true))
        .input(graph::Int("quality").default_to(80).min(0).max(100))
        .input(graph::Choice("method", {"default", "fastest", "slowest"}))
        .hidden("prompt", "PROMPT")
        .hidden("extra_pnginfo", "EXTRA_PNGINFO");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    media::WebpOptions webp;
    webp.lossless = in.get("lossless").as_bool();
    webp.quality = static_cast<int>(in.integer("quality"));
    const std::string& method = in.string("method");
    webp.method = method == "fastest" ? 0 : method == "slowest" ? 6 : 4;  // PIL's method values
    const auto saved = media::save_video(
        run.output_dir.string(), in.string("filename_prefix"), media::VideoFormat::kWebp,
        in.tensor("images"), in.number("fps"), output_metadata(run),
        [&](int64_t done, int64_t total) { run.report_step(done, total); }, webp);
    run.report_ui(ui_files({saved}, "output", true));
    return {};
  }

  // Writes files from its input's 8-bit copy; holds nothing after.
  bool plan(const graph::Values&, plan::PlanContext& plan) const override {
    if (const plan::PlannedValue* images = plan.input("images"))
      plan.hold(plan::PlannedValue{}, plan::eight_bit_copy_bytes(*images));
    return true;
  }
};

void register_save_image_nodes(graph::NodeRegistry& registry) {
  registry.add<SaveImage>();
  registry.add<PreviewImage>();
  registry.add<SaveAnimatedWEBP>();
}

}  // namespace wan::nodes
