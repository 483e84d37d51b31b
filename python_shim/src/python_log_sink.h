// Routes spdlog (the default logger every native component logs through) to Python's `logging`,
// so ComfyUI's console and log files show native messages under the logger "wan_native".
#pragma once

namespace wan::python {

// Replaces spdlog's default logger with one whose sink calls
// logging.getLogger("wan_native").log(level, message), taking the GIL for each message. Safe to
// call again (refreshes the level from the Python logger's effective level).
void install_python_log_sink();

// Sets spdlog's level from a Python logging level (10 debug, 20 info, 30 warning, ...), so
// messages the Python logger would drop are not even formatted.
void set_native_log_level(int python_level);

// Puts a plain stderr logger back; called at interpreter exit, after which Python must not be
// entered from native threads.
void uninstall_python_log_sink();

}  // namespace wan::python
