// LoadT5: the UMT5-XXL text encoder and its tokenizer.
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "models/common/model_config.h"
#include "nodes/node_support.h"
#include "nodes/socket_types.h"
#include "plan/plan_context.h"
#include "plan/weights_plan.h"

namespace wan::nodes {

class LoadT5 : public graph::Node {
 public:
  static constexpr int64_t kOfficialTextLen = 512;

  static graph::NodeSchema schema() {
    return graph::NodeSchema("LoadT5", kCategoryLoaders)
        .display_name("Load Wan T5 Text Encoder")
        .description("Loads the UMT5-XXL encoder (official .pth or ComfyUI's repackaged file).")
        .input(graph::ModelFile("model_name", "text_encoders"))
        .input(graph::Choice("tokenizer",
                             [](const ModelFolders& models) {
                               auto names = graph::list_model_files(models, "tokenizers", {".model"});
                               std::error_code ec;
                               for (const auto& dir : models.dirs("tokenizers"))
                                 for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
                                   if (entry.is_directory()) names.push_back(entry.path().filename().string());
                               std::sort(names.begin(), names.end());
                               names.erase(std::unique(names.begin(), names.end()), names.end());
                               names.insert(names.begin(), "from_checkpoint");
                               return names;
                             })
                   .default_to("from_checkpoint")
                   .model_folder("tokenizers")
                   .allow_folder()
                   .no_file_value("from_checkpoint")
                   .tooltip("a spiece.model (or a folder holding one) under tokenizers/, or "
                            "from_checkpoint when the weights carry it"))
        .input(placement_input("offload", /*streams_blocks=*/true))
        .input(graph::Choice("dtype", {"bf16", "fp32", "fp16"}).default_to("bf16"))
        .output(T5Socket::kType, "t5");
  }

  graph::Values execute(const graph::Values& in, graph::RunContext& run) override {
    const auto path = run.model_path("text_encoders", in.string("model_name")).string();
    const auto& tokenizer = in.string("tokenizer");
    const std::string tokenizer_path =
        tokenizer == "from_checkpoint" ? "" : run.model_path("tokenizers", tokenizer).string();
    const auto dtype = parse_dtype(in.string("dtype"), run.node_label());
    const int64_t text_len = text_len_for(path);
    auto encoder = std::make_shared<models::Umt5TextEncoder>(
        models::load_umt5_text_encoder(path, tokenizer_path, dtype, text_len));
    auto socket = std::make_shared<T5Socket>();
    socket->file = path;
    socket->model = run.devices().adopt(encoder->encoder().ptr(),
                                        device::parse_placement(in.string("placement")), "t5");
    socket->encoder = std::move(encoder);
    log_loaded(run, path, std::to_string(text_len) + " tokens max, dtype " + in.string("dtype"),
               socket->model);
    return {socket};
  }

  bool plan(const graph::Values& in, plan::PlanContext& plan) const override {
    const auto& tokenizer = in.string("tokenizer");
    const std::string tokenizer_path =
        tokenizer == "from_checkpoint" ? "" : plan.model_file("tokenizers", tokenizer).string();
    auto t5 = plan::t5_weights(plan, in.string("model_name"),
                               parse_dtype(in.string("dtype"), plan.node_label()), tokenizer_path);
    plan::PlannedValue out;
    out.model = plan.adopt(std::move(t5), "t5", in.string("placement"));
    plan.set_output(0, out);
    return true;
  }

 private:
  // text_len is not in the weights: a "<stem>_config.json" beside them may set it.
  static int64_t text_len_for(const std::string& path) {
    return models::text_len_beside(path, kOfficialTextLen);
  }
};
void register_load_t5(graph::NodeRegistry& registry) { registry.add<LoadT5>(); }

}  // namespace wan::nodes
