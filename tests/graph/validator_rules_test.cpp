// The rules inputs declare (node_schema.h: multiple_of, output_prefix, input_file, model_folder)
// and the validator's bounds on hostile prompts. Inputs are generated here, at random where a
// rule has many cases, so the checks hold for values no one picked by hand; the seed is printed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "core/error.h"
#include "core/model_folders.h"
#include "graph/executor.h"
#include "graph/validator.h"

namespace wan::graph {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class SizeNode : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("SizeNode", "test")
        .output_node()
        .input(Int("width").default_to(64).min(-100000).max(100000).multiple_of(16))
        .input(Int("frames").default_to(9).min(-100000).max(100000).multiple_of(4, 1));
  }
  Values execute(const Values&, RunContext&) override { return {}; }
};

class PrefixNode : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("PrefixNode", "test")
        .output_node()
        .input(String("filename_prefix").default_to("wan").output_prefix());
  }
  Values execute(const Values&, RunContext&) override { return {}; }
};

class FileNode : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("FileNode", "test")
        .output_node()
        .input(String("image").default_to("").input_file())
        .input(String("frames").default_to("x.png").input_file(InputFiles::kFileOrPattern));
  }
  Values execute(const Values&, RunContext&) override { return {}; }
};

class ModelNode : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("ModelNode", "test")
        .output_node()
        .input(ModelFile("model_name", "diffusion_models"))
        .input(Choice("tokenizer", {"from_checkpoint", "tok", "out_tok"})
                   .default_to("from_checkpoint")
                   .model_folder("tokenizers")
                   .allow_folder()
                   .no_file_value("from_checkpoint"));
  }
  Values execute(const Values&, RunContext&) override { return {}; }
};

class PassNode : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("PassNode", "test").input(Socket("in", "X").optional()).output("X");
  }
  Values execute(const Values&, RunContext&) override { return {Value(int64_t{0})}; }
};

class SinkNode : public Node {
 public:
  static NodeSchema schema() {
    return NodeSchema("SinkNode", "test").output_node().input(Socket("in", "X"));
  }
  Values execute(const Values&, RunContext&) override { return {}; }
};

class Scratch {
 public:
  Scratch()
      : path_(fs::temp_directory_path() /
              ("wan_rules_test_" + std::to_string(::getpid()) + "_" + std::to_string(next_++))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~Scratch() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  static inline int next_ = 0;
  fs::path path_;
};

void touch(const fs::path& path, const std::string& text = "x") {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

class ValidatorRules : public ::testing::Test {
 protected:
  ValidatorRules() {
    registry_.add<SizeNode>();
    registry_.add<PrefixNode>();
    registry_.add<FileNode>();
    registry_.add<ModelNode>();
    registry_.add<PassNode>();
    registry_.add<SinkNode>();
    const auto seed = std::random_device{}();
    std::printf("random seed %u\n", seed);
    rng_.seed(seed);
  }

  ValidationResult validate(const json& prompt) {
    return validate_prompt(prompt, registry_, options_);
  }
  ValidationResult validate_one(const std::string& class_type, const json& inputs) {
    return validate({{"1", {{"class_type", class_type}, {"inputs", inputs}}}});
  }
  // The input names of node 1's errors.
  std::set<std::string> failed_inputs(const ValidationResult& result) {
    std::set<std::string> names;
    if (!result.node_errors.contains("1")) return names;
    for (const auto& error : result.node_errors["1"]["errors"]) {
      const json& extra = error["extra_info"];
      names.insert(extra.contains("input_name") ? extra["input_name"].get<std::string>() : "");
      // Every report must serialise, whatever the values held.
      EXPECT_NO_THROW(result.to_json().dump());
    }
    return names;
  }

  NodeRegistry registry_;
  ValidateOptions options_;
  std::mt19937 rng_;
};

TEST_F(ValidatorRules, MultipleOfAcceptsExactlyTheRuleValues) {
  std::uniform_int_distribution<int64_t> value(-200, 5000);
  for (int i = 0; i < 400; ++i) {
    const int64_t width = value(rng_), frames = value(rng_);
    const auto failed = failed_inputs(validate_one("SizeNode", {{"width", width}, {"frames", frames}}));
    EXPECT_EQ(failed.count("width") == 1, !(width >= 1 && width % 16 == 0)) << width;
    EXPECT_EQ(failed.count("frames") == 1, !(frames >= 1 && frames % 4 == 1)) << frames;
  }
  // The message proposes valid neighbours.
  const auto result = validate_one("SizeNode", {{"width", 65}, {"frames", 8}});
  const std::string text = result.to_json().dump();
  EXPECT_NE(text.find("64 or 80"), std::string::npos) << text;
  EXPECT_NE(text.find("5 or 9"), std::string::npos) << text;
}

TEST_F(ValidatorRules, MultipleOfRejectsBadDeclarations) {
  EXPECT_THROW(Int("x").multiple_of(0), std::invalid_argument);
  EXPECT_THROW(Int("x").multiple_of(4, 4), std::invalid_argument);
  EXPECT_THROW(Int("x").multiple_of(4, -1), std::invalid_argument);
}

// A model of where a prefix lands: the depth below the output folder, or -1 when it leaves it.
int landing_depth(const std::vector<std::string>& parts) {
  int depth = 0;
  for (const auto& part : parts) {
    if (part == "..") {
      if (--depth < 0) return -1;
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
  }
  return depth;
}

TEST_F(ValidatorRules, OutputPrefixNeverLeavesTheOutputFolder) {
  Scratch scratch;
  options_.output_dir = scratch / "output";
  const std::vector<std::string> pieces = {"a", "b", "..", ".", ""};
  std::uniform_int_distribution<size_t> pick(0, pieces.size() - 1), count(1, 6);
  for (int i = 0; i < 300; ++i) {
    std::vector<std::string> parts(count(rng_));
    for (auto& part : parts) part = pieces[pick(rng_)];
    std::string prefix;
    for (size_t k = 0; k < parts.size(); ++k) prefix += (k ? "/" : "") + parts[k];
    // A name is the last non-empty, non-dot part; "a/.." names nothing.
    int depth = landing_depth(parts);
    const bool leaves = depth < 0;
    const auto failed = failed_inputs(validate_one("PrefixNode", {{"filename_prefix", prefix}}));
    if (leaves) {
      EXPECT_EQ(failed.count("filename_prefix"), 1u) << "'" << prefix << "'";
    }
    if (!leaves && failed.empty()) {
      // Accepted: the resolved path must be inside the output folder.
      const fs::path joined = (options_.output_dir / prefix).lexically_normal();
      const std::string base = options_.output_dir.lexically_normal().string();
      EXPECT_EQ(joined.string().compare(0, base.size(), base), 0) << prefix;
    }
  }
  for (const std::string& prefix :
       {std::string("/tmp/x"), std::string("../x"), std::string("a/../../x"), std::string(""),
        std::string("a\0b", 3), std::string("\xff\xfe"), std::string("..")}) {
    EXPECT_EQ(failed_inputs(validate_one("PrefixNode", {{"filename_prefix", prefix}})).count("filename_prefix"),
              1u)
        << prefix;
  }
  EXPECT_TRUE(validate_one("PrefixNode", {{"filename_prefix", "videos/./x/../wan"}}).ok);
  EXPECT_FALSE(fs::exists(options_.output_dir)) << "validation must not create folders";
}

TEST_F(ValidatorRules, UnwritableOutputFolderIsRefusedBeforeRunning) {
  Scratch scratch;
  touch(scratch / "a_file");
  options_.output_dir = scratch / "a_file" / "output";  // a regular file where a folder must be
  EXPECT_EQ(failed_inputs(validate_one("PrefixNode", {{"filename_prefix", "wan"}})).count("filename_prefix"),
            1u);
  options_.output_dir = scratch / "out";
  EXPECT_TRUE(validate_one("PrefixNode", {{"filename_prefix", "sub/wan"}}).ok);
  EXPECT_FALSE(fs::exists(scratch / "out")) << "validation must not create folders";
  if (::geteuid() != 0) {  // root may write anywhere
    fs::create_directories(scratch / "locked");
    fs::permissions(scratch / "locked", fs::perms::owner_read | fs::perms::owner_exec);
    options_.output_dir = scratch / "locked" / "output";
    EXPECT_FALSE(validate_one("PrefixNode", {{"filename_prefix", "wan"}}).ok);
  }
}

TEST_F(ValidatorRules, InputFilesMustBeExistingRegularFiles) {
  Scratch scratch;
  options_.input_dir = scratch / "input";
  touch(scratch / "input" / "ok.png");
  touch(scratch / "input" / "frame_001.png");
  fs::create_directories(scratch / "input" / "folder.png");
  ASSERT_EQ(::mkfifo((scratch / "input" / "fifo.png").c_str(), 0600), 0);
  auto image_fails = [&](const std::string& name) {
    return failed_inputs(validate_one("FileNode", {{"image", name}, {"frames", "ok.png"}}))
               .count("image") == 1;
  };
  EXPECT_FALSE(image_fails("ok.png"));
  EXPECT_FALSE(image_fails((scratch / "input" / "ok.png").string()));  // absolute
  for (const std::string& name :
       {std::string(""), std::string("missing.png"), std::string("folder.png"),
        std::string("fifo.png"), std::string("ok.png\0.txt", 11), std::string("ok\xc3.png"),
        std::string("*.png")})  // a pattern is a plain name for input_file()
    EXPECT_TRUE(image_fails(name)) << name;
  auto frames_fail = [&](const std::string& pattern) {
    return failed_inputs(validate_one("FileNode", {{"image", "ok.png"}, {"frames", pattern}}))
               .count("frames") == 1;
  };
  EXPECT_FALSE(frames_fail("frame_*.png"));
  EXPECT_FALSE(frames_fail("frame_00?.png"));
  EXPECT_TRUE(frames_fail("nothing_*.png"));
  EXPECT_TRUE(frames_fail("folder*"));  // matches only a folder
}

TEST_F(ValidatorRules, ModelNamesResolveInsideTheirFolderAfterSymlinks) {
  Scratch scratch;
  options_.models_dir = scratch / "models";
  const fs::path dits = scratch / "models" / "diffusion_models";
  touch(dits / "real.safetensors");
  touch(scratch / "outside.safetensors");
  fs::create_symlink(dits / "real.safetensors", dits / "inside_link.safetensors");
  fs::create_symlink(scratch / "outside.safetensors", dits / "escape.safetensors");
  fs::create_symlink("../../outside.safetensors", dits / "relative_escape.safetensors");
  fs::create_directories(dits / "sub");
  fs::create_symlink(scratch.path(), dits / "sub" / "up");  // a folder link out of the models
  // Shards: one index fine, one whose shard links out, one naming an absolute shard.
  touch(dits / "shard-1.safetensors");
  fs::create_symlink(scratch / "outside.safetensors", dits / "shard-2.safetensors");
  touch(dits / "good.safetensors.index.json",
        R"({"weight_map": {"a": "shard-1.safetensors", "b": "shard-1.safetensors"}})");
  touch(dits / "bad.safetensors.index.json",
        R"({"weight_map": {"a": "shard-1.safetensors", "b": "shard-2.safetensors"}})");
  touch(dits / "abs.safetensors.index.json",
        R"({"weight_map": {"a": ")" + (scratch / "outside.safetensors").string() + R"("}})");
  touch(dits / "missing.safetensors.index.json", R"({"weight_map": {"a": "gone.safetensors"}})");
  // 100000 nested arrays: a bounded parse refuses it instead of recursing off the stack.
  touch(dits / "deep.safetensors.index.json",
        R"({"weight_map": {"a": )" + std::string(100000, '[') + std::string(100000, ']') + "}}");
  ASSERT_EQ(mkfifo((dits / "fifo.safetensors.index.json").c_str(), 0600), 0);
  fs::create_directories(scratch / "models" / "tokenizers" / "tok");
  fs::create_directories(scratch / "tok_outside");
  fs::create_symlink(scratch / "tok_outside", scratch / "models" / "tokenizers" / "out_tok");

  auto model_fails = [&](const std::string& name, const std::string& tokenizer = "from_checkpoint") {
    return failed_inputs(
        validate_one("ModelNode", {{"model_name", name}, {"tokenizer", tokenizer}}));
  };
  EXPECT_TRUE(model_fails("real.safetensors").empty());
  EXPECT_TRUE(model_fails("inside_link.safetensors").empty());
  EXPECT_TRUE(model_fails("good.safetensors.index.json").empty());
  EXPECT_TRUE(model_fails("real.safetensors", "tok").empty());
  EXPECT_EQ(model_fails("real.safetensors", "out_tok").count("tokenizer"), 1u);
  for (const std::string& name :
       {std::string("escape.safetensors"), std::string("relative_escape.safetensors"),
        std::string("sub/up/outside.safetensors"), std::string("../outside.safetensors"),
        (scratch / "outside.safetensors").string(), std::string("bad.safetensors.index.json"),
        std::string("abs.safetensors.index.json"), std::string("missing.safetensors.index.json"),
        std::string("deep.safetensors.index.json"), std::string("fifo.safetensors.index.json"),
        std::string("\xff\xfe.safetensors"), std::string("real.safetensors\0x", 18),
        std::string("nope.safetensors")})
    EXPECT_EQ(model_fails(name).count("model_name"), 1u) << name;
}

TEST_F(ValidatorRules, ModelListingStaysInsideAndTerminatesOnLoops) {
  Scratch scratch;
  const fs::path dits = scratch / "models" / "diffusion_models";
  touch(dits / "a.safetensors");
  touch(dits / "deep" / "b.safetensors");
  touch(scratch / "outside" / "c.safetensors");
  fs::create_symlink(dits, dits / "deep" / "loop");           // a loop back to the root
  fs::create_symlink(dits / "deep", dits / "deep" / "again");  // a loop onto itself
  fs::create_symlink(scratch / "outside", dits / "out_dir");
  fs::create_symlink(scratch / "outside" / "c.safetensors", dits / "out_file.safetensors");
  fs::create_symlink(dits / "a.safetensors", dits / "alias.safetensors");
  touch(dits / std::string("bad\xff.safetensors"));
  // A chain of nested folders deeper than the listing goes.
  fs::path deep = dits / "chain";
  for (int i = 0; i < kModelListDepth + 4; ++i) deep /= "d";
  touch(deep / "far.safetensors");

  const auto start = std::chrono::steady_clock::now();
  const auto files = list_model_files(scratch / "models", "diffusion_models", model_file_extensions());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_NE(std::find(files.begin(), files.end(), "a.safetensors"), files.end());
  EXPECT_NE(std::find(files.begin(), files.end(), "deep/b.safetensors"), files.end());
  EXPECT_NE(std::find(files.begin(), files.end(), "alias.safetensors"), files.end());
  for (const auto& file : files) {
    EXPECT_EQ(file.find(".."), std::string::npos) << file;
    EXPECT_EQ(file.find("c.safetensors"), std::string::npos) << file;
    EXPECT_EQ(file.find("far.safetensors"), std::string::npos) << file;
    EXPECT_EQ(file.find('\xff'), std::string::npos) << file;
    // Everything listed resolves inside the folder.
    const auto real = fs::canonical(dits / file);
    EXPECT_EQ(real.string().rfind(fs::canonical(dits).string(), 0), 0u) << file;
  }
  // The combo of every listed name validates.
  options_.models_dir = scratch / "models";
  for (const auto& file : files)
    EXPECT_TRUE(validate_one("ModelNode", {{"model_name", file}, {"tokenizer", "from_checkpoint"}}).ok)
        << file;
}

// A host with several directories per folder (ComfyUI's folder_paths): a name is found in the
// first directory that has it, with the same rules inside that directory; the combo lists every
// directory's files once; a name in none is refused naming every directory.
TEST_F(ValidatorRules, ModelNamesResolveInTheFirstOfSeveralDirectories) {
  Scratch scratch;
  const fs::path first = scratch / "first", second = scratch / "second";
  touch(first / "both.safetensors", "first");
  touch(second / "both.safetensors", "second");
  touch(second / "only_second.safetensors");
  touch(scratch / "outside.safetensors");
  fs::create_directories(first);
  fs::create_symlink(scratch / "outside.safetensors", second / "escape.safetensors");
  ModelFolders folders;
  folders.add("diffusion_models", first);
  folders.add("diffusion_models", second);
  EXPECT_EQ(folders.resolve("diffusion_models", "both.safetensors"), first / "both.safetensors");
  EXPECT_EQ(folders.resolve("diffusion_models", "only_second.safetensors"),
            second / "only_second.safetensors");
  EXPECT_EQ(list_model_files(folders, "diffusion_models", model_file_extensions()),
            (std::vector<std::string>{"both.safetensors", "only_second.safetensors"}));
  try {
    folders.resolve("diffusion_models", "nope.safetensors");
    ADD_FAILURE() << "a missing name resolved";
  } catch (const ValidationError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(first.string()), std::string::npos) << message;
    EXPECT_NE(message.find(second.string()), std::string::npos) << message;
  }

  options_.models_dir = folders;
  auto model_fails = [&](const std::string& name) {
    return failed_inputs(
        validate_one("ModelNode", {{"model_name", name}, {"tokenizer", "from_checkpoint"}}));
  };
  EXPECT_TRUE(model_fails("both.safetensors").empty());
  EXPECT_TRUE(model_fails("only_second.safetensors").empty());
  for (const char* name : {"escape.safetensors", "../outside.safetensors", "nope.safetensors"})
    EXPECT_EQ(model_fails(name).count("model_name"), 1u) << name;

  // A node reads the same file the validator resolved.
  RunContext run;
  run.models_dir = folders;
  EXPECT_EQ(run.model_path("diffusion_models", "only_second.safetensors"),
            second / "only_second.safetensors");
  EXPECT_THROW(run.model_path("diffusion_models", "nope.safetensors"), LoadError);
}

TEST_F(ValidatorRules, StringLiteralsWithNulOrInvalidUtf8AreRefused) {
  // Random bytes: whatever they are, validation answers and its report serialises.
  std::uniform_int_distribution<int> byte(0, 255), length(1, 12);
  for (int i = 0; i < 200; ++i) {
    std::string text(length(rng_), ' ');
    for (auto& c : text) c = static_cast<char>(byte(rng_));
    const auto result = validate_one("PrefixNode", {{"filename_prefix", text}});
    EXPECT_NO_THROW(result.to_json().dump());
    if (text.find('\0') != std::string::npos) {
      EXPECT_FALSE(result.ok);
    }
  }
}

json nested(int depth) {
  json value = 1;
  for (int i = 0; i < depth; ++i) value = json::array({std::move(value)});
  return value;
}

TEST_F(ValidatorRules, DeepMetaOrValuesAreRefusedAndMessagesStayShort) {
  for (int depth : {kMaxNodeDepth + 1, 200, 5000}) {
    json prompt = {{"1", {{"class_type", "PrefixNode"}, {"inputs", {{"filename_prefix", "wan"}}}}}};
    prompt["1"]["_meta"] = {{"title", "t"}, {"deep", nested(depth)}};
    const auto result = validate(prompt);
    EXPECT_FALSE(result.ok) << depth;
    EXPECT_LT(result.to_json().dump().size(), 20000u);
  }
  // A deep value just inside the node limit, given where a string goes.
  json prompt = {{"1", {{"class_type", "PrefixNode"}, {"inputs", {{"filename_prefix", nested(kMaxNodeDepth - 3)}}}}}};
  const auto result = validate(prompt);
  EXPECT_FALSE(result.ok);
  EXPECT_LT(result.to_json().dump().size(), 20000u);
  // A long string value is quoted short.
  const auto long_value = validate_one("SizeNode", {{"width", std::string(1 << 20, 'x')}});
  EXPECT_FALSE(long_value.ok);
  EXPECT_LT(long_value.to_json().dump().size(), 20000u);
}

TEST_F(ValidatorRules, LongChainsValidateAndRunWithoutDeepRecursion) {
  constexpr int kNodes = 200000;
  json prompt = json::object();
  prompt["0"] = {{"class_type", "PassNode"}, {"inputs", json::object()}};
  for (int i = 1; i < kNodes; ++i)
    prompt[std::to_string(i)] = {{"class_type", "PassNode"},
                                 {"inputs", {{"in", json::array({std::to_string(i - 1), 0})}}}};
  prompt["sink"] = {{"class_type", "SinkNode"},
                    {"inputs", {{"in", json::array({std::to_string(kNodes - 1), 0})}}}};
  const auto start = std::chrono::steady_clock::now();
  const auto result = validate(prompt);
  EXPECT_TRUE(result.ok) << brief_json(result.to_json());
  Executor executor(registry_);
  RunContext run;
  const auto report = executor.run(prompt, run);
  EXPECT_EQ(report.executed(), kNodes + 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60));
  // A cycle of 2000 nodes is found; each message and the summary stay short.
  prompt["0"]["inputs"]["in"] = json::array({"1999", 0});
  const auto cycle = validate(prompt);
  EXPECT_FALSE(cycle.ok);
  EXPECT_EQ(cycle.node_errors.size(), 2000u);
  EXPECT_LT(cycle.error.dump().size(), 100000u);
  EXPECT_LT(cycle.node_errors["5"].dump().size(), 2000u);
}

TEST(BriefJson, IsBoundedForAnyValue) {
  EXPECT_LT(brief_json(nested(100000)).size(), 300u);
  EXPECT_LT(brief_json(json(std::string(100000, 'a'))).size(), 300u);
  EXPECT_NO_THROW(brief_json(json(std::string("\xff\xfe\xc3"))));
  EXPECT_EQ(json_depth(nested(10), 100), 10);
  EXPECT_EQ(json_depth(nested(100000), 50), 51);
}

}  // namespace
}  // namespace wan::graph
