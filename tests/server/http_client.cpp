#include "server/http_client.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>

namespace wan::server::testing {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using nlohmann::json;

namespace {

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(s));
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

json HttpReply::json() const {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

std::string HttpReply::header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

HttpReply http_request(uint16_t port, const std::string& method, const std::string& target,
                       const std::string& body, const std::map<std::string, std::string>& headers,
                       double timeout_s) {
  HttpReply reply;
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  stream.socket().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return reply;
  http::request<http::string_body> request(http::string_to_verb(method), target, 11);
  request.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  for (const auto& [name, value] : headers) request.set(name, value);
  request.body() = body;
  request.prepare_payload();
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(size_t(1) << 30);
  stream.expires_after(seconds(timeout_s));
  bool done = false;
  http::async_write(stream, request, [&](beast::error_code write_ec, size_t) {
    if (write_ec) {
      done = true;
      return;
    }
    http::async_read(stream, buffer, parser, [&](beast::error_code read_ec, size_t) {
      done = true;
      if (read_ec) return;
      reply.status = static_cast<int>(parser.get().result_int());
      for (const auto& field : parser.get())
        reply.headers[lower(std::string(field.name_string()))] = std::string(field.value());
      reply.body = parser.get().body();
    });
  });
  ioc.run();
  (void)done;
  return reply;
}

struct WsClient::Impl {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buffer;
  bool connected = false;
  std::vector<std::string> binary;
};

WsClient::WsClient(uint16_t port, const std::string& target,
                   const std::map<std::string, std::string>& headers)
    : impl_(std::make_unique<Impl>()) {
  beast::error_code ec;
  auto& lowest = beast::get_lowest_layer(impl_->ws);
  lowest.socket().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return;
  impl_->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [name, value] : headers) req.set(name, value);
  }));
  lowest.expires_after(std::chrono::seconds(30));
  impl_->ws.handshake("127.0.0.1:" + std::to_string(port), target, ec);
  lowest.expires_never();
  if (ec) return;
  impl_->connected = true;
}

WsClient::~WsClient() {
  if (!impl_->connected) return;
  beast::error_code ignored;
  beast::get_lowest_layer(impl_->ws).socket().close(ignored);
}

bool WsClient::connected() const { return impl_->connected; }

std::optional<json> WsClient::next(double timeout_s) {
  if (!impl_->connected) return std::nullopt;
  for (;;) {
    bool done = false;
    beast::error_code result;
    impl_->buffer.consume(impl_->buffer.size());
    impl_->ws.async_read(impl_->buffer, [&](beast::error_code ec, size_t) {
      done = true;
      result = ec;
    });
    impl_->ioc.restart();
    impl_->ioc.run_for(seconds(timeout_s));
    if (!done) {
      // Timed out: the socket is closed, since a half-read frame cannot be resumed.
      beast::error_code ignored;
      beast::get_lowest_layer(impl_->ws).socket().close(ignored);
      impl_->ioc.restart();
      impl_->ioc.run();
      impl_->connected = false;
      return std::nullopt;
    }
    if (result) {
      impl_->connected = false;
      return std::nullopt;
    }
    if (!impl_->ws.got_text()) {
      impl_->binary.push_back(beast::buffers_to_string(impl_->buffer.data()));
      continue;
    }
    return json::parse(beast::buffers_to_string(impl_->buffer.data()), nullptr, false);
  }
}

const std::vector<std::string>& WsClient::binary_messages() const { return impl_->binary; }

std::optional<json> WsClient::wait_for(const std::string& type, std::vector<json>* seen,
                                       double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    const double left =
        std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    auto message = next(std::max(left, 0.01));
    if (!message) return std::nullopt;
    if (seen) seen->push_back(*message);
    if (message->is_object() && message->value("type", "") == type) return message;
  }
  return std::nullopt;
}

void WsClient::send_text(const std::string& text) {
  beast::error_code ec;
  impl_->ws.text(true);
  impl_->ws.write(net::buffer(text), ec);
}

RawSocket::RawSocket(uint16_t port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

RawSocket::~RawSocket() {
  if (fd_ >= 0) close(fd_);
}

bool RawSocket::write(const std::string& bytes) {
  if (fd_ < 0) return false;
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string RawSocket::read_until_closed(double timeout_s, bool* closed) {
  std::string got;
  *closed = false;
  const auto deadline = std::chrono::steady_clock::now() + seconds(timeout_s);
  char buffer[4096];
  while (fd_ >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) break;
    pollfd waiting = {fd_, POLLIN, 0};
    if (poll(&waiting, 1, static_cast<int>(left)) <= 0) break;
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    got.append(buffer, static_cast<size_t>(n));
  }
  return got;
}

Form multipart_form(const std::vector<std::pair<std::string, std::string>>& fields,
                    const std::string& file_field, const std::string& filename,
                    const std::string& file_bytes) {
  const std::string boundary = "----wanservetestboundary7MA4YWxk";
  Form form;
  form.content_type = "multipart/form-data; boundary=" + boundary;
  for (const auto& [name, value] : fields)
    form.body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name +
                 "\"\r\n\r\n" + value + "\r\n";
  if (!file_field.empty())
    form.body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + file_field +
                 "\"; filename=\"" + filename + "\"\r\nContent-Type: image/png\r\n\r\n" +
                 file_bytes + "\r\n";
  form.body += "--" + boundary + "--\r\n";
  return form;
}

}  // namespace wan::server::testing
