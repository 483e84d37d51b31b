"""wan-native: the Wan2.1 video nodes for ComfyUI, computed by the native engine.

ComfyUI loads this folder as a custom-node package (the V1 contract: NODE_CLASS_MAPPINGS and
NODE_DISPLAY_NAME_MAPPINGS). Every node class is generated from the native node schemas, so the
inputs, outputs and defaults are exactly those `wan-run --object-info` prints, and its FUNCTION
runs the native node: tensors cross as torch tensors sharing memory, models as opaque handles.

Outside ComfyUI the same classes work on their own: settings come from configure() or the
environment (WAN_MODELS_DIR, WAN_OUTPUT_DIR, WAN_INPUT_DIR, WAN_DEVICE, WAN_VRAM, WAN_RESERVE).
"""

import importlib.machinery
import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile

import torch  # noqa: F401  (the native module links the same libtorch; load it first)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_NATIVE_NAME = "_wan_native"
log = logging.getLogger("wan_native")


def _native_candidates():
    """Folders that may hold the built module, in the order they are tried."""
    build_dir = os.environ.get("WAN_NATIVE_BUILD_DIR")
    if build_dir:
        return [os.path.join(build_dir, "python_shim"), build_dir]
    return [_HERE, os.path.join(_HERE, "..", "build", "python_shim")]


def _load_native():
    # One copy per process: the module registers its types with pybind11 once, so a second load
    # of this package (ComfyUI reloading, tests) reuses it.
    if _NATIVE_NAME in sys.modules:
        return sys.modules[_NATIVE_NAME]
    tried = []
    for folder in _native_candidates():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.normpath(os.path.join(folder, _NATIVE_NAME + suffix))
            tried.append(path)
            if not os.path.isfile(path):
                continue
            spec = importlib.util.spec_from_file_location(_NATIVE_NAME, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[_NATIVE_NAME] = module
            return module
    raise ImportError(
        "wan-native: the native module _wan_native is not built (looked for "
        + ", ".join(tried)
        + "). Build it against this Python's torch:\n"
        '  cmake -S <wan-native> -B <wan-native>/build -DTorch_DIR=$(python -c "import torch; '
        'print(torch.utils.cmake_prefix_path)")/Torch -DPython3_EXECUTABLE=$(which python)\n'
        "  cmake --build <wan-native>/build --target _wan_native\n"
        "then link or copy build/python_shim/_wan_native*.so next to this __init__.py, or set "
        "WAN_NATIVE_BUILD_DIR=<wan-native>/build. See docs/comfyui.md."
    )


_native = _load_native()

Interrupted = _native.Interrupted
Handle = _native.Handle
interrupt = _native.interrupt
run_prompt = _native.run_prompt

# Called as progress_hook(step, steps, node_id) at each step when running outside ComfyUI.
progress_hook = None


# --- ComfyUI integration (each piece optional, looked up when used) ---------------------------


def _comfy_module(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _folder_paths():
    return _comfy_module("folder_paths")


_configured = False


def configure(models_dir=None, output_dir=None, input_dir=None, device=None, vram=None,
              reserve=None):
    """Run settings for the native nodes; creates the process's device manager.

    Unset arguments come from ComfyUI (its models/output/input folders) when this runs inside
    it, else from WAN_MODELS_DIR, WAN_OUTPUT_DIR, WAN_INPUT_DIR, WAN_DEVICE, WAN_VRAM, WAN_RESERVE.
    """
    global _configured
    fp = _folder_paths()
    env = os.environ.get
    if fp is not None:
        models_dir = models_dir or getattr(fp, "models_dir", None)
        output_dir = output_dir or fp.get_output_directory()
        input_dir = input_dir or fp.get_input_directory()
    _native.configure(
        models_dir=models_dir or env("WAN_MODELS_DIR", os.path.join(os.getcwd(), "models")),
        output_dir=output_dir or env("WAN_OUTPUT_DIR", os.path.join(os.getcwd(), "output")),
        input_dir=input_dir or env("WAN_INPUT_DIR", os.path.join(os.getcwd(), "input")),
        device=device or env("WAN_DEVICE", "auto"),
        vram=vram or env("WAN_VRAM"),
        reserve=reserve or env("WAN_RESERVE"),
    )
    _configured = True
    log.info("wan-native: compute device %s", _native.settings()["device"])


def _ensure_configured():
    if not _configured:
        configure()


def _register_tokenizer_folder(fp):
    # ComfyUI has no tokenizers/ folder; LoadT5 reads spiece.model files from one.
    if "tokenizers" not in getattr(fp, "folder_names_and_paths", {}):
        fp.add_model_folder_path("tokenizers", os.path.join(fp.models_dir, "tokenizers"))


def _comfy_bases(fp, folder):
    try:
        return [p for p in fp.get_folder_paths(folder) if os.path.isdir(p)]
    except Exception:  # ComfyUI raises KeyError for an unknown folder name
        return []


_MODEL_EXTENSIONS = (".safetensors", ".sft", ".pth", ".pt", ".bin", ".ckpt",
                     ".safetensors.index.json")


class _ModelsView:
    """A scratch models folder whose `<folder>` entries link to the given real folders, so the
    native nodes (which read models_dir/<folder>/<name>) see ComfyUI's configured paths."""

    def __init__(self, links):
        self.root = tempfile.mkdtemp(prefix="wan_models_")
        for folder, target in links.items():
            os.symlink(os.path.abspath(target), os.path.join(self.root, folder))

    def close(self):
        shutil.rmtree(self.root, ignore_errors=True)


def _combo_options_in_comfy(fp, class_type, input_name, folder, static):
    names = set()
    for base in _comfy_bases(fp, folder):
        view = _ModelsView({folder: base})
        try:
            info = json.loads(_native.object_info(view.root))[class_type]["input"]
            spec = info.get("required", {}).get(input_name) or info.get("optional", {})[input_name]
            names.update(spec[0])
        finally:
            view.close()
    try:
        names.update(n for n in fp.get_filename_list(folder) if n.endswith(_MODEL_EXTENSIONS))
    except Exception:
        pass
    return list(static) + sorted(names - set(static))


def _resolve_models_view(fp, class_type, inputs):
    """A _ModelsView for the model files this node reads, found in ComfyUI's folders."""
    links = {}
    for input_name, folder in _MODEL_FOLDERS.get(class_type, {}).items():
        name = inputs.get(input_name)
        if not isinstance(name, str) or name in _STATIC_OPTIONS[class_type][input_name]:
            continue
        base = None
        full = None
        try:
            full = fp.get_full_path(folder, name)
        except Exception:
            full = None
        for candidate in _comfy_bases(fp, folder):
            path = os.path.join(candidate, name)
            if (full and os.path.abspath(full) == os.path.abspath(path)) or os.path.exists(path):
                base = candidate
                break
        if base is None:
            raise ValueError(
                "%s: %s '%s' is not in ComfyUI's %s folders (%s)"
                % (class_type, input_name, name, folder, ", ".join(_comfy_bases(fp, folder))))
        links[folder] = base
    return _ModelsView(links) if links else None


class _ComfyProgress:
    """Steps to comfy.utils.ProgressBar; interrupts from comfy.model_management."""

    def __init__(self, utils, model_management, node_id):
        self.utils, self.mm, self.node_id, self.bar = utils, model_management, node_id, None

    def progress(self, step, steps, _native_node_id):
        if self.utils is None:
            return
        if self.bar is None or self.bar.total != steps:
            try:
                self.bar = self.utils.ProgressBar(steps, node_id=self.node_id)
            except TypeError:  # older ComfyUI: ProgressBar(total)
                self.bar = self.utils.ProgressBar(steps)
        self.bar.update_absolute(step, steps)

    def interrupted(self):
        return self.mm is not None and bool(self.mm.processing_interrupted())


def _run_native(class_type, inputs, hidden):
    _ensure_configured()
    _native.set_log_level(log.getEffectiveLevel())
    node_id = str(hidden.get("unique_id") or "")
    prompt = hidden.get("prompt")
    extra = hidden.get("extra_pnginfo")
    workflow = extra.get("workflow") if isinstance(extra, dict) else None

    utils = _comfy_module("comfy.utils")
    mm = _comfy_module("comfy.model_management")
    fp = _folder_paths()
    if utils is not None or mm is not None:
        comfy = _ComfyProgress(utils, mm, node_id)
        progress, interrupted = comfy.progress, comfy.interrupted
        if mm is not None and hasattr(mm, "throw_exception_if_processing_interrupted"):
            mm.throw_exception_if_processing_interrupted()
    else:
        progress, interrupted = progress_hook, None

    view = _resolve_models_view(fp, class_type, inputs) if fp is not None else None
    try:
        return _native.execute(
            class_type, inputs, node_id=node_id, progress=progress, interrupt=interrupted,
            models_dir=view.root if view else None,
            prompt=json.dumps(prompt) if prompt is not None else "",
            workflow=json.dumps(workflow) if workflow is not None else "")
    except Interrupted as error:
        if mm is not None and hasattr(mm, "InterruptProcessingException"):
            raise mm.InterruptProcessingException() from error
        raise
    finally:
        if view is not None:
            view.close()


# --- node classes from the native schemas -----------------------------------------------------

_OBJECT_INFO = json.loads(_native.object_info(tempfile.gettempdir() + "/wan_native_no_models"))
_MODEL_FOLDERS = {k: dict(v) for k, v in _native.model_folders().items()}
# Combo options that are not files (e.g. LoadT5's "from_checkpoint"): those listed with no models.
_STATIC_OPTIONS = {
    class_type: {
        input_name: [o for o in (_OBJECT_INFO[class_type]["input"].get("required", {}).get(input_name)
                                 or _OBJECT_INFO[class_type]["input"]["optional"][input_name])[0]]
        for input_name in folders
    }
    for class_type, folders in _MODEL_FOLDERS.items()
}
_HIDDEN = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO", "unique_id": "UNIQUE_ID"}
_FLOAT_IMAGE_TYPES = ("IMAGE", "MASK")


def _input_types(class_type):
    fp = _folder_paths()
    if fp is None:
        _ensure_configured()
        info = json.loads(_native.object_info())[class_type]
    else:
        _register_tokenizer_folder(fp)
        info = json.loads(_native.object_info())[class_type]
        for input_name, folder in _MODEL_FOLDERS.get(class_type, {}).items():
            section = "required" if input_name in info["input"].get("required", {}) else "optional"
            spec = list(info["input"][section][input_name])
            spec[0] = _combo_options_in_comfy(fp, class_type, input_name, folder,
                                              _STATIC_OPTIONS[class_type][input_name])
            info["input"][section][input_name] = spec
    types = {}
    for section in ("required", "optional"):
        order = info.get("input_order", {}).get(section, [])
        specs = info["input"].get(section, {})
        if specs:
            types[section] = {name: tuple(specs[name]) for name in order}
    types["hidden"] = dict(_HIDDEN)
    return types


def _socket_is_float_image(spec_type):
    return isinstance(spec_type, str) and spec_type in _FLOAT_IMAGE_TYPES


def _make_node_class(class_type, info):
    input_types = {}
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            input_types[name] = spec[0]

    def execute(self, **kwargs):
        hidden = {key: kwargs.pop(key) for key in list(kwargs) if key in _HIDDEN}
        for name, value in kwargs.items():
            # ComfyUI's IMAGE/MASK are CPU float32; a node upstream may hand over another dtype.
            if _socket_is_float_image(input_types.get(name)) and isinstance(value, torch.Tensor):
                kwargs[name] = value.to(device="cpu", dtype=torch.float32)
        outputs = _run_native(class_type, kwargs, hidden)
        return tuple(outputs)

    attrs = {
        "__doc__": info.get("description") or info.get("display_name"),
        "__module__": __name__,
        "NATIVE_CLASS_TYPE": class_type,
        "INPUT_TYPES": classmethod(lambda cls: _input_types(class_type)),
        "RETURN_TYPES": tuple(info["output"]),
        "RETURN_NAMES": tuple(n or t for n, t in zip(info["output_name"], info["output"])),
        "OUTPUT_TOOLTIPS": tuple(info.get("output_tooltips", [])),
        "FUNCTION": "execute",
        "CATEGORY": info["category"],
        "OUTPUT_NODE": bool(info["output_node"]),
        "DESCRIPTION": info.get("description", ""),
        "execute": execute,
    }
    return type(class_type, (), attrs)


def _core_node_names():
    # Inside ComfyUI, names its own nodes already use (LoadImage, SaveVideo, ...) are skipped by
    # its custom-node loader; those nodes are also offered as "WanNative<Name>".
    nodes = sys.modules.get("nodes")
    mappings = getattr(nodes, "NODE_CLASS_MAPPINGS", None) if nodes is not None else None
    return set(mappings) if isinstance(mappings, dict) else set()


NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for _class_type, _info in sorted(_OBJECT_INFO.items()):
    _cls = _make_node_class(_class_type, _info)
    NODE_CLASS_MAPPINGS[_class_type] = _cls
    NODE_DISPLAY_NAME_MAPPINGS[_class_type] = _info.get("display_name") or _class_type
for _class_type in sorted(_core_node_names() & set(NODE_CLASS_MAPPINGS)):
    _alias = "WanNative" + _class_type
    NODE_CLASS_MAPPINGS[_alias] = NODE_CLASS_MAPPINGS[_class_type]
    NODE_DISPLAY_NAME_MAPPINGS[_alias] = NODE_DISPLAY_NAME_MAPPINGS[_class_type] + " (wan-native)"
