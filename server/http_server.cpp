#include "server/http_server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <chrono>
#include <deque>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "core/error.h"

namespace wan::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string HttpRequest::header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

std::string HttpRequest::query_value(const std::string& key) const {
  const auto it = query.find(key);
  return it == query.end() ? "" : it->second;
}

HttpResponse HttpResponse::json_text(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

HttpResponse HttpResponse::text(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "text/plain; charset=utf-8";
  response.body = std::move(body);
  return response;
}

HttpResponse HttpResponse::empty(int status) { return text(status, ""); }

bool percent_decode(const std::string& text, bool plus_is_space, std::string* out) {
  out->clear();
  out->reserve(text.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return false;
      const int high = hex(text[i + 1]), low = hex(text[i + 2]);
      if (high < 0 || low < 0) return false;
      out->push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

namespace {

class WsSession;

// What every session shares with the server; it outlives the io_context's pending handlers, so
// a session being destroyed with the io_context never touches freed memory.
struct Shared {
  HttpServerLimits limits;
  HttpServer::Handler handler;
  WsHandlers ws;
  std::atomic<size_t> connections{0};
  mutable std::mutex mutex;
  std::map<std::string, std::weak_ptr<WsSession>> sockets;
};

// Counts an open connection for as long as it lives.
class ConnectionCount {
 public:
  explicit ConnectionCount(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {
    ++shared_->connections;
  }
  ~ConnectionCount() { --shared_->connections; }
  ConnectionCount(const ConnectionCount&) = delete;
  ConnectionCount& operator=(const ConnectionCount&) = delete;
  Shared& shared() const { return *shared_; }
  const std::shared_ptr<Shared>& pointer() const { return shared_; }

 private:
  std::shared_ptr<Shared> shared_;
};

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(s));
}

// The request as the handler sees it; false when the query string has a malformed escape.
bool to_request(const http::request<http::string_body>& in, HttpRequest* out) {
  out->method = std::string(in.method_string());
  out->target = std::string(in.target());
  const size_t question = out->target.find('?');
  out->path = out->target.substr(0, question);
  if (question != std::string::npos) {
    const std::string query = out->target.substr(question + 1);
    size_t start = 0;
    while (start <= query.size()) {
      size_t end = query.find('&', start);
      if (end == std::string::npos) end = query.size();
      const std::string pair = query.substr(start, end - start);
      if (!pair.empty()) {
        const size_t eq = pair.find('=');
        std::string key, value;
        if (!percent_decode(pair.substr(0, eq), true, &key)) return false;
        if (eq != std::string::npos && !percent_decode(pair.substr(eq + 1), true, &value))
          return false;
        out->query[key] = value;
      }
      start = end + 1;
    }
  }
  for (const auto& field : in) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto& value = out->headers[name];
    if (!value.empty()) value += ", ";
    value += std::string(field.value());
  }
  out->body = in.body();
  return true;
}

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket socket, std::shared_ptr<Shared> shared, std::string sid)
      : ws_(std::move(socket)), count_(std::move(shared)), sid_(std::move(sid)) {}

  ~WsSession() {
    Shared& shared = count_.shared();
    std::lock_guard<std::mutex> lock(shared.mutex);
    const auto it = shared.sockets.find(sid_);
    if (it != shared.sockets.end() && it->second.expired()) shared.sockets.erase(it);
  }

  // `handshake`: the upgrade request's bytes and whatever the client sent after it (frames that
  // arrived with the request must not be lost), parsed again by the WebSocket stream.
  void run(std::string handshake) {
    handshake_ = std::move(handshake);
    const auto& limits = count_.shared().limits;
    websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = seconds(limits.request_timeout_s);
    timeouts.idle_timeout = seconds(limits.ws_idle_timeout_s);
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.read_message_max(limits.max_ws_message_bytes);
    beast::get_lowest_layer(ws_).expires_never();  // the stream's own timeouts apply
    ws_.async_accept(net::buffer(handshake_),
                     beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

  // Called from any thread.
  void send(std::shared_ptr<const std::string> text, bool binary) {
    net::post(ws_.get_executor(), [self = shared_from_this(), text = std::move(text), binary] {
      self->queue({text, binary});
    });
  }

  const std::string& sid() const { return sid_; }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    Shared& shared = count_.shared();
    {
      // A clientId that reconnects takes its messages over (ComfyUI's behaviour).
      std::lock_guard<std::mutex> lock(shared.mutex);
      shared.sockets[sid_] = weak_from_this();
    }
    open_ = true;
    if (shared.ws.opened) shared.ws.opened(sid_);
    do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    Shared& shared = count_.shared();
    if (ec) {
      // A broken frame, an oversized message, a close or a timeout: the socket is done.
      if (ec != websocket::error::closed && ec != net::error::operation_aborted)
        spdlog::debug("ws {}: closed: {}", sid_, ec.message());
      close();
      return;
    }
    if (ws_.got_text() && shared.ws.message) {
      try {
        shared.ws.message(sid_, beast::buffers_to_string(buffer_.data()));
      } catch (const std::exception& e) {
        spdlog::warn("ws {}: message handler failed: {}", sid_, e.what());
      }
    }
    buffer_.consume(buffer_.size());
    do_read();
  }

  struct Outgoing {
    std::shared_ptr<const std::string> data;
    bool binary = false;
  };

  void queue(const Outgoing& message) {
    if (closed_) return;
    const size_t limit = count_.shared().limits.max_ws_queued_bytes;
    if (queued_bytes_ + message.data->size() > limit) {
      spdlog::warn("ws {}: the client reads too slowly ({} bytes waiting); closing it",
                   sid_, queued_bytes_);
      close();
      return;
    }
    queued_bytes_ += message.data->size();
    queue_.push_back(message);
    if (open_ && queue_.size() == 1) do_write();
  }

  void do_write() {
    ws_.binary(queue_.front().binary);
    ws_.async_write(net::buffer(*queue_.front().data),
                    beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (ec) {
      close();
      return;
    }
    queued_bytes_ -= queue_.front().data->size();
    queue_.pop_front();
    if (!queue_.empty() && !closed_) do_write();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    queue_.clear();
    queued_bytes_ = 0;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).socket().close(ignored);
    Shared& shared = count_.shared();
    bool current = false;
    {
      std::lock_guard<std::mutex> lock(shared.mutex);
      const auto it = shared.sockets.find(sid_);
      if (it != shared.sockets.end() && it->second.lock().get() == this) {
        shared.sockets.erase(it);
        current = true;
      }
    }
    if (current && open_ && shared.ws.closed) shared.ws.closed(sid_);
  }

  websocket::stream<beast::tcp_stream> ws_;
  ConnectionCount count_;
  std::string sid_;
  std::string handshake_;
  beast::flat_buffer buffer_;
  std::deque<Outgoing> queue_;
  size_t queued_bytes_ = 0;
  bool open_ = false, closed_ = false;
};

bool is_ws_path(const std::string& path) { return path == "/ws" || path == "/api/ws"; }

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)), count_(std::move(shared)) {}

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
  }

 private:
  void do_read() {
    const auto& limits = count_.shared().limits;
    parser_.emplace();
    parser_->body_limit(limits.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(limits.max_header_bytes));
    stream_.expires_after(seconds(limits.request_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof)
      return close();
    if (ec == http::error::body_limit)
      return reply_error(413, "request body larger than " +
                                  std::to_string(count_.shared().limits.max_body_bytes) +
                                  " bytes");
    if (ec == http::error::header_limit) return reply_error(431, "request headers too large");
    if (ec) return reply_error(400, "malformed HTTP request: " + ec.message());

    auto& in = parser_->get();
    HttpRequest request;
    if (!to_request(in, &request)) return reply_error(400, "malformed percent-escape in query");
    Shared& shared = count_.shared();
    if (websocket::is_upgrade(in)) {
      if (!is_ws_path(request.path)) return reply_error(404, "no WebSocket at " + request.path);
      std::string sid;
      try {
        if (shared.ws.accept) sid = shared.ws.accept(request);
      } catch (const std::exception& e) {
        spdlog::warn("ws upgrade refused: {}", e.what());
      }
      if (sid.empty()) return reply_error(403, "WebSocket refused");
      std::ostringstream handshake;
      handshake << in;
      std::make_shared<WsSession>(stream_.release_socket(), count_.pointer(), sid)
          ->run(handshake.str() + beast::buffers_to_string(buffer_.data()));
      return;
    }
    HttpResponse response;
    try {
      response = shared.handler(request);
    } catch (const std::exception& e) {
      spdlog::error("{} {}: internal error: {}", request.method, request.path, e.what());
      response = HttpResponse::text(500, "internal error");
    }
    write(response, in.version(), in.keep_alive(), in.method() == http::verb::head);
  }

  void reply_error(int status, const std::string& message) {
    HttpResponse response = HttpResponse::text(status, message);
    write(response, 11, /*keep_alive=*/false, /*head=*/false);
  }

  template <class Body>
  void fill_headers(http::response<Body>& out, const HttpResponse& response, bool keep_alive) {
    out.set(http::field::server, "wan-serve");
    out.set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) out.set(name, value);
    out.keep_alive(keep_alive);
  }

  void write(const HttpResponse& response, unsigned version, bool keep_alive, bool head) {
    const auto status = static_cast<http::status>(response.status);
    if (!response.file.empty() && !head) {
      beast::error_code ec;
      http::file_body::value_type body;
      body.open(response.file.c_str(), beast::file_mode::scan, ec);
      if (ec) {
        HttpResponse missing = HttpResponse::text(404, "not found");
        return write(missing, version, keep_alive, head);
      }
      auto out = std::make_shared<http::response<http::file_body>>(
          std::piecewise_construct, std::make_tuple(std::move(body)),
          std::make_tuple(status, version));
      fill_headers(*out, response, keep_alive);
      out->prepare_payload();
      return send(std::move(out));
    }
    auto out = std::make_shared<http::response<http::string_body>>(status, version);
    fill_headers(*out, response, keep_alive);
    out->body() = head ? std::string() : response.body;
    out->prepare_payload();
    send(std::move(out));
  }

  template <class Message>
  void send(std::shared_ptr<Message> message) {
    stream_.expires_after(seconds(count_.shared().limits.request_timeout_s));
    const bool close_after = message->need_eof();
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message, close_after](beast::error_code ec,
                                                                        size_t) {
                        if (ec || close_after) return self->close();
                        self->do_read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  ConnectionCount count_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

class HttpServer::Impl {
 public:
  // Declared first, destroyed last: its pending handlers (sessions) go after everything else.
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};

  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
        spdlog::warn("accept failed: {}", ec.message());
      } else if (shared->connections.load() >= shared->limits.max_connections) {
        // Over the limit: closed at once rather than queued, so the limit bounds memory.
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        std::make_shared<HttpSession>(std::move(socket), shared)->run();
      }
      do_accept();
    });
  }
};

HttpServer::HttpServer(const std::string& address, uint16_t port, HttpServerLimits limits,
                       Handler handler, WsHandlers ws)
    : impl_(std::make_shared<Impl>()) {
  impl_->shared->limits = limits;
  impl_->shared->handler = std::move(handler);
  impl_->shared->ws = std::move(ws);
  beast::error_code ec;
  const auto ip = net::ip::make_address(address, ec);
  if (ec) throw Error("--listen '" + address + "': not an IP address (" + ec.message() + ")");
  const tcp::endpoint endpoint(ip, port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw Error("cannot listen on " + address + ":" + std::to_string(port) + ": " +
                ec.message());
}

HttpServer::~HttpServer() { stop(); }

uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

void HttpServer::start(int threads) {
  impl_->do_accept();
  for (int i = 0; i < std::max(1, threads); ++i)
    impl_->threads.emplace_back([impl = impl_.get()] { impl->ioc.run(); });
}

void HttpServer::stop() {
  if (impl_->stopped.exchange(true)) return;
  net::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
  });
  impl_->ioc.stop();
  for (auto& thread : impl_->threads)
    if (thread.joinable()) thread.join();
}

void HttpServer::send(const std::string& sid, const std::string& text, bool binary) {
  auto message = std::make_shared<const std::string>(text);
  std::vector<std::shared_ptr<WsSession>> targets;
  {
    std::lock_guard<std::mutex> lock(impl_->shared->mutex);
    if (sid.empty()) {
      for (const auto& [id, weak] : impl_->shared->sockets)
        if (auto session = weak.lock()) targets.push_back(std::move(session));
    } else {
      const auto it = impl_->shared->sockets.find(sid);
      if (it != impl_->shared->sockets.end())
        if (auto session = it->second.lock()) targets.push_back(std::move(session));
    }
  }
  for (const auto& session : targets) session->send(message, binary);
}

std::vector<std::string> HttpServer::sessions() const {
  std::vector<std::string> ids;
  std::lock_guard<std::mutex> lock(impl_->shared->mutex);
  for (const auto& [id, weak] : impl_->shared->sockets)
    if (!weak.expired()) ids.push_back(id);
  return ids;
}

}  // namespace wan::server
