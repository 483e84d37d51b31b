// Hostile workflow files and --set values: each is a ValidationError (the runner's exit 2) with
// a message that can be printed, never a crash, a hang or an unbounded allocation.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

#include "core/bounded_json.h"
#include "core/error.h"
#include "graph/fake_nodes.h"
#include "graph/workflow_json.h"
#include "test_util.h"

namespace wan::graph {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path write_workflow(const std::string& name, const std::string& text) {
  auto dir = fs::temp_directory_path() / ("wan_hostile_workflow_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << text;
  return dir / name;
}

std::string read_error(const fs::path& path) {
  try {
    read_json_file(path);
  } catch (const ValidationError& e) {
    const std::string what = e.what();
    EXPECT_EQ(find_invalid_utf8(what), std::string::npos) << "message is not valid UTF-8";
    EXPECT_LT(what.size(), 2000u);
    EXPECT_NE(what.find("workflow"), std::string::npos) << what;
    return what;
  }
  ADD_FAILURE() << path << ": expected a ValidationError";
  return "";
}

// An API prompt whose node 2 has `inputs.seed` set to the raw JSON text `value`.
std::string prompt_with_seed(const std::string& value) {
  return R"({"2": {"class_type": "FakeSample", "inputs": {"seed": )" + value + "}}}";
}

TEST(HostileWorkflow, DeepNestingAnywhereIsRefusedQuickly) {
  for (int depth : {257, 30000, 100000}) {
    std::string deep;
    for (int i = 0; i < depth; ++i) deep += "[";
    // In an input value, and in _meta (which is embedded into outputs).
    for (const std::string& text :
         {prompt_with_seed(deep), R"({"1": {"class_type": "FakeText", "_meta": )" + deep}) {
      const auto start = std::chrono::steady_clock::now();
      EXPECT_NE(read_error(write_workflow("deep.json", text)).find("deeper"), std::string::npos);
      EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    }
  }
}

TEST(HostileWorkflow, NumbersThatDoNotFitAreRefused) {
  for (const std::string& number : {std::string("1e400"), std::string("-1e400"), std::string(5000, '9'),
                                    std::string("99999999999999999999")}) {
    read_error(write_workflow("number.json", prompt_with_seed(number)));
  }
}

TEST(HostileWorkflow, InvalidUtf8IsRefusedWithItsOffset) {
  const std::string head = R"({"5": {"class_type": "FakeText", "inputs": {"text": ")";
  for (const std::string bad : {"\xff", "\xc0\x80", "\xed\xb0\x80", "\xe2\x82"}) {
    const std::string error = read_error(write_workflow("utf8.json", head + bad + "\"}}}"));
    EXPECT_NE(error.find("byte " + std::to_string(head.size())), std::string::npos) << error;
  }
}

TEST(HostileWorkflow, OnlyRegularFilesAreRead) {
  read_error(fs::temp_directory_path());
  read_error("/proc/self/mem");
  read_error("/nonexistent/workflow.json");
  const fs::path fifo = write_workflow("placeholder", "").parent_path() / "workflow.fifo";
  fs::remove(fifo);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto reading = std::async(std::launch::async, [&] { return read_error(fifo); });
  if (reading.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    FAIL() << "reading a FIFO as the workflow blocked";
  }
  EXPECT_NE(reading.get().find("FIFO"), std::string::npos);
  fs::remove(fifo);
}

TEST(HostileWorkflow, SetValuesMustBeValidUtf8AndFit) {
  const NodeRegistry registry = testing::make_registry();
  for (const std::string& assignment :
       {std::string("5.text=caf\xe9"), std::string("5.te\xffxt=a"), std::string("\xc3.text=a"),
        std::string("2.seed=") + std::string(5000, '9'), std::string("2.seed=1e400"),
        std::string("1.scale=1e400"), std::string("1.scale=nan")}) {
    json prompt = testing::basic_prompt();
    const json before = prompt;
    try {
      apply_override(prompt, assignment, registry);
      ADD_FAILURE() << "expected a ValidationError for " << printable(assignment);
    } catch (const ValidationError& e) {
      EXPECT_EQ(find_invalid_utf8(e.what()), std::string::npos) << printable(e.what());
      EXPECT_LT(std::string(e.what()).size(), 2000u);
    }
    EXPECT_EQ(prompt, before) << "a refused --set changed the prompt";
    EXPECT_NO_THROW(prompt.dump());
  }
}

// --set on nodes of the wrong shape: a class_type that is not a string, a node that is not an
// object, inputs that are not an object. Each is a ValidationError, never a JSON type_error.
// Link ids and slots of a UI workflow must be integers: 6e47 or 1.5 is a ValidationError.
TEST(HostileWorkflow, NonIntegerLinkFieldsAreRefused) {
  const NodeRegistry registry = testing::make_registry();
  for (const char* link : {"[6e47, 1, 0, 2, 0, \"FAKE_MODEL\"]", "[1, 1, 1.5, 2, 0, \"FAKE_MODEL\"]",
                           "{\"id\": 1e300, \"origin_id\": 1}", "{\"id\": 1, \"origin_id\": 1, \"origin_slot\": -1e30}"}) {
    const std::string text = std::string(R"({"nodes": [{"id": 1, "type": "FakeLoader", "mode": 0,
        "outputs": [{"name": "model", "type": "FAKE_MODEL", "links": [1]}], "widgets_values": ["a", 1.0]},
        {"id": 2, "type": "FakeDecode", "mode": 0, "inputs": [{"name": "model", "type": "FAKE_MODEL",
        "link": 1}]}], "links": [)") + link + "]}";
    EXPECT_THROW(ui_to_api(json::parse(text), registry), ValidationError) << link;
  }
}

TEST(HostileWorkflow, SetOnMalformedNodesIsAValidationError) {
  const NodeRegistry registry = testing::make_registry();
  for (const char* text :
       {R"({"1": {"class_type": {"a": 1}, "_meta": {"title": "x"}}})",
        R"({"1": {"class_type": ["FakeText"]}, "2": {"class_type": "FakeText", "inputs": 7}})",
        R"({"1": 5, "2": {"class_type": "FakeText", "inputs": []}})"}) {
    json prompt = json::parse(text);
    for (const char* assignment : {"x.text=a", "FakeText.text=a", "1.text=a", "2.text=a", "nope.text=a"}) {
      json copy = prompt;
      EXPECT_THROW(apply_override(copy, assignment, registry), ValidationError) << text << " " << assignment;
    }
  }
}

// Inputs the fuzzers found, replayed as the workflow fuzzers run them: the first line is a --set
// assignment, the rest the workflow. Each must be accepted or give a ValidationError (run under
// UBSan by the sanitizer leg: a float link id such as 6e47 was converted to int64 unchecked).
TEST(HostileWorkflow, FuzzerFindingsStayFixed) {
  const NodeRegistry registry = testing::make_registry();
  size_t replayed = 0;
  for (const char* kind : {"workflow_api", "workflow_ui"})
  for (const auto& entry : fs::directory_iterator(wan::testing::data_path(std::string("hostile/") + kind))) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string input((std::istreambuf_iterator<char>(in)), {});
    const size_t newline = input.find('\n');
    const std::string assignment = newline == std::string::npos ? "" : input.substr(0, newline);
    const std::string text = newline == std::string::npos ? input : input.substr(newline + 1);
    try {
      const json workflow = parse_json_bounded(text, "fuzz");
      json prompt = std::string(kind) == "workflow_ui" ? ui_to_api(workflow, registry)
                                                       : to_api_prompt(workflow, registry);
      if (!assignment.empty()) apply_override(prompt, assignment, registry);
    } catch (const ValidationError&) {
    }
    ++replayed;
  }
  EXPECT_GE(replayed, 2u);
}

}  // namespace
}  // namespace wan::graph
