// The HTTP and WebSocket transport of wan-serve, on Boost.Beast (the only file that includes it
// is http_server.cpp). It parses requests, enforces the size and time limits, upgrades /ws and
// keeps one send queue per socket; what a request means is the handler's business (api_routes).
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace wan::server {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/api/view?filename=a%20b.png"
  std::string path;    // target before '?', still percent-encoded (route segments decode)
  std::map<std::string, std::string> query;    // decoded; the last value of a repeated key
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& lower_name) const;
  std::string query_value(const std::string& key) const;
  bool has_query(const std::string& key) const { return query.count(key) > 0; }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::filesystem::path file;  // when set, the body is this file's bytes (body is ignored)
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse json_text(int status, std::string body);
  static HttpResponse text(int status, std::string body);
  static HttpResponse empty(int status);
};

struct HttpServerLimits {
  size_t max_body_bytes = size_t(100) << 20;   // ComfyUI's --max-upload-size default, 100 MB
  size_t max_header_bytes = size_t(64) << 10;  // request line and headers
  size_t max_ws_message_bytes = size_t(1) << 20;
  size_t max_ws_queued_bytes = size_t(64) << 20;  // a client that reads slower is dropped
  size_t max_connections = 64;
  double request_timeout_s = 30;  // to read one request (headers and body) or write a response
  double ws_idle_timeout_s = 60;  // a socket that answers no ping for this long is closed
};

// What a WebSocket client sees of the server.
struct WsHandlers {
  // A client asked for /ws with these query parameters and headers. Returns the session id it
  // gets ("clientId" when given, else a new one), or "" to refuse the upgrade (403).
  std::function<std::string(const HttpRequest& request)> accept;
  // Runs once the socket is open (send the first status here).
  std::function<void(const std::string& sid)> opened;
  // A text message from the client.
  std::function<void(const std::string& sid, const std::string& text)> message;
  std::function<void(const std::string& sid)> closed;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest& request)>;

  // Binds `address`:`port` (0 picks a free port). Throws wan::Error naming the address when it
  // cannot bind. Nothing is served until start().
  HttpServer(const std::string& address, uint16_t port, HttpServerLimits limits,
             Handler handler, WsHandlers ws);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Serves on `threads` I/O threads until stop().
  void start(int threads);
  // Stops accepting, closes every connection and joins the threads.
  void stop();

  // Queues a text message (or, `binary`, a binary one) for session `sid` (no-op when it is not
  // connected); empty `sid` sends to every open socket. Thread-safe.
  void send(const std::string& sid, const std::string& text, bool binary = false);
  // Session ids with an open socket.
  std::vector<std::string> sessions() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

// RFC 3986 percent-decoding ('+' is a space when `plus_is_space`, as in a query string). Returns
// false for a malformed escape.
bool percent_decode(const std::string& text, bool plus_is_space, std::string* out);

}  // namespace wan::server
