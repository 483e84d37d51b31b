// wan-serve: ComfyUI's HTTP and WebSocket API (server.py, execution.py, app/user_manager.py,
// app/app_settings.py) over one Engine. One queue, one executor thread; every path also answers
// under /api/. Routes are split by concern: comfy_server.cpp (prompts, queue, history, schemas,
// the socket), file_routes.cpp (/view, uploads, the frontend's files), user_routes.cpp (users,
// settings, user data).
#pragma once
#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <condition_variable>
#include <thread>
#include <vector>

#include "server/engine.h"
#include "server/http_server.h"
#include "server/prompt_queue.h"
#include "server/server_options.h"

namespace wan::server {

// A route's path, split at '/' and percent-decoded per segment, without a leading "api".
struct Route {
  const HttpRequest& request;
  std::vector<std::string> segments;
  bool is(const std::string& method, std::initializer_list<const char*> path) const;
  bool starts(std::initializer_list<const char*> path) const;
};

class ComfyServer {
 public:
  // Binds (throws wan::Error when it cannot) and starts the executor thread and the I/O
  // threads. `front_end_root` empty: the API only.
  ComfyServer(const ServerOptions& options, Engine& engine,
              const std::filesystem::path& front_end_root,
              HttpServerLimits limits = HttpServerLimits{});
  ~ComfyServer();
  ComfyServer(const ComfyServer&) = delete;
  ComfyServer& operator=(const ComfyServer&) = delete;

  uint16_t port() const { return http_->port(); }
  // Interrupts the running prompt, drops the pending ones, stops serving and joins the threads.
  void stop();

 private:
  HttpResponse handle(const HttpRequest& request);
  HttpResponse route(const Route& route);
  // nullopt when the request may go on; else the 401/403 answer.
  std::optional<HttpResponse> refuse(const HttpRequest& request) const;

  // comfy_server.cpp
  HttpResponse post_prompt(const HttpRequest& request);
  HttpResponse post_queue(const HttpRequest& request);
  HttpResponse post_history(const HttpRequest& request);
  HttpResponse get_history(const HttpRequest& request);
  HttpResponse post_interrupt(const HttpRequest& request);
  HttpResponse post_free(const HttpRequest& request);
  HttpResponse system_stats() const;
  nlohmann::json features() const;
  nlohmann::json status_json() const;
  void run_executor();
  // ComfyUI's delivery: to the prompt's client, else (for some events) to every socket.
  void emit(const std::string& client_id, const std::string& event, const nlohmann::json& data);
  void broadcast_status();
  // The --ws-keepalive thread: a status broadcast whenever the queue is busy and none went out
  // for that long.
  void run_keepalive();

  // file_routes.cpp
  HttpResponse view(const HttpRequest& request) const;
  HttpResponse upload(const HttpRequest& request, bool mask) const;
  HttpResponse extensions() const;
  HttpResponse static_file(const Route& route) const;

  // user_routes.cpp
  HttpResponse user_route(const Route& route);
  std::filesystem::path user_root() const;

  ServerOptions options_;
  Engine& engine_;
  std::filesystem::path front_end_root_;
  PromptQueue queue_;
  std::unique_ptr<HttpServer> http_;
  std::thread executor_;
  std::thread keepalive_;
  std::mutex keepalive_mutex_;
  std::condition_variable keepalive_wake_;
  bool stopping_ = false;  // under keepalive_mutex_
  std::atomic<int64_t> last_broadcast_ms_{0};  // steady clock
  std::atomic<bool> free_requested_{false};
  std::mutex user_mutex_;  // serialises settings read-modify-write
  mutable std::mutex running_mutex_;
  std::string running_client_, running_node_;  // for a client that reconnects mid-prompt
};

// {"error": {"type", "message", "details", "extra_info"}, "node_errors": {}} with `status`.
HttpResponse error_response(int status, const std::string& type, const std::string& message);
HttpResponse json_response(const nlohmann::json& value, int status = 200);
// The body parsed with the bounded parser; nullopt (and `error` set to the 400 answer) when it
// is not JSON.
std::optional<nlohmann::json> parse_body(const HttpRequest& request, HttpResponse* error);

}  // namespace wan::server
