// wan-serve's ComfyUI API over a real socket: schemas, prompts, the queue, history, the socket's
// messages, interrupts, and outputs bit-identical to wan-run's.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "io/tensor_index.h"
#include "media/image_file.h"
#include "server/server_test_util.h"

namespace wan::server::testing {
namespace {

class ServerEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { TestServer::shutdown(); }
};
[[maybe_unused]] const auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new ServerEnvironment);

std::vector<std::string> types_of(const std::vector<json>& messages) {
  std::vector<std::string> types;
  for (const auto& message : messages) types.push_back(message.value("type", ""));
  return types;
}

json queue_prompt(const json& prompt, const std::string& client_id = "") {
  json body = {{"prompt", prompt}};
  if (!client_id.empty()) body["client_id"] = client_id;
  const HttpReply reply = post("/prompt", body.dump());
  EXPECT_EQ(reply.status, 200) << reply.body;
  return reply.json();
}

TEST(ServerObjectInfo, ListsEveryNodeWithItsPlacementCombo) {
  const HttpReply reply = get("/object_info");
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("content-type"), "application/json");
  const json info = reply.json();
  for (const char* node : {"LoadDiT", "LoadT5", "LoadVAE", "Sample", "Decode", "SaveVideo"})
    EXPECT_TRUE(info.contains(node)) << node;
  const json placement = info["LoadDiT"]["input"]["required"]["placement"];
  for (const char* value : {"gpu", "cpu", "offload"})  // the contract's three (docs/NODES.md)
    EXPECT_NE(std::find(placement[0].begin(), placement[0].end(), value), placement[0].end())
        << placement.dump();
  const json models = info["LoadDiT"]["input"]["required"]["model_name"][0];
  EXPECT_NE(std::find(models.begin(), models.end(), "dit_t2v_tiny.safetensors"), models.end());
  // The /api/ form answers the same; one node; an unknown node is {} as in ComfyUI.
  EXPECT_EQ(get("/api/object_info").json(), info);
  const json one = get("/api/object_info/LoadVAE").json();
  EXPECT_EQ(one.size(), 1u);
  EXPECT_EQ(one["LoadVAE"], info["LoadVAE"]);
  EXPECT_EQ(get("/object_info/NoSuchNode").json(), json::object());
}

TEST(ServerRoutes, SmallEndpointsAnswerComfyShapes) {
  const json stats = get("/api/system_stats").json();
  EXPECT_EQ(stats["system"]["required_frontend_version"], "1.27.10");
  ASSERT_EQ(stats["devices"].size(), 1u);
  EXPECT_EQ(stats["devices"][0]["name"], "vgpu");
  EXPECT_EQ(stats["devices"][0]["vram_total"], 40 << 20);  // the --vram budget
  EXPECT_EQ(stats["devices"][0]["bytes_capacity"], 40 << 20);
  EXPECT_EQ(get("/embeddings").json(), json::array());
  EXPECT_EQ(get("/api/extensions").json(), json::array({"/extensions/core/a.js"}));
  const json folders = get("/models").json();
  EXPECT_NE(std::find(folders.begin(), folders.end(), "vae"), folders.end()) << folders.dump();
  EXPECT_EQ(get("/api/models/vae").json(), json::array({"vae_tiny.pth"}));
  EXPECT_EQ(get("/api/models/nope").status, 404);
  EXPECT_TRUE(get("/prompt").json()["exec_info"].contains("queue_remaining"));
  const json queue = get("/api/queue").json();
  EXPECT_TRUE(queue["queue_running"].is_array() && queue["queue_pending"].is_array());
  EXPECT_EQ(get("/api/features").json()["max_upload_size"], 1 << 20);
  const HttpReply index = get("/");
  EXPECT_EQ(index.status, 200);
  EXPECT_NE(index.body.find("wan-serve test"), std::string::npos);
}

TEST(ServerRoutes, UnknownRoutesAndMethodsGetErrorsNotCrashes) {
  EXPECT_EQ(get("/api/no/such/route").status, 404);
  EXPECT_EQ(get("/no-such-file.js").status, 404);
  EXPECT_EQ(http_request(port(), "PUT", "/prompt").status, 405);
  EXPECT_EQ(http_request(port(), "DELETE", "/api/queue").status, 405);
  EXPECT_EQ(get("/ws").status, 400);  // no upgrade
  EXPECT_EQ(get("/view?filename=%zz").status, 400);
  EXPECT_EQ(get("/%2e%2e/%2e%2e/etc/passwd").status, 400);
  EXPECT_EQ(get("/..%2f..%2fetc/passwd").status, 400);
  EXPECT_EQ(get("/object_info").status, 200);  // still serving
}

TEST(ServerPrompt, MalformedBodiesAre400InComfyShape) {
  for (const std::string body : {"{bad", "", "[1, 2]", "{\"prompt\": 1e999}", "\"text\""}) {
    const HttpReply reply = post("/prompt", body);
    EXPECT_EQ(reply.status, 400) << body;
    const json error = reply.json();
    EXPECT_TRUE(error.contains("error") && error.contains("node_errors")) << reply.body;
  }
  const HttpReply none = post("/api/prompt", R"({"client_id": "x"})");
  EXPECT_EQ(none.status, 400);
  EXPECT_EQ(none.json()["error"]["type"], "no_prompt");
  const HttpReply not_prompt = post("/prompt", R"({"prompt": {"1": 5}})");
  EXPECT_EQ(not_prompt.status, 400);
  EXPECT_TRUE(not_prompt.json()["error"].is_object());
  const HttpReply deep = post("/prompt", std::string(5000, '[') + std::string(5000, ']'));
  EXPECT_EQ(deep.status, 400);
}

TEST(ServerPrompt, InvalidWorkflowIs400WithNodeErrors) {
  json prompt = tiny_t2v_prompt();
  const std::string sample = node_of(prompt, "Sample");
  prompt[sample]["inputs"]["steps"] = 0;
  prompt[node_of(prompt, "LoadVAE")]["inputs"]["model_name"] = "../vae_tiny.pth";
  const HttpReply reply = post("/prompt", json({{"prompt", prompt}}).dump());
  ASSERT_EQ(reply.status, 400);
  const json report = reply.json();
  EXPECT_EQ(report["error"]["type"], "prompt_outputs_failed_validation");
  EXPECT_EQ(report["node_errors"][sample]["errors"][0]["type"], "value_smaller_than_min");
  EXPECT_EQ(report["node_errors"][sample]["class_type"], "Sample");
  EXPECT_TRUE(report["node_errors"].contains(node_of(prompt, "LoadVAE")));
  EXPECT_TRUE(get("/queue").json()["queue_pending"].empty());  // nothing was queued
}

// The whole exchange of one prompt, as the frontend sees it, and the output checked against
// wan-run's for the same prompt.
TEST(ServerPrompt, RunsTinyT2vWithComfyMessagesAndWanRunsOutput) {
  WsClient ws(port(), "/ws?clientId=client-run");
  ASSERT_TRUE(ws.connected());
  const auto status = ws.next();
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["type"], "status");
  EXPECT_EQ((*status)["data"]["sid"], "client-run");

  const json prompt = tiny_t2v_prompt(/*seed=*/11);
  const json queued = queue_prompt(prompt, "client-run");
  const std::string id = queued["prompt_id"];
  EXPECT_EQ(queued["node_errors"], json::object());
  EXPECT_TRUE(queued["number"].is_number_integer());

  std::vector<json> seen;
  ASSERT_TRUE(ws.wait_for("execution_success", &seen)) << json(seen).dump();
  ASSERT_TRUE(ws.wait_for("executing", &seen));
  EXPECT_TRUE(seen.back()["data"]["node"].is_null());  // ComfyUI's "prompt done"
  const auto types = types_of(seen);
  auto index_of = [&](const std::string& type) {
    return std::find(types.begin(), types.end(), type) - types.begin();
  };
  EXPECT_LT(index_of("execution_start"), index_of("execution_cached"));
  EXPECT_LT(index_of("execution_cached"), index_of("executing"));
  EXPECT_LT(index_of("progress"), index_of("executed"));
  std::set<std::string> executing, executed;
  int progress = 0;
  for (const auto& message : seen) {
    const json& data = message["data"];
    if (message["type"] != "status") {
      EXPECT_EQ(data.value("prompt_id", id), id);
    }
    if (message["type"] == "executing" && data["node"].is_string()) executing.insert(data["node"]);
    if (message["type"] == "executed") executed.insert(data["node"].get<std::string>());
    if (message["type"] == "progress" && data["node"] == node_of(prompt, "Sample")) {
      EXPECT_EQ(data["max"], 2);
      ++progress;
    }
  }
  EXPECT_EQ(progress, 2);
  EXPECT_EQ(executing.size(), prompt.size() - 0) << json(seen).dump();
  EXPECT_EQ(executed, (std::set<std::string>{node_of(prompt, "SaveVideo"),
                                             node_of(prompt, "PreviewImage"), "900"}));

  // /history: the ui of each output node, the status with its messages, the memory report.
  const json entry = wait_history(id);
  ASSERT_TRUE(entry.is_object());
  EXPECT_EQ(entry["status"]["status_str"], "success");
  EXPECT_EQ(entry["status"]["completed"], true);
  EXPECT_EQ(entry["status"]["messages"][0][0], "execution_start");
  EXPECT_EQ(entry["prompt"][1], id);
  EXPECT_EQ(entry["prompt"][3]["client_id"], "client-run");
  const json video = entry["outputs"][node_of(prompt, "SaveVideo")]["images"][0];
  EXPECT_EQ(video["type"], "output");
  EXPECT_EQ(video["subfolder"], "video");
  const json report = entry["memory_report"];
  EXPECT_EQ(report["outcome"], "ok");
  EXPECT_EQ(report["nodes"].size(), prompt.size());
  EXPECT_EQ(report["devices"][0]["name"], "vgpu");
  const HttpReply svg = get(entry["memory_report_svg"].get<std::string>());
  EXPECT_EQ(svg.status, 200);
  EXPECT_EQ(svg.header("content-type"), "image/svg+xml");
  EXPECT_NE(svg.body.find("<svg"), std::string::npos);

  // /view serves the very bytes SaveVideo wrote; the preview sits in temp.
  const auto& folders = TestServer::shared().folders();
  const std::string name = video["filename"];
  const HttpReply file = get("/api/view?filename=" + name + "&type=output&subfolder=video");
  ASSERT_EQ(file.status, 200);
  EXPECT_EQ(file.header("content-type"), "video/mp4");
  EXPECT_EQ(file.body, runner::testing::read_text(folders.output / "video" / name));
  const json preview = entry["outputs"][node_of(prompt, "PreviewImage")]["images"][0];
  EXPECT_EQ(preview["type"], "temp");
  EXPECT_EQ(get("/view?filename=" + preview["filename"].get<std::string>() + "&type=temp").status,
            200);

  // wan-run on the same prompt file writes the same frames, bit for bit.
  runner::testing::TempDir cli("serve_vs_run");
  std::ofstream(cli / "prompt.json") << prompt.dump();
  ServerFolders run_folders{cli.path(), cli / "out", cli / "in", cli / "tmp", cli / "user"};
  std::vector<std::string> args = {(cli / "prompt.json").string()};
  for (const auto& flag : engine_flags(run_folders)) args.push_back(flag);
  const auto result = runner::testing::run_wan(args);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const json tensor = entry["outputs"]["900"]["tensors"][0];
  const fs::path served_file = folders.output / tensor["subfolder"].get<std::string>() /
                               tensor["filename"].get<std::string>();
  const at::Tensor served = io::load_tensors(served_file.string()).at("tensor");
  const at::Tensor ran = runner::testing::saved_frames(cli / "out");
  ASSERT_TRUE(served.defined() && ran.defined());
  EXPECT_TRUE(served.equal(ran)) << "max abs diff " << (served - ran).abs().max().item<float>();
}

TEST(ServerPrompt, NewSeedRerunsSampleOnwardsFromTheCache) {
  const json first = tiny_t2v_prompt(/*seed=*/21);
  WsClient ws(port(), "/ws?clientId=client-cache");
  ASSERT_TRUE(ws.connected());
  std::vector<json> seen;
  queue_prompt(first, "client-cache");
  ASSERT_TRUE(ws.wait_for("execution_success", &seen));
  seen.clear();
  const json second = tiny_t2v_prompt(/*seed=*/22);
  const std::string id = queue_prompt(second, "client-cache")["prompt_id"];
  ASSERT_TRUE(ws.wait_for("execution_success", &seen));
  std::set<std::string> cached, executing;
  for (const auto& message : seen) {
    if (message["type"] == "execution_cached")
      for (const auto& node : message["data"]["nodes"]) cached.insert(node.get<std::string>());
    if (message["type"] == "executing" && message["data"]["node"].is_string())
      executing.insert(message["data"]["node"].get<std::string>());
  }
  for (const char* type : {"LoadDiT", "LoadT5", "LoadVAE"})
    EXPECT_TRUE(cached.count(node_of(second, type))) << type;
  EXPECT_TRUE(executing.count(node_of(second, "Sample")));
  EXPECT_TRUE(executing.count(node_of(second, "Decode")));
  EXPECT_FALSE(executing.count(node_of(second, "LoadDiT")));
  const json report = wait_history(id)["memory_report"];
  EXPECT_EQ(report["run"]["cached"].get<int>(), static_cast<int>(cached.size()));
  // The same prompt again: everything cached, the output nodes' ui still reported.
  seen.clear();
  const std::string again = queue_prompt(second, "client-cache")["prompt_id"];
  ASSERT_TRUE(ws.wait_for("execution_success", &seen));
  const json entry = wait_history(again);
  EXPECT_TRUE(entry["outputs"].contains(node_of(second, "SaveVideo"))) << entry.dump();
  for (const auto& message : seen)
    EXPECT_FALSE(message["type"] == "executing" && message["data"]["node"].is_string());
}

TEST(ServerPrompt, EachClientGetsOnlyItsOwnPromptsMessages) {
  WsClient mine(port(), "/ws?clientId=client-a");
  WsClient other(port(), "/ws?clientId=client-b");
  ASSERT_TRUE(mine.connected() && other.connected());
  std::vector<json> seen_mine, seen_other;
  queue_prompt(tiny_t2v_prompt(31), "client-a");
  ASSERT_TRUE(mine.wait_for("execution_success", &seen_mine));
  // client-b's socket: by now everything the run sent is there; only status broadcasts.
  while (auto message = other.next(0.5)) seen_other.push_back(*message);
  ASSERT_FALSE(seen_other.empty());
  for (const auto& message : seen_other) EXPECT_EQ(message["type"], "status") << message.dump();
}

// Every file under `root` (names only), for "the interrupted prompt wrote nothing".
std::set<std::string> files_under(const fs::path& root) {
  std::set<std::string> names;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    names.insert(fs::relative(it->path(), root, ec).string());
  return names;
}

TEST(ServerQueue, ListsDeletesClearsAndInterrupts) {
  WsClient ws(port(), "/ws?clientId=client-queue");
  ASSERT_TRUE(ws.connected());
  const auto& folders = TestServer::shared().folders();
  const std::set<std::string> outputs_before = files_under(folders.output);
  const std::set<std::string> temp_before = files_under(folders.temp);
  // A long Sample (many steps) keeps the executor busy while the queue is inspected.
  const std::string running = queue_prompt(tiny_t2v_prompt(41, 1000), "client-queue")["prompt_id"];
  std::vector<json> seen;
  ASSERT_TRUE(ws.wait_for("progress", &seen));
  const std::string second = queue_prompt(tiny_t2v_prompt(42))["prompt_id"];
  const std::string third = queue_prompt(tiny_t2v_prompt(43))["prompt_id"];
  json queue = get("/queue").json();
  ASSERT_EQ(queue["queue_running"].size(), 1u);
  EXPECT_EQ(queue["queue_running"][0][1], running);
  ASSERT_EQ(queue["queue_pending"].size(), 2u);
  EXPECT_EQ(get("/prompt").json()["exec_info"]["queue_remaining"], 3);
  EXPECT_EQ(post("/queue", json({{"delete", {second}}}).dump()).status, 200);
  queue = get("/api/queue").json();
  ASSERT_EQ(queue["queue_pending"].size(), 1u);
  EXPECT_EQ(queue["queue_pending"][0][1], third);
  EXPECT_EQ(post("/queue", R"({"clear": true})").status, 200);
  EXPECT_TRUE(get("/queue").json()["queue_pending"].empty());
  // An interrupt naming another prompt does nothing; a global one stops the run.
  EXPECT_EQ(post("/interrupt", json({{"prompt_id", third}}).dump()).status, 200);
  EXPECT_EQ(post("/api/interrupt", "").status, 200);
  const auto interrupted = ws.wait_for("execution_interrupted", &seen);
  ASSERT_TRUE(interrupted);
  EXPECT_EQ((*interrupted)["data"]["prompt_id"], running);
  EXPECT_EQ((*interrupted)["data"]["node_type"], "Sample");
  const json entry = wait_history(running);
  EXPECT_EQ(entry["status"]["status_str"], "error");
  EXPECT_EQ(entry["memory_report"]["outcome"], "cancelled");
  EXPECT_TRUE(get("/history/" + second).json().empty());
  // Neither the interrupted prompt nor the deleted ones left a file, whole or partial.
  EXPECT_EQ(files_under(folders.output), outputs_before);
  EXPECT_EQ(files_under(folders.temp), temp_before);
}

// The queue is bounded (--max-queue, 64 in these tests): one more pending prompt is a 503 in
// ComfyUI's error shape, and nothing is queued for it.
TEST(ServerQueue, FullQueueAnswers503) {
  WsClient ws(port(), "/ws?clientId=client-full");
  ASSERT_TRUE(ws.connected());
  const std::string running = queue_prompt(tiny_t2v_prompt(61, 1000), "client-full")["prompt_id"];
  std::vector<json> seen;
  ASSERT_TRUE(ws.wait_for("progress", &seen));
  const std::string body = json({{"prompt", tiny_t2v_prompt(62)}}).dump();
  int accepted = 0;
  HttpReply reply;
  for (size_t i = 0; i < kTestMaxQueue + 6; ++i) {
    reply = post("/prompt", body);
    if (reply.status != 200) break;
    ++accepted;
  }
  EXPECT_EQ(accepted, int(kTestMaxQueue));
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.json()["error"]["type"], "queue_full");
  EXPECT_EQ(get("/queue").json()["queue_pending"].size(), kTestMaxQueue);
  EXPECT_EQ(post("/queue", R"({"clear": true})").status, 200);
  EXPECT_EQ(post("/interrupt", json({{"prompt_id", running}}).dump()).status, 200);
  ASSERT_TRUE(ws.wait_for("execution_interrupted", &seen));
  EXPECT_EQ(post("/prompt", body).status, 200);  // room again
}

TEST(ServerHistory, ListsByCountAndDeletesAndClears) {
  queue_prompt(tiny_t2v_prompt(51));
  const std::string last = queue_prompt(tiny_t2v_prompt(52))["prompt_id"];
  ASSERT_TRUE(wait_history(last).is_object());
  const json all = get("/history").json();
  ASSERT_GE(all.size(), 2u);
  const json newest = get("/history?max_items=1").json();
  ASSERT_EQ(newest.size(), 1u);
  EXPECT_TRUE(newest.contains(last));
  EXPECT_EQ(get("/history?max_items=x").status, 400);
  EXPECT_EQ(post("/history", json({{"delete", {last}}}).dump()).status, 200);
  EXPECT_TRUE(get("/history/" + last).json().empty());
  EXPECT_EQ(post("/api/history", R"({"clear": true})").status, 200);
  EXPECT_TRUE(get("/history").json().empty());
  EXPECT_EQ(get("/api/memory_report/" + last + ".svg").status, 404);
}

// Eight clients queue prompts at once: every prompt runs exactly once, and each client's socket
// carries its own prompts' messages and nothing of the others'.
// The tiny t2v up to Sample, its latent saved: a new seed re-runs only Sample (one step) and the
// save, so a load test can queue hundreds.
json tiny_latent_prompt(int64_t seed) {
  json prompt = tiny_t2v_prompt(seed, 1);
  const std::string sample = node_of(prompt, "Sample");
  for (const char* type : {"Decode", "CreateVideo", "SaveVideo", "PreviewImage", "SaveTensor"})
    for (std::string id = node_of(prompt, type); !id.empty(); id = node_of(prompt, type))
      prompt.erase(id);
  prompt["901"] = {{"class_type", "SaveTensor"},
                   {"inputs", {{"tensor", json::array({sample, 0})}, {"filename_prefix", "latent"}}}};
  return prompt;
}

// wan-serve as its own process (the engine flags of the shared server, its own folders), so its
// memory is measured apart from the test's clients.
class ServeProcess {
 public:
  explicit ServeProcess(const fs::path& root) {
    ServerFolders folders{root, root / "output", root / "input", root / "temp", root / "user"};
    std::vector<std::string> args = {WAN_SERVE_PATH, "--port", "0", "--user-directory",
                                     folders.user.string(), "--max-queue", "256"};
    for (const auto& flag : engine_flags(folders)) args.push_back(flag);
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    // The first stdout line: "wan-serve: listening on http://127.0.0.1:PORT" (bounded read).
    std::string line;
    char c = 0;
    while (line.size() < 512 && read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    close(out[0]);
    const size_t colon = line.rfind(':');
    if (line.find("listening on") != std::string::npos && colon != std::string::npos)
      port_ = static_cast<uint16_t>(std::stoi(line.substr(colon + 1)));
  }
  ~ServeProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  uint16_t port() const { return port_; }
  int64_t resident_bytes() const {
    std::ifstream statm("/proc/" + std::to_string(pid_) + "/statm");
    int64_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * sysconf(_SC_PAGESIZE);
  }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// What each load-test client saw of its own prompts.
struct LoadClient {
  std::vector<std::string> queued;
  std::map<std::string, int> started;  // prompt id -> execution_start messages
  std::vector<std::string> foreign;    // messages about prompts of other clients
  bool finished = false;
};

// `clients` clients at once, each on its own socket, queue `each` prompts (the first `whole` of
// them whole t2v prompts, the rest up to the latent) and wait for all of theirs to finish. They
// keep counts, not the messages.
std::vector<LoadClient> run_load(uint16_t port, int clients, int each, int whole, int64_t seeds) {
  std::vector<LoadClient> seen(clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([=, &seen] {
      LoadClient& mine = seen[c];
      // One id per round: a round's last message ("executing" null after execution_success)
      // may reach the next round's socket of the same id, as ComfyUI routes by id.
      const std::string client_id = "load-" + std::to_string(seeds) + "-" + std::to_string(c);
      WsClient ws(port, "/ws?clientId=" + client_id);
      if (!ws.connected()) return;
      for (int k = 0; k < each; ++k) {
        const int64_t seed = seeds + c * 1000 + k;
        const json body = {{"prompt", k < whole ? tiny_t2v_prompt(seed, 1) : tiny_latent_prompt(seed)},
                           {"client_id", client_id}};
        const HttpReply reply = http_request(port, "POST", "/prompt", body.dump());
        if (reply.status == 200) mine.queued.push_back(reply.json()["prompt_id"]);
      }
      const std::set<std::string> ids(mine.queued.begin(), mine.queued.end());
      size_t done = 0;
      while (done < mine.queued.size()) {
        const auto message = ws.next(120);
        if (!message) return;
        const json& data = (*message)["data"];
        if (!data.is_object() || !data.contains("prompt_id") || !data["prompt_id"].is_string())
          continue;
        const std::string id = data["prompt_id"];
        if (!ids.count(id)) mine.foreign.push_back(message->dump());
        const std::string type = (*message)["type"];
        if (type == "execution_start") ++mine.started[id];
        if (type == "execution_success") ++done;
      }
      mine.finished = true;
    });
  }
  for (auto& thread : threads) thread.join();
  return seen;
}

// 8 clients queue 200 prompts at once (each one whole t2v prompt and 24 up to the latent) on a
// wan-serve process: every prompt runs once, each client hears only its own prompts, and the
// server's memory after all of them stays within 10 % of what it held after the first prompts
// (one whole prompt, then one latent prompt from each of the 8 clients at once, which also warms
// the server's I/O threads).
TEST(ServerLoad, EightClientsQueue200PromptsEachRunOnceAndMemoryStaysFlat) {
  constexpr int kClients = 8, kPromptsEach = 25, kWholeEach = 1;
  runner::testing::TempDir root("serve_load");
  const ServeProcess server(root.path());
  ASSERT_NE(server.port(), 0) << "wan-serve did not start";
  const uint16_t port = server.port();
  ASSERT_EQ(run_load(port, 1, 1, 1, 900)[0].finished, true);
  for (const auto& client : run_load(port, kClients, 1, 0, 800)) ASSERT_TRUE(client.finished);
  const int64_t rss_after_first = server.resident_bytes();

  const std::vector<LoadClient> seen = run_load(port, kClients, kPromptsEach, kWholeEach, 10000);
  std::set<std::string> all;
  for (int c = 0; c < kClients; ++c) {
    ASSERT_TRUE(seen[c].finished) << "client " << c << " did not see all its prompts finish";
    ASSERT_EQ(seen[c].queued.size(), size_t(kPromptsEach)) << "client " << c;
    EXPECT_TRUE(seen[c].foreign.empty()) << "client " << c << " got " << seen[c].foreign[0];
    EXPECT_EQ(seen[c].started.size(), size_t(kPromptsEach)) << "client " << c;
    for (const auto& [id, count] : seen[c].started) {
      EXPECT_EQ(count, 1) << id << " started " << count << " times";
      all.insert(id);
    }
  }
  EXPECT_EQ(all.size(), size_t(kClients * kPromptsEach));
  const json history = http_request(port, "GET", "/history", "").json();
  for (const auto& client : seen)
    for (const auto& id : client.queued) {
      ASSERT_TRUE(history.contains(id)) << id;
      EXPECT_EQ(history[id]["status"]["status_str"], "success");
    }
  EXPECT_TRUE(http_request(port, "GET", "/queue", "").json()["queue_pending"].empty());
  const int64_t rss_after_all = server.resident_bytes();
  EXPECT_LE(rss_after_all, rss_after_first * 11 / 10)
      << "RSS after the first prompts " << rss_after_first << " B, after 200 more " << rss_after_all
      << " B";
  std::printf("[ load ] RSS after the first prompts %.1f MiB, after 200 more %.1f MiB (%+.2f %%)\n",
              rss_after_first / 1048576.0, rss_after_all / 1048576.0,
              100.0 * (rss_after_all - rss_after_first) / rss_after_first);
}

TEST(ServerWs, FeatureFlagsAnsweredAndReconnectKeepsTheId) {
  WsClient ws(port(), "/api/ws?clientId=client-flags");
  ASSERT_TRUE(ws.connected());
  ASSERT_TRUE(ws.next());  // status
  ws.send_text(R"({"type": "feature_flags", "data": {"supports_preview_metadata": true}})");
  const auto flags = ws.next();
  ASSERT_TRUE(flags);
  EXPECT_EQ((*flags)["type"], "feature_flags");
  EXPECT_EQ((*flags)["data"]["supports_preview_metadata"], false);
  ws.send_text("not json at all");  // ignored, the socket stays
  ws.send_text(R"({"type": "feature_flags"})");
  EXPECT_TRUE(ws.next());
  WsClient anonymous(port(), "/ws");
  ASSERT_TRUE(anonymous.connected());
  const auto status = anonymous.next();
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["data"]["sid"].get<std::string>().size(), 36u);  // a fresh uuid
}

// A socket that hears only broadcasts (another client's prompt runs) still gets a status message
// every --ws-keepalive while the queue is busy; with 0 it gets only the queue's own changes.
// Own servers on the shared engine (idle between tests), each at its own keepalive.
TEST(ServerWs, KeepaliveStatusReachesEverySocketWhilePromptsRun) {
  auto busy_statuses = [](double keepalive_s, int64_t seed) {
    ServerOptions options;
    options.port = 0;
    options.user_dir = TestServer::shared().folders().root / ("keepalive_user_" + std::to_string(seed));
    options.ws_keepalive_s = keepalive_s;
    ComfyServer server(options, TestServer::shared().engine(), fs::path());
    WsClient bystander(server.port(), "/ws?clientId=bystander");
    EXPECT_TRUE(bystander.connected());
    EXPECT_TRUE(bystander.next());  // the greeting status
    const HttpReply queued = http_request(
        server.port(), "POST", "/prompt",
        json({{"prompt", tiny_t2v_prompt(seed, /*steps=*/12)}, {"client_id", "runner"}}).dump());
    EXPECT_EQ(queued.status, 200) << queued.body;
    int busy = 0;
    for (int i = 0; i < 10000; ++i) {
      const auto message = bystander.next(120);
      if (!message) break;
      if ((*message)["type"] != "status") continue;
      if ((*message)["data"]["status"]["exec_info"]["queue_remaining"] == 0) return busy;
      ++busy;
    }
    ADD_FAILURE() << "no idle status reached the bystander";
    return busy;
  };
  // Without keepalive: the status of the queued prompt and of its start, nothing more.
  EXPECT_LE(busy_statuses(0, 301), 2);
  // Twelve steps of the tiny models last a few hundred ms at least; at 20 ms it hears more.
  EXPECT_GE(busy_statuses(0.02, 302), 5);
}

// --preview-method latent2rgb: after each sampling step the prompt's client gets ComfyUI's binary
// preview message (event 1, format 1, a JPEG of the latent's size); with none (the default) it
// gets no binary message.
TEST(ServerWs, LatentPreviewsFollowEachSamplingStep) {
  auto previews = [](const std::string& method, int64_t seed) {
    ServerOptions options;
    options.port = 0;
    options.user_dir = TestServer::shared().folders().root / ("preview_user_" + method);
    options.preview_method = method;
    ComfyServer server(options, TestServer::shared().engine(), fs::path());
    WsClient ws(server.port(), "/ws?clientId=previewer");
    EXPECT_TRUE(ws.connected());
    const HttpReply queued = http_request(
        server.port(), "POST", "/prompt",
        json({{"prompt", tiny_t2v_prompt(seed, /*steps=*/3)}, {"client_id", "previewer"}}).dump());
    EXPECT_EQ(queued.status, 200) << queued.body;
    std::vector<json> seen;
    EXPECT_TRUE(ws.wait_for("execution_success", &seen));
    return ws.binary_messages();
  };
  EXPECT_TRUE(previews("none", 401).empty());
  const std::vector<std::string> frames = previews("latent2rgb", 402);
  ASSERT_EQ(frames.size(), 3u);  // one per step of the 3
  for (const std::string& frame : frames) {
    ASSERT_GT(frame.size(), 12u);
    EXPECT_EQ(frame.substr(0, 8), std::string("\0\0\0\1\0\0\0\1", 8));  // PREVIEW_IMAGE, JPEG
    const media::LoadedImage image = media::decode_image(
        reinterpret_cast<const uint8_t*>(frame.data()) + 8, frame.size() - 8, "preview");
    // The tiny t2v prompt is 64x64: its latent, and so its preview, is 8x8.
    EXPECT_EQ(image.image.sizes(), (std::vector<int64_t>{1, 8, 8, 3}));
  }
}

}  // namespace
}  // namespace wan::server::testing
