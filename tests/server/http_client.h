// A small HTTP, WebSocket and raw-socket client for the wan-serve tests, on 127.0.0.1. Beast is
// only in http_client.cpp, so the test files compile without it.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace wan::server::testing {

struct HttpReply {
  int status = 0;  // 0: no answer (the connection closed or timed out)
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json json() const;  // null when the body is not JSON
  std::string header(const std::string& lower_name) const;
};

// One request on a fresh connection; waits at most `timeout_s` for the answer.
HttpReply http_request(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {},
                       double timeout_s = 30);

class WsClient {
 public:
  // Connects to ws://127.0.0.1:port`target` ("/ws?clientId=abc"); connected() says whether the
  // upgrade succeeded.
  WsClient(uint16_t port, const std::string& target,
           const std::map<std::string, std::string>& headers = {});
  ~WsClient();
  bool connected() const;
  // The next text message as JSON, or nullopt after `timeout_s` or when the socket closed.
  std::optional<nlohmann::json> next(double timeout_s = 30);
  // Messages until one of `type` (returned, also appended to `seen`); nullopt on timeout.
  std::optional<nlohmann::json> wait_for(const std::string& type, std::vector<nlohmann::json>* seen,
                                         double timeout_s = 60);
  void send_text(const std::string& text);
  // The binary messages next() and wait_for() passed over, in arrival order.
  const std::vector<std::string>& binary_messages() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A plain TCP connection, for bytes no well-behaved client sends.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port);
  ~RawSocket();
  bool write(const std::string& bytes);
  // What arrives within `timeout_s`, until the peer closes; `closed` says whether it did.
  std::string read_until_closed(double timeout_s, bool* closed);

 private:
  int fd_ = -1;
};

// A multipart/form-data body and its Content-Type.
struct Form {
  std::string content_type, body;
};
Form multipart_form(const std::vector<std::pair<std::string, std::string>>& fields,
                    const std::string& file_field, const std::string& filename,
                    const std::string& file_bytes);

}  // namespace wan::server::testing
