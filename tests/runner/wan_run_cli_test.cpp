// wan-run's command line: exit codes, validation errors, --set, --object-info, --report and
// interruption, each checked on the real binary.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "media/embedded_metadata.h"
#include "runner_test_util.h"

namespace wan::runner::testing {
namespace {

// A t2v run on the tiny models writing into `out`.
std::vector<std::string> t2v_args(const TempDir& out, std::vector<std::string> extra_sets = {}) {
  auto sets = tiny_overrides("t2v", /*fp32=*/true);
  sets.insert(sets.end(), extra_sets.begin(), extra_sets.end());
  return with_sets({workflow_path("t2v", "baseline").string(), "--models", models_dir().string(),
                    "--output", (out / "output").string()},
                   sets);
}

TEST(WanRun, HelpListsEveryFlagAndExitsZero) {
  const auto result = run_wan({"--help"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  for (const char* flag :
       {"--models", "--output", "--input", "--set", "--device", "--vram", "--reserve", "--plan",
        "--preset", "--report", "--object-info", "--threads"})
    EXPECT_NE(result.out.find(flag), std::string::npos) << flag;
}

TEST(WanRun, UsageErrorsExitTwo) {
  EXPECT_EQ(run_wan({}).exit_code, 2);
  EXPECT_EQ(run_wan({"--bogus"}).exit_code, 2);
  auto missing_models = run_wan({workflow_path("t2v", "baseline").string()});
  EXPECT_EQ(missing_models.exit_code, 2);
  EXPECT_NE(missing_models.err.find("--models"), std::string::npos) << missing_models.err;
  EXPECT_EQ(run_wan({"x.json", "--models", models_dir().string(), "--threads", "zero"}).exit_code,
            2);
}

TEST(WanRun, ObjectInfoListsThePackAndTheComfyCoreNodes) {
  const auto result = run_wan({"--object-info", "--models", models_dir().string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto info = nlohmann::json::parse(result.out);
  for (const char* node :
       {"LoadT5", "LoadVAE", "LoadDiT", "LoadCLIPVision", "EncodePrompt", "ImageToVideo",
        "FirstLastFrameToVideo", "VaceToVideo", "Sample", "Decode", "WanLoadImageFrames",
        "SaveTensor"}) {
    ASSERT_TRUE(info.contains(node)) << node;
    EXPECT_EQ(info[node]["python_module"], "wan_native") << node;
  }
  for (const char* node :
       {"LoadImage", "LoadVideo", "GetVideoComponents", "CreateVideo", "SaveVideo",
        "SaveAnimatedWEBP", "SaveImage", "PreviewImage", "ImageToMask", "PrimitiveInt",
        "PrimitiveFloat", "PrimitiveString", "PrimitiveStringMultiline", "PrimitiveBoolean"}) {
    ASSERT_TRUE(info.contains(node)) << node;
    EXPECT_NE(info[node]["python_module"], "wan_native") << node;
  }
  // Model combos list the files under --models.
  const auto& names = info["LoadDiT"]["input"]["required"]["model_name"][0];
  EXPECT_NE(std::find(names.begin(), names.end(), "dit_t2v_tiny.safetensors"), names.end())
      << names.dump();
}

TEST(WanRun, InvalidWorkflowExitsTwoWithComfyErrorsAndRunsNothing) {
  TempDir dir("invalid");
  // Shipped model names are not in the tiny models folder, and steps 0 is below the minimum.
  const auto result =
      run_wan({workflow_path("t2v", "baseline").string(), "--models", models_dir().string(),
               "--output", (dir / "output").string(), "--set", "Sample.steps=0"});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  const auto report = result.error_json();
  ASSERT_TRUE(report.is_object()) << result.err;
  EXPECT_EQ(report["error"]["type"], "prompt_outputs_failed_validation");
  std::set<std::string> types;
  for (const auto& [id, node] : report["node_errors"].items())
    for (const auto& error : node["errors"]) types.insert(error["type"].get<std::string>());
  // The shipped model names are refused by the model-file rule (exists, inside its folder).
  EXPECT_TRUE(types.count("custom_validation_failed")) << report.dump(2);
  EXPECT_TRUE(types.count("value_smaller_than_min")) << report.dump(2);
  EXPECT_TRUE(all_files(dir.path()).empty());
}

TEST(WanRun, SetErrorsNameTheAssignmentAndExitTwo) {
  TempDir dir("set_errors");
  struct Case {
    std::string assignment, expected;
  };
  for (const auto& c : std::vector<Case>{
           {"Nobody.steps=3", "no node has the id, title or class_type 'Nobody'"},
           {"EncodePrompt.text=x", "class_type 'EncodePrompt' occurs in nodes"},
           {"Sample.stepz=3", "has no input 'stepz'"},
           {"Sample.dit=1", "socket"},
           {"Sample.steps=three", "is not an integer"},
           {"Sample.steps", "expected TARGET.INPUT=VALUE"},
       }) {
    const auto result = run_wan(t2v_args(dir, {c.assignment}));
    EXPECT_EQ(result.exit_code, 2) << c.assignment << "\n" << result.err;
    const auto report = result.error_json();
    ASSERT_TRUE(report.is_object()) << result.err;
    EXPECT_EQ(report["error"]["type"], "invalid_prompt");
    const std::string message = report["error"]["message"].get<std::string>();
    EXPECT_NE(message.find(c.assignment), std::string::npos) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  }
  EXPECT_TRUE(all_files(dir.path()).empty());
}

TEST(WanRun, SetOverridesReachTheNodesByTitleClassTypeAndId) {
  TempDir dir("set_ok");
  // "positive" is a title, "Sample" a class_type, "5" the id of the negative EncodePrompt.
  const auto result = run_wan(t2v_args(
      dir, {"positive.text=a red fox", "5.text=blurry", "Sample.seed=9",
            "SaveVideo.filename_prefix=fox/clip"}));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  // The prefix moved the video; the saved prompt carries the overridden values.
  const auto videos = files_with_suffix(dir / "output" / "fox", ".mp4");
  ASSERT_EQ(videos.size(), 1u);
  const auto metadata = media::read_embedded_metadata(videos[0].string());
  ASSERT_TRUE(metadata.prompt.has_value());
  EXPECT_NE(metadata.prompt->find("a red fox"), std::string::npos);
  EXPECT_NE(metadata.prompt->find("blurry"), std::string::npos);
}

TEST(WanRun, BadDeviceOrSizeExitsTwo) {
  TempDir dir("device");
  auto args = t2v_args(dir);
  auto bad_size = args;
  bad_size.insert(bad_size.end(), {"--vram", "lots"});
  EXPECT_EQ(run_wan(bad_size).exit_code, 2);
  auto bad_device = args;
  bad_device.insert(bad_device.end(), {"--device", "tpu"});
  EXPECT_EQ(run_wan(bad_device).exit_code, 2);
  EXPECT_TRUE(all_files(dir.path()).empty());
}

TEST(WanRun, OutOfMemoryExitsThreeNamingNodeModelAndBytes) {
  TempDir dir("oom");
  auto args = t2v_args(dir);
  // A 4 MiB card: the VAE (placement gpu, ~14 MiB) cannot move in when it loads.
  args.insert(args.end(),
              {"--vram", "4MiB", "--reserve", "0", "--report", (dir / "report.json").string()});
  const auto result = run_wan(args);
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_NE(result.err.find("LoadVAE (node 3)"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("out of memory"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("vae"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("asked"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("free"), std::string::npos) << result.err;
  EXPECT_TRUE(all_files(dir / "output").empty());
  const auto report = nlohmann::json::parse(read_text(dir / "report.json"));
  EXPECT_EQ(report["outcome"], "error");
  EXPECT_EQ(report["exit_code"], 3);
  ASSERT_FALSE(report["nodes"].empty());
  EXPECT_EQ(report["nodes"].back()["class_type"], "LoadVAE");
}

// A missing input file is known before anything loads: the validator refuses it (exit 2).
TEST(WanRun, MissingInputFileExitsTwoBeforeAnythingLoads) {
  TempDir dir("missing_input");
  auto sets = tiny_overrides("i2v", true);
  sets.push_back("start image.image=" + (dir / "no_such_image.png").string());
  const auto result =
      run_wan(with_sets({workflow_path("i2v", "baseline").string(), "--models",
                         models_dir().string(), "--output", (dir / "output").string()},
                        sets));
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("LoadImage"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("no_such_image.png"), std::string::npos) << result.err;
  EXPECT_TRUE(all_files(dir / "output").empty());
}

TEST(WanRun, ReportHasAStagePerExecutedNodeAndAnSvg) {
  TempDir dir("report");
  auto args = t2v_args(dir);
  args.insert(args.end(), {"--vram", "1GiB", "--reserve", "0", "--report",
                           (dir / "reports" / "run.json").string()});
  const auto result = run_wan(args);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(read_text(dir / "reports" / "run.json"));
  EXPECT_EQ(report["outcome"], "ok");
  EXPECT_EQ(report["exit_code"], 0);
  const auto& executed = report["run"]["nodes"];
  const auto& stages = report["nodes"];
  // LoadDiT, LoadT5, LoadVAE, two EncodePrompt, Sample, Decode, CreateVideo, SaveVideo,
  // PreviewImage.
  ASSERT_EQ(stages.size(), 10u) << report.dump(2);
  ASSERT_EQ(executed.size(), stages.size());
  for (size_t i = 0; i < stages.size(); ++i) {
    EXPECT_EQ(stages[i]["class_type"], executed[i]["class_type"]);
    EXPECT_EQ(executed[i]["outcome"], "ok");
  }
  EXPECT_TRUE(stages.back()["class_type"] == "SaveVideo" || stages.back()["class_type"] == "PreviewImage");
  const std::string svg = read_text(dir / "reports" / "run.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(files_with_suffix(dir / "output" / "video", ".mp4").size(), 1u);
}

TEST(WanRun, SigintStopsTheRunWithExit130AndNoOutput) {
  TempDir dir("sigint");
  // Many steps of a larger video: long enough to interrupt mid-sampling.
  auto sets = tiny_overrides("t2v", true, /*steps=*/1000);
  sets.insert(sets.end(), {"Sample.frames=33", "Sample.width=128", "Sample.height=128"});
  auto args =
      with_sets({workflow_path("t2v", "baseline").string(), "--models", models_dir().string(),
                 "--output", (dir / "output").string(), "--report", (dir / "report.json").string()},
                sets);
  const Child child = spawn_wan(args);
  std::string err;
  const bool sampling =
      wait_for_output(child, "Sample (node", &err) && wait_for_output(child, "step 1/1000", &err);
  kill(child.pid, SIGINT);
  const int code = wait_child(child, &err);
  ASSERT_TRUE(sampling) << err;
  EXPECT_EQ(code, 130) << err;
  EXPECT_TRUE(all_files(dir / "output").empty());
  const auto report = nlohmann::json::parse(read_text(dir / "report.json"));
  EXPECT_EQ(report["outcome"], "cancelled");
  EXPECT_EQ(report["nodes"].back()["class_type"], "Sample");
}

// --plan runs nothing heavy: exit 0 when the plan fits, 3 when it foresees an out-of-memory.
TEST(WanRun, PlanExitsZeroWhenItFitsAndThreeOnAForeseenOutOfMemory) {
  TempDir dir("plan");
  auto args = t2v_args(dir);
  args.insert(args.end(), {"--plan", "--reserve", "0", "--vram"});
  auto fits = args;
  fits.push_back("1GiB");
  const auto fits_result = run_wan(fits);
  EXPECT_EQ(fits_result.exit_code, 0) << fits_result.err;
  EXPECT_NE(fits_result.out.find("Sample"), std::string::npos) << fits_result.out;
  auto tight = args;
  tight.push_back("4MiB");
  const auto tight_result = run_wan(tight);
  EXPECT_EQ(tight_result.exit_code, 3) << tight_result.err;
  EXPECT_NE(tight_result.err.find("LoadVAE (node 3)"), std::string::npos) << tight_result.err;
  // Planning never writes outputs.
  EXPECT_TRUE(all_files(dir.path()).empty());
}

}  // namespace
}  // namespace wan::runner::testing
