#include "server/comfy_server.h"

#include <spdlog/spdlog.h>
#include <sys/sysinfo.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>

#include "core/bounded_json.h"
#include "core/error.h"

namespace wan::server {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// What the frontend checks /system_stats against: the frontend version this server is tested
// with (scripts/requirements.txt pins the same).
constexpr const char* kFrontendVersion = "1.27.10";
constexpr const char* kServerVersion = "0.1.0";

// extra_data keys ComfyUI never keeps in /queue and /history (its SENSITIVE_EXTRA_DATA_KEYS).
const char* const kSensitiveExtraData[] = {"auth_token_comfy_org", "api_key_comfy_org"};

std::string new_uuid() {
  static std::mutex mutex;
  static std::mt19937_64 random{std::random_device{}()};
  uint64_t high, low;
  {
    std::lock_guard<std::mutex> lock(mutex);
    high = random();
    low = random();
  }
  high = (high & ~uint64_t(0xF000)) | uint64_t(0x4000);                  // version 4
  low = (low & ~(uint64_t(0xC) << 60)) | (uint64_t(0x8) << 60);           // RFC 4122 variant
  char text[37];
  std::snprintf(text, sizeof(text), "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(high >> 32), static_cast<unsigned>((high >> 16) & 0xFFFF),
                static_cast<unsigned>(high & 0xFFFF), static_cast<unsigned>(low >> 48),
                static_cast<unsigned long long>(low & 0xFFFFFFFFFFFFull));
  return text;
}

// A clientId or prompt_id from a client: printable ASCII, short (it is echoed in every message).
bool is_safe_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (unsigned char c : id)
    if (c < 0x21 || c > 0x7E) return false;
  return true;
}

// Constant-time, so the token cannot be guessed byte by byte from response times.
bool same_secret(const std::string& given, const std::string& secret) {
  if (secret.empty() || given.size() != secret.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ secret[i]);
  return diff == 0;
}

std::string cookie_value(const std::string& cookies, const std::string& name) {
  size_t pos = 0;
  while (pos < cookies.size()) {
    size_t end = cookies.find(';', pos);
    if (end == std::string::npos) end = cookies.size();
    std::string pair = cookies.substr(pos, end - pos);
    const size_t start = pair.find_first_not_of(' ');
    if (start != std::string::npos) pair = pair.substr(start);
    if (pair.rfind(name + "=", 0) == 0) return pair.substr(name.size() + 1);
    pos = end + 1;
  }
  return "";
}

// "host:port" of a Host header or of an Origin's authority, lower-cased.
std::string authority_of_origin(const std::string& origin) {
  const size_t scheme = origin.find("://");
  std::string rest = scheme == std::string::npos ? origin : origin.substr(scheme + 3);
  rest = rest.substr(0, rest.find('/'));
  std::transform(rest.begin(), rest.end(), rest.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return rest;
}

json number_json(double number) {
  if (std::floor(number) == number && std::fabs(number) < 9e15)
    return static_cast<int64_t>(number);
  return number;
}

std::vector<std::string> string_list(const json& value) {
  std::vector<std::string> out;
  if (!value.is_array()) return out;
  for (const auto& item : value)
    if (item.is_string()) out.push_back(item.get<std::string>());
  return out;
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool Route::is(const std::string& method, std::initializer_list<const char*> path) const {
  if (request.method != method || segments.size() != path.size()) return false;
  size_t i = 0;
  for (const char* part : path) {
    if (std::string(part) != "*" && segments[i] != part) return false;
    ++i;
  }
  return true;
}

bool Route::starts(std::initializer_list<const char*> path) const {
  if (segments.size() < path.size()) return false;
  size_t i = 0;
  for (const char* part : path)
    if (segments[i++] != part) return false;
  return true;
}

HttpResponse error_response(int status, const std::string& type, const std::string& message) {
  const json body = {{"error",
                      {{"type", type},
                       {"message", message},
                       {"details", message},
                       {"extra_info", json::object()}}},
                     {"node_errors", json::object()}};
  return HttpResponse::json_text(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

HttpResponse json_response(const json& value, int status) {
  return HttpResponse::json_text(status, value.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::optional<json> parse_body(const HttpRequest& request, HttpResponse* error) {
  try {
    JsonLimits limits;
    limits.max_bytes = std::max<size_t>(request.body.size(), 1);
    return parse_json_bounded(request.body, "request body", limits);
  } catch (const std::exception& e) {
    *error = error_response(400, "invalid_json", e.what());
    return std::nullopt;
  }
}

ComfyServer::ComfyServer(const ServerOptions& options, Engine& engine,
                         const fs::path& front_end_root, HttpServerLimits limits)
    : options_(options),
      engine_(engine),
      front_end_root_(front_end_root),
      queue_(options.max_queue, options.max_history) {
  std::error_code ec;
  // The folders the frontend lists at start; missing, each listing would be a 404.
  for (const char* folder : {"workflows", "subgraphs"}) fs::create_directories(user_root() / folder, ec);
  fs::create_directories(user_root(), ec);
  if (ec)
    throw Error("--user-directory: cannot create '" + user_root().string() + "': " +
                ec.message());
  limits.max_body_bytes = options.max_upload_bytes;
  WsHandlers ws;
  ws.accept = [this](const HttpRequest& request) -> std::string {
    if (refuse(request)) return "";
    const std::string wanted = request.query_value("clientId");
    return is_safe_id(wanted) ? wanted : new_uuid();
  };
  ws.opened = [this](const std::string& sid) {
    const json status = {{"type", "status"}, {"data", {{"status", status_json()}, {"sid", sid}}}};
    http_->send(sid, status.dump());
    std::lock_guard<std::mutex> lock(running_mutex_);
    if (running_client_ == sid && !running_node_.empty())
      http_->send(sid, json({{"type", "executing"}, {"data", {{"node", running_node_}}}}).dump());
  };
  ws.message = [this](const std::string& sid, const std::string& text) {
    json message;
    try {
      message = parse_json_bounded(text, "ws message", JsonLimits{});
    } catch (const std::exception& e) {
      spdlog::debug("ws {}: not JSON: {}", sid, e.what());
      return;
    }
    if (message.is_object() && message.value("type", "") == "feature_flags")
      http_->send(sid, json({{"type", "feature_flags"}, {"data", features()}}).dump());
  };
  http_ = std::make_unique<HttpServer>(
      options.listen, options.port, limits,
      [this](const HttpRequest& request) { return handle(request); }, std::move(ws));
  executor_ = std::thread([this] { run_executor(); });
  if (options.ws_keepalive_s > 0) keepalive_ = std::thread([this] { run_keepalive(); });
  http_->start(options.io_threads);
}

ComfyServer::~ComfyServer() { stop(); }

void ComfyServer::stop() {
  queue_.clear_pending();
  engine_.interrupt();
  queue_.close();
  if (executor_.joinable()) executor_.join();
  {
    std::lock_guard<std::mutex> lock(keepalive_mutex_);
    stopping_ = true;
  }
  keepalive_wake_.notify_all();
  if (keepalive_.joinable()) keepalive_.join();
  if (http_) http_->stop();
}

std::optional<HttpResponse> ComfyServer::refuse(const HttpRequest& request) const {
  // A page on another site may POST to 127.0.0.1; its Origin then differs from the Host.
  const std::string origin = request.header("origin");
  const std::string host = request.header("host");
  if (!origin.empty() && !host.empty() && origin != "null" &&
      authority_of_origin(origin) != authority_of_origin(host)) {
    spdlog::warn("refused {} {}: Origin '{}' does not match Host '{}'", request.method,
                 request.path, origin, host);
    return HttpResponse::text(403, "Origin does not match Host");
  }
  if (options_.token.empty()) return std::nullopt;
  const std::string bearer = request.header("authorization");
  if (bearer.rfind("Bearer ", 0) == 0 && same_secret(bearer.substr(7), options_.token))
    return std::nullopt;
  if (same_secret(request.query_value("token"), options_.token)) return std::nullopt;
  if (same_secret(cookie_value(request.header("cookie"), "wan_token"), options_.token))
    return std::nullopt;
  return error_response(401, "unauthorized",
                        "this server needs its token: 'Authorization: Bearer TOKEN' or ?token=");
}

HttpResponse ComfyServer::handle(const HttpRequest& request) {
  if (auto refused = refuse(request)) return *refused;
  Route route{request, {}};
  size_t start = 1;
  const std::string& path = request.path;
  if (path.empty() || path[0] != '/') return HttpResponse::text(400, "bad request target");
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string segment;
    if (!percent_decode(path.substr(start, end - start), false, &segment))
      return HttpResponse::text(400, "malformed percent-escape in the path");
    route.segments.push_back(std::move(segment));
    start = end + 1;
  }
  if (!route.segments.empty() && route.segments.back().empty()) route.segments.pop_back();
  const bool api = !route.segments.empty() && route.segments[0] == "api";
  if (api) route.segments.erase(route.segments.begin());
  HttpResponse response = this->route(route);
  // The page read with ?token=: the frontend's own requests then carry the cookie.
  if (!options_.token.empty() && request.has_query("token") && route.segments.empty())
    response.headers.emplace_back("Set-Cookie", "wan_token=" + options_.token +
                                                    "; Path=/; HttpOnly; SameSite=Strict");
  return response;
}

HttpResponse ComfyServer::route(const Route& r) {
  const std::string& method = r.request.method;
  if (r.is("GET", {"prompt"})) return json_response(status_json());
  if (r.is("POST", {"prompt"})) return post_prompt(r.request);
  if (r.is("GET", {"queue"})) return json_response(queue_.queue_json());
  if (r.is("POST", {"queue"})) return post_queue(r.request);
  if (r.is("GET", {"history"})) return get_history(r.request);
  if (r.is("GET", {"history", "*"})) return json_response(queue_.history_entry_json(r.segments[1]));
  if (r.is("POST", {"history"})) return post_history(r.request);
  if (r.is("POST", {"interrupt"})) return post_interrupt(r.request);
  if (r.is("POST", {"free"})) return post_free(r.request);
  if (r.is("GET", {"object_info"})) return json_response(engine_.object_info());
  if (r.is("GET", {"object_info", "*"})) {
    const json all = engine_.object_info();
    json one = json::object();
    if (all.contains(r.segments[1])) one[r.segments[1]] = all[r.segments[1]];
    return json_response(one);
  }
  if (r.is("GET", {"system_stats"})) return system_stats();
  if (r.is("GET", {"features"})) return json_response(features());
  if (r.is("GET", {"embeddings"})) return json_response(json::array());
  if (r.is("GET", {"extensions"})) return extensions();
  if (r.is("GET", {"models"})) return json_response(engine_.model_folders());
  if (r.is("GET", {"models", "*"})) {
    const auto folders = engine_.model_folders();
    if (std::find(folders.begin(), folders.end(), r.segments[1]) == folders.end())
      return HttpResponse::text(404, "no model folder '" + r.segments[1] + "'");
    return json_response(engine_.model_files(r.segments[1]));
  }
  if (r.is("GET", {"experiment", "models"})) {
    json folders = json::array();
    for (const auto& folder : engine_.model_folders())
      folders.push_back({{"name", folder},
                         {"folders", {(engine_.folders().models / folder).string()}}});
    return json_response(folders);
  }
  if (r.is("GET", {"experiment", "models", "*"})) {
    json files = json::array();
    for (const auto& file : engine_.model_files(r.segments[2]))
      files.push_back({{"name", file}, {"pathIndex", 0}});
    return json_response(files);
  }
  if (r.is("GET", {"i18n"}) || r.is("GET", {"workflow_templates"}))
    return json_response(json::object());
  // No template package is installed: the template browser lists none, a missing user
  // stylesheet is an empty one (ComfyUI answers 404 for both, an error in every page's console).
  if (r.is("GET", {"templates", "index.json"})) return json_response(json::array());
  if (r.is("GET", {"favicon.ico"})) {
    // The frontend package ships no favicon; "no content" keeps the page's console clean.
    if (!front_end_root_.empty() && fs::exists(front_end_root_ / "favicon.ico")) return static_file(r);
    return HttpResponse::empty(204);
  }
  if (r.is("GET", {"user.css"})) {
    HttpResponse css = HttpResponse::text(200, "");
    css.content_type = "text/css; charset=utf-8";
    return css;
  }
  if (r.is("GET", {"view"})) return view(r.request);
  if (r.is("POST", {"upload", "image"})) return upload(r.request, false);
  if (r.is("POST", {"upload", "mask"})) return upload(r.request, true);
  if (r.is("GET", {"memory_report", "*"})) {
    std::string id = r.segments[1];
    if (id.size() > 4 && id.compare(id.size() - 4, 4, ".svg") == 0) id.resize(id.size() - 4);
    const auto svg = queue_.memory_svg(id);
    if (!svg) return HttpResponse::text(404, "no finished prompt '" + id + "'");
    HttpResponse response = HttpResponse::text(200, *svg);
    response.content_type = "image/svg+xml";
    response.headers.emplace_back("Content-Security-Policy",
                                  "default-src 'none'; style-src 'unsafe-inline'");
    return response;
  }
  if (r.starts({"users"}) || r.starts({"settings"}) || r.starts({"userdata"}) ||
      r.starts({"v2", "userdata"}))
    return user_route(r);
  if (r.is("GET", {"ws"})) return HttpResponse::text(400, "/ws needs a WebSocket upgrade");
  if (method == "GET" || method == "HEAD") return static_file(r);
  return HttpResponse::text(405, "405: Method Not Allowed");
}

json ComfyServer::status_json() const {
  return {{"exec_info", {{"queue_remaining", queue_.remaining()}}}};
}

json ComfyServer::features() const {
  return {{"supports_preview_metadata", false}, {"max_upload_size", options_.max_upload_bytes}};
}

void ComfyServer::broadcast_status() {
  last_broadcast_ms_ = steady_ms();
  http_->send("", json({{"type", "status"}, {"data", {{"status", status_json()}, {"sid", nullptr}}}})
                      .dump());
}

void ComfyServer::run_keepalive() {
  const auto period = std::chrono::milliseconds(
      std::max<int64_t>(1, static_cast<int64_t>(options_.ws_keepalive_s * 1000)));
  std::unique_lock<std::mutex> lock(keepalive_mutex_);
  while (!keepalive_wake_.wait_for(lock, period / 4, [this] { return stopping_; })) {
    if (queue_.remaining() == 0 || steady_ms() - last_broadcast_ms_ < period.count()) continue;
    lock.unlock();
    broadcast_status();
    lock.lock();
  }
}

HttpResponse ComfyServer::post_prompt(const HttpRequest& request) {
  HttpResponse bad;
  const auto body = parse_body(request, &bad);
  if (!body) return bad;
  if (!body->is_object() || !body->contains("prompt"))
    return error_response(400, "no_prompt", "No prompt provided");
  PromptJob job;
  if (body->contains("number")) {
    if (!(*body)["number"].is_number())
      return error_response(400, "invalid_prompt", "'number' must be a number");
    job.number = (*body)["number"].get<double>();
  } else {
    job.number = queue_.next_number(body->value("front", false) == true);
  }
  if (body->contains("prompt_id")) {
    const json& id = (*body)["prompt_id"];
    if (!id.is_string() || !is_safe_id(id.get<std::string>()))
      return error_response(400, "invalid_prompt",
                            "'prompt_id' must be printable ASCII of at most 128 characters");
    job.prompt_id = id.get<std::string>();
  } else {
    job.prompt_id = new_uuid();
  }
  const PromptCheck check = engine_.check((*body)["prompt"], &job.prompt);
  if (!check.ok) {
    spdlog::warn("invalid prompt: {}", check.error.value("message", ""));
    return json_response({{"error", check.error}, {"node_errors", check.node_errors}}, 400);
  }
  job.outputs = check.outputs;
  job.extra_data = body->contains("extra_data") && (*body)["extra_data"].is_object()
                       ? (*body)["extra_data"]
                       : json::object();
  if (body->contains("client_id") && (*body)["client_id"].is_string()) {
    job.client_id = (*body)["client_id"].get<std::string>();
    job.extra_data["client_id"] = job.client_id;
  }
  for (const char* key : kSensitiveExtraData) job.extra_data.erase(key);
  try {
    engine_.embed(job, request.body);
  } catch (const std::exception& e) {
    return error_response(400, "invalid_prompt", e.what());
  }
  const std::string id = job.prompt_id;
  const double number = job.number;
  if (!queue_.push(std::move(job)))
    return error_response(503, "queue_full",
                          "the queue holds " + std::to_string(options_.max_queue) +
                              " prompts already (--max-queue); try again later");
  spdlog::info("queued prompt {}", id);
  broadcast_status();
  return json_response(
      {{"prompt_id", id}, {"number", number_json(number)}, {"node_errors", json::object()}});
}

HttpResponse ComfyServer::post_queue(const HttpRequest& request) {
  HttpResponse bad;
  const auto body = parse_body(request, &bad);
  if (!body) return bad;
  if (!body->is_object()) return error_response(400, "invalid_json", "expected a JSON object");
  if (body->value("clear", false) == true) queue_.clear_pending();
  if (body->contains("delete")) queue_.remove_pending(string_list((*body)["delete"]));
  broadcast_status();
  return HttpResponse::empty(200);
}

HttpResponse ComfyServer::get_history(const HttpRequest& request) {
  auto count = [&](const std::string& key, std::optional<size_t>* out) {
    if (!request.has_query(key)) return true;
    const std::string text = request.query_value(key);
    if (text.empty() || text.size() > 9 ||
        text.find_first_not_of("0123456789") != std::string::npos)
      return false;
    *out = static_cast<size_t>(std::stoul(text));
    return true;
  };
  std::optional<size_t> max_items, offset;
  if (!count("max_items", &max_items) || !count("offset", &offset))
    return HttpResponse::text(400, "max_items and offset must be whole numbers");
  return json_response(queue_.history_json(max_items, offset));
}

HttpResponse ComfyServer::post_history(const HttpRequest& request) {
  HttpResponse bad;
  const auto body = parse_body(request, &bad);
  if (!body) return bad;
  if (!body->is_object()) return error_response(400, "invalid_json", "expected a JSON object");
  if (body->value("clear", false) == true) queue_.clear_history();
  if (body->contains("delete")) queue_.remove_history(string_list((*body)["delete"]));
  return HttpResponse::empty(200);
}

HttpResponse ComfyServer::post_interrupt(const HttpRequest& request) {
  // An empty or non-JSON body is a global interrupt, as in ComfyUI.
  std::string prompt_id;
  try {
    const json body = parse_json_bounded(request.body, "request body", JsonLimits{});
    if (body.is_object() && body.contains("prompt_id") && body["prompt_id"].is_string())
      prompt_id = body["prompt_id"].get<std::string>();
  } catch (const std::exception&) {
  }
  if (prompt_id.empty() || queue_.is_running(prompt_id)) {
    spdlog::info("interrupt{}", prompt_id.empty() ? "" : " prompt " + prompt_id);
    engine_.interrupt();
  }
  return HttpResponse::empty(200);
}

HttpResponse ComfyServer::post_free(const HttpRequest& request) {
  HttpResponse bad;
  const auto body = parse_body(request, &bad);
  if (!body) return bad;
  // The cache belongs to the executor thread: it is dropped before the next prompt runs.
  if (body->is_object() &&
      (body->value("unload_models", false) == true || body->value("free_memory", false) == true))
    free_requested_ = true;
  return HttpResponse::empty(200);
}

HttpResponse ComfyServer::system_stats() const {
  struct sysinfo info = {};
  sysinfo(&info);
  const int64_t ram_total = static_cast<int64_t>(info.totalram) * info.mem_unit;
  const int64_t ram_free =
      static_cast<int64_t>(info.freeram + info.bufferram) * static_cast<int64_t>(info.mem_unit);
  json devices = engine_.devices_json();
  // wan-serve has none of ComfyUI's API nodes; the frontend reads this flag and then contacts
  // no outside service (api.comfy.org release checks).
  json argv = json::array({"wan-serve", "--disable-api-nodes"});
  return json_response(
      {{"system",
        {{"os", "posix"},
         {"ram_total", ram_total},
         {"ram_free", ram_free},
         {"comfyui_version", kServerVersion},
         {"wan_native_version", kServerVersion},
         {"required_frontend_version", kFrontendVersion},
         {"installed_templates_version", nullptr},
         {"required_templates_version", nullptr},
         {"python_version", ""},
         {"pytorch_version", engine_.torch_version()},
         {"embedded_python", false},
         {"argv", argv}}},
       {"devices", devices}});
}

void ComfyServer::emit(const std::string& client_id, const std::string& event, const json& data) {
  const std::string text =
      json({{"type", event}, {"data", data}}).dump(-1, ' ', false, json::error_handler_t::replace);
  if (!client_id.empty()) return http_->send(client_id, text);
  // No client: ComfyUI still broadcasts what send_sync sends with sid None.
  if (event == "executing" || event == "progress" || event == "executed" ||
      event == "execution_interrupted")
    http_->send("", text);
}

void ComfyServer::run_executor() {
  while (auto job = queue_.pop_blocking()) {
    if (free_requested_.exchange(false)) engine_.free_cache();
    broadcast_status();
    {
      std::lock_guard<std::mutex> lock(running_mutex_);
      running_client_ = job->client_id;
      running_node_.clear();
    }
    // The last message goes out once /history has the entry, so a client that fetches the
    // history when it sees execution_success finds it.
    std::vector<std::pair<std::string, json>> last;
    // Previews go where ComfyUI sends them: to the prompt's client, else to every socket.
    Engine::EmitPreview preview;
    if (options_.preview_method != "none")
      preview = [&](const std::string& message) { http_->send(job->client_id, message, true); };
    const PromptOutcome outcome = engine_.run(*job, [&](const std::string& event, const json& data) {
      if (event == "execution_success" || event == "execution_error" ||
          event == "execution_interrupted") {
        last.emplace_back(event, data);
        return;
      }
      if (event == "executing") {
        std::lock_guard<std::mutex> lock(running_mutex_);
        running_node_ = data.value("node", "");
      }
      emit(job->client_id, event, data);
    }, preview);
    queue_.finish(*job, outcome);
    for (const auto& [event, data] : last) emit(job->client_id, event, data);
    broadcast_status();
    {
      std::lock_guard<std::mutex> lock(running_mutex_);
      running_client_.clear();
      running_node_.clear();
    }
    if (!job->client_id.empty())
      emit(job->client_id, "executing", {{"node", nullptr}, {"prompt_id", job->prompt_id}});
    spdlog::info("prompt {}: {}", job->prompt_id, outcome.status.value("status_str", ""));
    if (free_requested_.exchange(false)) engine_.free_cache();
#ifdef __GLIBC__
    // A prompt's work (frames, encoder buffers, parsed requests on the I/O threads) is freed by
    // now; glibc keeps such pages in its arenas unless asked, and the server's RSS would then
    // climb with every prompt served instead of following what it holds.
    malloc_trim(0);
#endif
  }
}

}  // namespace wan::server
