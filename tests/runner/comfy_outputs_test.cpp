// What the ComfyUI core savers write through wan-run: ComfyUI's file names and folders, the
// prompt and extra_pnginfo embedded in the order they arrived (or nothing with
// --disable-metadata), and one PNG per frame from SaveImage/PreviewImage.
#include <gtest/gtest.h>

#include "media/embedded_metadata.h"
#include "media/image_file.h"
#include "runner_test_util.h"
#include "nodes/wan_nodes.h"

namespace wan::runner::testing {
namespace {

// The shipped t2v workflow as a ComfyUI /prompt request body: API prompt plus extra_pnginfo
// whose keys are deliberately not in sorted order.
json prompt_body() {
  const auto& registry = wan::nodes::wan_node_registry();
  json prompt = graph::to_api_prompt(graph::read_json_file(workflow_path("t2v", "baseline")), registry);
  for (const auto& set : tiny_overrides("t2v", /*fp32=*/true)) graph::apply_override(prompt, set, registry);
  return prompt;
}

std::string body_text(const json& prompt) {
  // Written by hand so the order of keys in the file is known: "zeta" before "alpha".
  return std::string("{\"client_id\": \"test\", \"prompt\": ") + prompt.dump() +
         ", \"extra_data\": {\"extra_pnginfo\": {\"zeta\": {\"b\": 1, \"a\": 2}, \"alpha\": [3]}}}";
}

TEST(ComfyOutputs, PromptBodyEmbedsItsExtraPnginfoInArrivalOrder) {
  TempDir dir("body");
  std::ofstream(dir / "body.json") << body_text(prompt_body());
  const auto result = run_wan({(dir / "body.json").string(), "--models", models_dir().string(),
                               "--output", (dir / "output").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto videos = files_with_suffix(dir / "output" / "video", ".mp4");
  ASSERT_EQ(videos.size(), 1u);
  const auto metadata = media::read_embedded_metadata(videos[0].string());
  ASSERT_TRUE(metadata.prompt.has_value());
  ASSERT_EQ(metadata.extra.size(), 2u);
  std::vector<std::string> keys;
  for (const auto& [key, text] : metadata.extra) keys.push_back(key);
  // ComfyUI writes the extras first and the prompt last in MP4; what matters here is that every
  // extra arrives with its own key order inside.
  EXPECT_NE(std::find(keys.begin(), keys.end(), "zeta"), keys.end());
  EXPECT_EQ(*metadata.find("zeta"), "{\"b\": 1, \"a\": 2}");
  EXPECT_EQ(*metadata.find("alpha"), "[3]");
}

TEST(ComfyOutputs, DisableMetadataEmbedsNothing) {
  TempDir dir("nometa");
  std::ofstream(dir / "body.json") << body_text(prompt_body());
  const auto result = run_wan({(dir / "body.json").string(), "--models", models_dir().string(),
                               "--output", (dir / "output").string(), "--disable-metadata"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto videos = files_with_suffix(dir / "output" / "video", ".mp4");
  ASSERT_EQ(videos.size(), 1u);
  EXPECT_TRUE(media::read_embedded_metadata(videos[0].string()).empty());
  for (const auto& png : files_with_suffix(dir / "output" / "temp", ".png"))
    EXPECT_TRUE(media::read_embedded_metadata(png.string()).empty()) << png;
}

TEST(ComfyOutputs, SaveImageWritesOnePngPerFrameWithComfyNamesAndTheFramesExactly) {
  TempDir dir("saveimage");
  json prompt = prompt_body();
  std::string decode;
  for (const auto& [id, node] : prompt.items())
    if (node["class_type"] == "Decode") decode = id;
  ASSERT_FALSE(decode.empty());
  prompt["901"] = {{"class_type", "SaveImage"},
                   {"inputs", {{"images", json::array({decode, 0})}, {"filename_prefix", "stills/frame"}}}};
  prompt["902"] = {{"class_type", "SaveTensor"},
                   {"inputs", {{"tensor", json::array({decode, 0})}, {"filename_prefix", "frames"}}}};
  std::ofstream(dir / "prompt.json") << prompt.dump();
  const auto result = run_wan({(dir / "prompt.json").string(), "--models", models_dir().string(),
                               "--output", (dir / "output").string(), "--temp", (dir / "tmp").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto pngs = files_with_suffix(dir / "output" / "stills", ".png");
  const auto frames = saved_frames(dir / "output");
  ASSERT_EQ(pngs.size(), static_cast<size_t>(frames.size(0)));
  EXPECT_EQ(pngs.front().filename(), "frame_00001_.png");
  // PNG is lossless: each file decodes to the frame as ComfyUI quantizes it (x * 255, truncated).
  const at::Tensor expected = media::image_to_uint8(frames, "frames");
  for (size_t i = 0; i < pngs.size(); ++i) {
    const auto loaded = media::load_image(pngs[i].string());
    EXPECT_TRUE(at::equal(media::image_to_uint8(loaded.image, "png")[0], expected[i])) << pngs[i];
    const auto metadata = media::read_embedded_metadata(pngs[i].string());
    EXPECT_TRUE(metadata.prompt.has_value());
  }
  // --temp moved the previews.
  EXPECT_EQ(files_with_suffix(dir / "tmp", ".png").size(), pngs.size());
  EXPECT_EQ(files_with_suffix(dir / "tmp", ".png").front().filename().string().rfind("ComfyUI_temp_", 0), 0u);
}

}  // namespace
}  // namespace wan::runner::testing
