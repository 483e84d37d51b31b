#include "python_log_sink.h"

#include <pybind11/pybind11.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <string>

namespace py = pybind11;

namespace wan::python {
namespace {

std::atomic<bool> g_python_alive{false};

int python_level(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return 5;
    case spdlog::level::debug:
      return 10;
    case spdlog::level::info:
      return 20;
    case spdlog::level::warn:
      return 30;
    case spdlog::level::err:
      return 40;
    case spdlog::level::critical:
      return 50;
    default:
      return 0;
  }
}

spdlog::level::level_enum native_level(int level) {
  if (level <= 5) return spdlog::level::trace;
  if (level <= 10) return spdlog::level::debug;
  if (level <= 20) return spdlog::level::info;
  if (level <= 30) return spdlog::level::warn;
  if (level <= 40) return spdlog::level::err;
  return spdlog::level::critical;
}

// The GIL serialises every call, formatter included, so the sink needs no mutex of its own; a
// mutex taken before the GIL could deadlock against a thread that holds the GIL and logs.
class PythonLogSink : public spdlog::sinks::sink {
 public:
  void log(const spdlog::details::log_msg& msg) override {
    if (!g_python_alive.load() || !Py_IsInitialized()) return;
    py::gil_scoped_acquire gil;
    try {
      spdlog::memory_buf_t formatted;
      formatter_->format(msg, formatted);
      std::string text(formatted.data(), formatted.size());
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      py::module_::import("logging")
          .attr("getLogger")("wan_native")
          .attr("log")(python_level(msg.level), text);
    } catch (py::error_already_set& e) {
      e.discard_as_unraisable("wan_native log sink");
    }
  }
  void flush() override {}
  void set_pattern(const std::string& pattern) override {
    formatter_ = std::make_unique<spdlog::pattern_formatter>(pattern);
  }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    formatter_ = std::move(formatter);
  }

 private:
  // The Python logger adds time and level; the sink passes the message only.
  std::unique_ptr<spdlog::formatter> formatter_ = std::make_unique<spdlog::pattern_formatter>("%v");
};

}  // namespace

void install_python_log_sink() {
  g_python_alive = true;
  auto logger = std::make_shared<spdlog::logger>("wan_native", std::make_shared<PythonLogSink>());
  spdlog::set_default_logger(logger);
  const int level = py::module_::import("logging")
                        .attr("getLogger")("wan_native")
                        .attr("getEffectiveLevel")()
                        .cast<int>();
  set_native_log_level(level);
}

void set_native_log_level(int level) { spdlog::set_level(native_level(level)); }

void uninstall_python_log_sink() {
  g_python_alive = false;
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("wan", std::make_shared<spdlog::sinks::stderr_sink_mt>()));
}

}  // namespace wan::python
