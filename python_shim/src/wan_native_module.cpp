// `_wan_native`: the native node registry for Python. One node runs per execute() call, the way
// ComfyUI's executor calls a node's FUNCTION; tensors cross as torch.Tensor sharing storage,
// WAN_* objects as opaque handles that keep the native object (and its model) alive.
#include <torch/extension.h>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/python_variable.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/bounded_json.h"
#include "core/error.h"
#include "core/model_folders.h"
#include "device/compute_device.h"
#include "device/device_manager.h"
#include "device/placement.h"
#include "graph/executor.h"
#include "graph/node_registry.h"
#include "graph/validator.h"
#include "plan/auto_placement.h"
#include "python_log_sink.h"
#include "nodes/wan_nodes.h"

namespace py = pybind11;
namespace fs = std::filesystem;

namespace wan::python {
namespace {

// A WAN_* socket value held by Python. Copies share the object; the last one releases it.
struct ObjectHandle {
  std::shared_ptr<const graph::Object> object;
  std::string type() const { return object ? object->type() : "NONE"; }
};

// The process's run settings and device manager (one per process, as in wan-run).
struct Session {
  fs::path models_dir, output_dir, input_dir;
  device::ComputeDeviceOptions device_options;
  std::unique_ptr<device::DeviceManager> devices;
  std::unique_ptr<graph::Executor> executor;  // for run_prompt(); keeps its output cache
  std::mutex mutex;
  // The last prompt's auto placements: its loaders run one by one, and each asks for its choice.
  std::string auto_prompt;
  plan::AutoPlacement auto_placement;
};

Session& session() {
  // Never destroyed: handles Python frees at exit may still release models into the manager.
  static Session* instance = new Session();
  return *instance;
}

device::DeviceManager& devices() {
  Session& s = session();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.devices) s.devices = std::make_unique<device::DeviceManager>(s.device_options);
  return *s.devices;
}

// Raised by interrupt() from any thread; polled at each step of a running node.
std::atomic<bool> g_interrupt{false};

py::object g_interrupted_type;  // _wan_native.Interrupted

std::string fix_label(std::string message, const std::string& label) {
  // A node run outside the executor has no id, so its label reads "node"; name it properly.
  if (message.rfind("node:", 0) == 0 || message.rfind("node ", 0) == 0)
    message.replace(0, 4, label);
  for (size_t at; (at = message.find(" (node )")) != std::string::npos;) message.erase(at, 8);
  return message;
}

[[noreturn]] void raise_out_of_memory(const std::string& message) {
  py::object oom = py::module_::import("torch").attr("cuda").attr("OutOfMemoryError");
  PyErr_SetString(oom.ptr(), message.c_str());
  throw py::error_already_set();
}

// Raises the Python exception for a native one (GIL held): Cancelled -> Interrupted,
// OutOfMemory or LibTorch's own out-of-memory during compute -> torch.cuda.OutOfMemoryError,
// ValidationError -> ValueError, other -> RuntimeError.
[[noreturn]] void raise_python(std::exception_ptr error, const std::string& label) {
  try {
    std::rethrow_exception(error);
  } catch (py::error_already_set&) {
    throw;
  } catch (const graph::NodeError& e) {
    if (e.cause()) {
      try {
        std::rethrow_exception(e.cause());
      } catch (const Cancelled&) {
        PyErr_SetString(g_interrupted_type.ptr(), e.what());
        throw py::error_already_set();
      } catch (const OutOfMemory&) {
        raise_out_of_memory(e.what());
      } catch (const c10::OutOfMemoryError&) {
        raise_out_of_memory(e.what());
      } catch (const ValidationError&) {
        throw py::value_error(e.what());
      } catch (...) {
      }
    }
    throw std::runtime_error(e.what());
  } catch (const Cancelled& e) {
    PyErr_SetString(g_interrupted_type.ptr(), (label + ": interrupted").c_str());
    throw py::error_already_set();
  } catch (const OutOfMemory& e) {
    raise_out_of_memory(fix_label(e.what(), label));
  } catch (const c10::OutOfMemoryError& e) {
    raise_out_of_memory(label + ": out of memory while computing: " + e.what_without_backtrace());
  } catch (const ValidationError& e) {
    throw py::value_error(fix_label(e.what(), label));
  } catch (const std::exception& e) {
    throw std::runtime_error(fix_label(e.what(), label));
  }
}

// What a running native call reports and polls: Python callables, called with the GIL.
struct Callbacks {
  py::object progress;   // progress(step, steps, node_id) or None
  py::object interrupt;  // interrupt() -> bool or None
  std::atomic<bool> cancel{false};
  std::exception_ptr python_error;  // a callback raised: re-raised once the native call unwinds

  void on_event(const graph::ProgressEvent& event) {
    if (g_interrupt.load()) cancel = true;
    if (event.kind != graph::ProgressEvent::Kind::kStep) return;
    if (progress.is_none() && interrupt.is_none()) return;
    py::gil_scoped_acquire gil;
    try {
      if (!progress.is_none()) progress(event.step, event.steps, event.node_id);
      if (!interrupt.is_none() && py::bool_(interrupt())) cancel = true;
    } catch (py::error_already_set&) {
      python_error = std::current_exception();
      cancel = true;
    }
    if (g_interrupt.load()) cancel = true;
  }
};

// The host's model directories ({folder: [dir, ...]}, in search order: ComfyUI's folder_paths)
// or, without them, the configured models folder's layout.
ModelFolders folders_of(const py::object& model_dirs) {
  if (model_dirs.is_none()) return ModelFolders(session().models_dir);
  ModelFolders folders;
  for (const auto& [folder, dirs] : model_dirs.cast<py::dict>())
    for (const auto& dir : dirs.cast<py::list>())
      folders.add(folder.cast<std::string>(), fs::path(dir.cast<std::string>()));
  return folders;
}

graph::RunContext make_context(Callbacks& callbacks, ModelFolders models) {
  Session& s = session();
  graph::RunContext run;
  run.models_dir = std::move(models);
  run.output_dir = s.output_dir;
  run.input_dir = s.input_dir;
  run.device_manager = &devices();
  run.cancel_flag = &callbacks.cancel;
  run.on_progress = [&callbacks](const graph::ProgressEvent& event) { callbacks.on_event(event); };
  return run;
}

nlohmann::json parse_json_arg(const std::string& text, const char* what) {
  if (text.empty()) return nlohmann::json();
  try {
    return parse_json_bounded(text, what);
  } catch (const ValidationError& e) {
    throw py::value_error(e.what());
  }
}

// A Python input value as the native Value its schema type asks for.
graph::Value to_value(const py::handle& value, const graph::Input& input, const std::string& owner) {
  const std::string where = owner + " input '" + input.id() + "'";
  if (py::isinstance<ObjectHandle>(value)) {
    const auto& handle = value.cast<const ObjectHandle&>();
    graph::Value v(std::const_pointer_cast<graph::Object>(handle.object));
    return v;
  }
  if (THPVariable_Check(value.ptr())) return graph::Value(THPVariable_Unpack(value.ptr()));
  if (!input.is_widget())
    throw py::type_error(where + " is a " + input.type() + " socket; got a Python " +
                         std::string(py::str(py::type::of(value).attr("__name__"))));
  nlohmann::json literal;
  if (py::isinstance<py::bool_>(value)) {
    literal = value.cast<bool>();
  } else if (py::isinstance<py::int_>(value)) {
    literal = value.cast<int64_t>();
  } else if (py::isinstance<py::float_>(value)) {
    literal = value.cast<double>();
  } else if (py::isinstance<py::str>(value)) {
    literal = value.cast<std::string>();
  } else {
    throw py::type_error(where + " (" + input.type() + ") cannot take a Python " +
                         std::string(py::str(py::type::of(value).attr("__name__"))));
  }
  try {
    return graph::literal_value(literal, input);
  } catch (const std::exception& e) {
    throw py::value_error(where + ": " + e.what());
  }
}

py::object to_python(const graph::Value& value) {
  switch (value.kind()) {
    case graph::Value::Kind::kNone:
      return py::none();
    case graph::Value::Kind::kInt:
      return py::int_(value.as_int());
    case graph::Value::Kind::kFloat:
      return py::float_(value.as_float());
    case graph::Value::Kind::kBool:
      return py::bool_(value.as_bool());
    case graph::Value::Kind::kString:
      return py::str(value.as_string());
    case graph::Value::Kind::kTensor:
      return py::reinterpret_steal<py::object>(THPVariable_Wrap(value.as_tensor()));
    case graph::Value::Kind::kObject:
      return py::cast(ObjectHandle{value.as_object()});
  }
  return py::none();
}

py::tuple to_python(const graph::Values& values) {
  py::tuple out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = to_python(values[i]);
  return out;
}

// A value left to the planner (a loader's `placement: auto`, a VAE node's tile_size -1): its
// choice for the whole prompt the node runs in, on the session's device and budget. Every node of
// the prompt must be a native one (the planner reasons about each node's memory).
std::string planner_choice_of(const std::string& node_id, const std::string& input,
                              const std::string& prompt_text, const std::string& label,
                              const ModelFolders& models) {
  const nlohmann::json prompt = parse_json_arg(prompt_text, "prompt");
  if (!prompt.is_object() || !prompt.contains(node_id))
    throw py::value_error(label + ": " + input + " auto is chosen by planning the whole prompt, "
                          "and this node ran without one; set a value");
  const auto& registry = wan::nodes::wan_node_registry();
  for (const auto& [id, node] : prompt.items()) {
    const std::string type = node.is_object() ? node.value("class_type", std::string()) : "";
    if (!registry.find(type))
      throw py::value_error(label + ": " + input + " auto plans every node of the prompt, and " +
                            "node " + id + " (" + type + ") is not a wan-native node; set a " +
                            "value for this input");
  }
  Session& s = session();
  if (s.auto_prompt != prompt_text) {
    plan::PlanOptions options;
    options.models_dir = models;
    options.input_dir = s.input_dir;
    options.device = s.device_options;
    py::gil_scoped_release release;
    try {
      s.auto_placement = plan::resolve_auto_placement(prompt, registry, options);
    } catch (const std::exception& e) {
      throw py::value_error(label + ": " + input + " auto could not plan the prompt: " + e.what());
    }
    s.auto_prompt = prompt_text;
  }
  const plan::AutoPlacement& resolved = s.auto_placement;
  for (const auto& choice : resolved.choices) {
    if (choice.node_id != node_id || choice.input != input) continue;
    spdlog::info("{}: auto {} -> {} ({})", label, input, choice.value, choice.why);
    if (!resolved.fits) raise_out_of_memory(label + ": " + resolved.summary);
    return choice.value;
  }
  throw py::value_error(label + ": the planner made no choice for input '" + input + "'");
}

// Whether `value` is the one `input` leaves to the planner (-1, "auto").
bool asks_planner(const py::handle& value, const graph::Input& input) {
  const nlohmann::json& ask = input.planner_auto_value();
  if (ask.is_string())
    return py::isinstance<py::str>(value) && value.cast<std::string>() == ask.get<std::string>();
  return py::isinstance<py::int_>(value) && !py::isinstance<py::bool_>(value) &&
         value.cast<int64_t>() == ask.get<int64_t>();
}

py::tuple execute(const std::string& class_type, const py::dict& inputs, const std::string& node_id,
                  py::object progress, py::object interrupt,
                  const py::object& model_dirs, const std::string& prompt,
                  const std::string& workflow, const std::string& extra_pnginfo, py::object ui) {
  const auto& registry = wan::nodes::wan_node_registry();
  const graph::NodeSchema* schema = registry.find(class_type);
  if (!schema) throw py::value_error("unknown node type '" + class_type + "'");
  const std::string label = node_id.empty() ? class_type : class_type + " (node " + node_id + ")";

  // Where this node, and the planner for the whole prompt, find model files.
  const ModelFolders models = folders_of(model_dirs);
  graph::Values in;
  in.set_owner(label);
  for (const auto& [key, value] : inputs) {
    const auto name = key.cast<std::string>();
    const graph::Input* input = schema->find_input(name);
    if (!input) throw py::value_error(label + ": no input named '" + name + "'");
    if (value.is_none()) continue;
    if (name == "placement" && py::isinstance<py::str>(value) &&
        value.cast<std::string>() == device::kAutoPlacement) {
      const std::string chosen = planner_choice_of(node_id, name, prompt, label, models);
      in.set(name, graph::literal_value(chosen, *input));
      continue;
    }
    if (input->has_planner_choice() && asks_planner(value, *input)) {
      const std::string chosen = planner_choice_of(node_id, name, prompt, label, models);
      if (input->planner_auto_value().is_string())
        in.set(name, graph::literal_value(chosen, *input));
      else
        in.set(name, graph::literal_value(std::stoll(chosen), *input));
      continue;
    }
    in.set(name, to_value(value, *input, label));
  }

  Callbacks callbacks;
  callbacks.progress = std::move(progress);
  callbacks.interrupt = std::move(interrupt);
  graph::RunContext run = make_context(callbacks, models);
  run.prompt = parse_json_arg(prompt, "prompt");
  run.workflow = parse_json_arg(workflow, "workflow");
  if (!prompt.empty()) run.embedded_prompt = nlohmann::ordered_json::parse(prompt);
  if (!extra_pnginfo.empty()) {
    auto parsed = nlohmann::ordered_json::parse(extra_pnginfo, nullptr, false);
    if (parsed.is_discarded()) throw py::value_error("extra_pnginfo is not valid JSON");
    run.extra_pnginfo = std::move(parsed);
  }
  // What an output node shows (ComfyUI's {"images": [...]}), handed to `ui` once it returns.
  nlohmann::json shown;
  run.on_ui = [&shown](const std::string&, const nlohmann::json& value) { shown = value; };
  g_interrupt = false;

  graph::Values out;
  std::exception_ptr error;
  {
    py::gil_scoped_release release;
    // As the executor runs it: defaults, one ledger stage (out-of-memory messages name the
    // node), the start event, the cancellation check.
    try {
      out = graph::run_node(registry, node_id, class_type, std::move(in), run);
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (callbacks.python_error) std::rethrow_exception(callbacks.python_error);
  if (error) raise_python(error, label);
  if (!ui.is_none() && !shown.is_null()) ui(shown.dump());
  return to_python(out);
}

// Runs an API prompt through the native executor (what wan-run does) and returns
// {node_id: outputs} for every node that ran or was served from the cache.
py::dict run_prompt(const std::string& prompt_text, py::object progress, py::object interrupt) {
  const nlohmann::json prompt = parse_json_arg(prompt_text, "prompt");
  Session& s = session();
  if (!s.executor) s.executor = std::make_unique<graph::Executor>(wan::nodes::wan_node_registry());
  Callbacks callbacks;
  callbacks.progress = std::move(progress);
  callbacks.interrupt = std::move(interrupt);
  graph::RunContext run = make_context(callbacks, ModelFolders(session().models_dir));
  run.prompt = prompt;
  // The executor records a ledger stage per node.
  run.on_progress = [&callbacks](const graph::ProgressEvent& event) { callbacks.on_event(event); };
  g_interrupt = false;
  std::exception_ptr error;
  {
    py::gil_scoped_release release;
    try {
      s.executor->run(prompt, run);
    } catch (const std::exception&) {
      error = std::current_exception();
    }
  }
  if (callbacks.python_error) std::rethrow_exception(callbacks.python_error);
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const graph::InvalidPrompt& e) {
      throw py::value_error(e.report().dump());
    } catch (...) {
      raise_python(std::current_exception(), "prompt");
    }
  }
  py::dict outputs;
  for (const auto& node : s.executor->last_report().nodes) {
    if (const graph::Values* values = s.executor->outputs(node.node_id))
      outputs[py::str(node.node_id)] = to_python(*values);
  }
  return outputs;
}

void configure(const std::optional<std::string>& models_dir,
               const std::optional<std::string>& output_dir,
               const std::optional<std::string>& input_dir, const std::string& device,
               const std::optional<std::string>& vram, const std::optional<std::string>& reserve,
               const std::optional<std::string>& page_lock) {
  Session& s = session();
  device::ComputeDeviceOptions options;
  options.device = device;
  try {
    if (vram) options.vram = device::parse_size(*vram);
    if (reserve) options.reserve = device::parse_size(*reserve);
    if (page_lock) options.page_lock = device::parse_size(*page_lock);
  } catch (const std::exception& e) {
    throw py::value_error(e.what());
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.devices && !s.devices->models().empty())
    throw std::runtime_error(
        "configure(): models loaded under the current settings are still alive; release their "
        "handles (and run_prompt's cache with clear_cache()) before changing the device");
  s.executor.reset();
  s.devices.reset();  // one budgeted virtual device at a time: the old one goes first
  try {
    s.devices = std::make_unique<device::DeviceManager>(options);
  } catch (const ValidationError& e) {
    throw py::value_error(e.what());
  }
  s.device_options = options;
  s.auto_prompt.clear();  // planned for the old settings
  if (models_dir) s.models_dir = *models_dir;
  if (output_dir) s.output_dir = *output_dir;
  if (input_dir) s.input_dir = *input_dir;
}

py::dict settings() {
  Session& s = session();
  auto& manager = devices();
  py::dict out;
  out["models_dir"] = s.models_dir.string();
  out["output_dir"] = s.output_dir.string();
  out["input_dir"] = s.input_dir.string();
  out["device"] = manager.compute().name();
  out["bytes_capacity"] = manager.compute().bytes_capacity();
  out["bytes_in_use"] = manager.compute().bytes_in_use();
  return out;
}

// {class_type: {input: folder}} for the inputs that name model files, as the schemas declare.
py::dict model_folders() {
  py::dict out;
  for (const graph::NodeSchema* schema : wan::nodes::wan_node_registry().schemas()) {
    py::dict inputs;
    for (const graph::Input& input : schema->inputs()) {
      if (!input.model_folder_name().empty())
        inputs[py::str(input.id())] = input.model_folder_name();
    }
    if (!inputs.empty()) out[py::str(schema->name())] = inputs;
  }
  return out;
}

// {class_type: {input: "file" | "file_or_pattern"}} for inputs that name a file (or a glob of
// files) in the input folder.
py::dict input_files() {
  py::dict out;
  for (const graph::NodeSchema* schema : wan::nodes::wan_node_registry().schemas()) {
    py::dict inputs;
    for (const graph::Input& input : schema->inputs()) {
      if (input.path_rule() != graph::PathRule::kInputFile) continue;
      inputs[py::str(input.id())] =
          input.input_files() == graph::InputFiles::kFileOrPattern ? "file_or_pattern" : "file";
    }
    if (!inputs.empty()) out[py::str(schema->name())] = inputs;
  }
  return out;
}

}  // namespace
}  // namespace wan::python

PYBIND11_MODULE(_wan_native, m) {
  using namespace wan::python;
  m.doc() = "wan-native nodes for Python (ComfyUI custom nodes)";
  py::module_::import("torch");  // THPVariable types must exist before tensors cross

  g_interrupted_type = py::reinterpret_steal<py::object>(
      PyErr_NewExceptionWithDoc("_wan_native.Interrupted",
                                "A native node stopped at a step because it was interrupted.",
                                PyExc_Exception, nullptr));
  m.attr("Interrupted") = g_interrupted_type;

  py::class_<ObjectHandle>(m, "Handle", "A WAN_* socket value; keeps the native object alive.")
      .def_property_readonly("type", &ObjectHandle::type, "the socket type, e.g. 'WAN_VAE'")
      .def("__repr__",
           [](const ObjectHandle& h) { return "<wan_native.Handle " + h.type() + ">"; });

  m.def(
      "object_info",
      [](const std::optional<std::string>& models_dir, const py::object& model_dirs) {
        const wan::ModelFolders folders =
            model_dirs.is_none() ? wan::ModelFolders(models_dir ? fs::path(*models_dir)
                                                                : session().models_dir)
                                 : folders_of(model_dirs);
        return wan::nodes::wan_node_registry().object_info(folders).dump();
      },
      py::arg("models_dir") = py::none(), py::arg("model_dirs") = py::none(),
      "ComfyUI's /object_info for every native node, as JSON text; model combos list the files "
      "under models_dir (default: the configured one), or in model_dirs ({folder: [dir, ...]}).");
  m.def("model_folders", &model_folders,
        "{class_type: {input: folder}} for inputs that name a file under a models folder.");
  m.def("input_files", &input_files,
        "{class_type: {input: 'file' | 'file_or_pattern'}} for inputs naming input-folder files.");
  m.def("configure", &configure, py::arg("models_dir") = py::none(),
        py::arg("output_dir") = py::none(), py::arg("input_dir") = py::none(),
        py::arg("device") = "auto", py::arg("vram") = py::none(), py::arg("reserve") = py::none(),
        py::arg("page_lock") = py::none(),
        "Sets the run settings and creates the process's device manager (device 'auto', 'cpu', "
        "'cuda[:N]'; vram/reserve/page_lock as sizes such as '8GiB'; page_lock: CPU memory "
        "`stream` may page-lock on CUDA, default half of physical memory).");
  m.def("settings", &settings, "The run settings and the compute device in use.");
  m.def("execute", &execute, py::arg("class_type"), py::arg("inputs"), py::arg("node_id") = "",
        py::arg("progress") = py::none(), py::arg("interrupt") = py::none(),
        py::arg("model_dirs") = py::none(), py::arg("prompt") = "", py::arg("workflow") = "",
        py::arg("extra_pnginfo") = "", py::arg("ui") = py::none(),
        "Runs one node on `inputs` ({input: value}) and returns its outputs as a tuple. "
        "model_dirs ({folder: [dir, ...]}, the host's search order) is where model files are "
        "found (default: the configured models folder); progress(step, steps, node_id) is "
        "called at each step, interrupt() -> bool polled there; an output node's ComfyUI `ui` "
        "({\"images\": [...]}, JSON text) goes to ui(text).");
  m.def("run_prompt", &run_prompt, py::arg("prompt"), py::arg("progress") = py::none(),
        py::arg("interrupt") = py::none(),
        "Runs an API prompt (JSON text) through the native executor; returns {node_id: outputs}.");
  m.def(
      "clear_cache",
      [] {
        if (session().executor) session().executor->clear_cache();
      },
      "Drops run_prompt's output cache (and the models it holds).");
  m.def(
      "unload_models",
      [] {
        py::gil_scoped_release release;
        return devices().unload_idle_models();
      },
      "Moves every native model that is on the compute device and not computing back to CPU "
      "memory (the next node that uses it moves it in again); returns the device bytes freed.");
  m.def(
      "interrupt", [](bool on) { g_interrupt = on; }, py::arg("on") = true,
      "Stops the running native node at its next step (callable from any thread).");
  m.def("set_log_level", &set_native_log_level, py::arg("python_level"),
        "Native log level from a Python logging level.");

  install_python_log_sink();
  py::module_::import("atexit").attr("register")(py::cpp_function([] {
    uninstall_python_log_sink();
  }));
}
