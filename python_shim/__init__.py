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
import sys
import tempfile
import threading
import glob
import hashlib
import inspect

import torch  # noqa: F401  (the native module links the same libtorch; load it first)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

# realpath: ComfyUI imports a symlinked custom_nodes/<name> through the link, and the build folder
# is found next to the real checkout, not next to the link.
_HERE = os.path.dirname(os.path.realpath(__file__))
_NATIVE_NAME = "_wan_native"
log = logging.getLogger("wan_native")


def _native_candidates():
    """Folders that may hold the built module, in the order they are tried."""
    build_dir = os.environ.get("WAN_NATIVE_BUILD_DIR")
    if build_dir:
        return [os.path.join(build_dir, "python_shim"), build_dir]
    return [_HERE, os.path.join(os.path.dirname(_HERE), "build", "python_shim")]


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
              reserve=None, page_lock=None):
    """Run settings for the native nodes; creates the process's device manager.

    Unset arguments come from ComfyUI (its models/output/input folders) when this runs inside
    it, else from WAN_MODELS_DIR, WAN_OUTPUT_DIR, WAN_INPUT_DIR, WAN_DEVICE, WAN_VRAM, WAN_RESERVE,
    WAN_PAGE_LOCK (CPU memory `stream` may page-lock on CUDA; default half of physical memory).
    """
    global _configured
    fp = _folder_paths()
    mm = _comfy_module("comfy.model_management")
    env = os.environ.get
    if fp is not None:
        models_dir = models_dir or getattr(fp, "models_dir", None)
        output_dir = output_dir or fp.get_output_directory()
        input_dir = input_dir or fp.get_input_directory()
    device = device or env("WAN_DEVICE") or _comfy_device(mm) or "auto"
    vram = vram or env("WAN_VRAM") or None
    if vram and mm is not None and device.startswith("cuda"):
        # A CUDA budget caps the caching allocator for the whole process, ComfyUI's nodes too.
        log.warning("wan-native: WAN_VRAM=%s is ignored inside ComfyUI on %s (it would cap "
                    "ComfyUI's own nodes); use ComfyUI's --reserve-vram instead", vram, device)
        vram = None
    _native.configure(
        models_dir=models_dir or env("WAN_MODELS_DIR", os.path.join(os.getcwd(), "models")),
        output_dir=output_dir or env("WAN_OUTPUT_DIR", os.path.join(os.getcwd(), "output")),
        input_dir=input_dir or env("WAN_INPUT_DIR", os.path.join(os.getcwd(), "input")),
        device=device,
        vram=vram,
        reserve=reserve or env("WAN_RESERVE") or None,
        page_lock=page_lock or env("WAN_PAGE_LOCK") or None,
    )
    _configured = True
    log.info("wan-native: compute device %s", _native.settings()["device"])


def _comfy_device(mm):
    """ComfyUI's compute device as a native device name, or None outside ComfyUI."""
    get = getattr(mm, "get_torch_device", None) if mm is not None else None
    if get is None:
        return None
    dev = torch.device(get())
    if dev.type == "cuda":
        return "cuda:%d" % (dev.index or 0)
    if dev.type != "cpu":
        log.warning("wan-native: ComfyUI computes on %s, which the native engine does not "
                    "support; the wan nodes compute on the CPU", dev)
    return "cpu"


def _free_comfy_memory(mm, fp, class_type, inputs):
    """Asks ComfyUI to unload its own models until this node's weights and work fit."""
    if mm is None or not hasattr(mm, "free_memory"):
        return
    name = _native.settings()["device"]
    if not name.startswith("cuda"):
        return  # the CPU and the virtual accelerator are not ComfyUI's to free
    need = 0
    folders = _MODEL_FOLDERS.get(class_type, {})
    if folders and inputs.get("placement") != "cpu":
        for input_name, folder in folders.items():
            try:
                path = fp.get_full_path(folder, str(inputs.get(input_name))) if fp else None
            except Exception:
                path = None
            if path and os.path.isfile(path):
                need += os.path.getsize(path)
    elif not folders:
        need = int(mm.minimum_inference_memory()) if hasattr(mm, "minimum_inference_memory") else 0
    if need > 0:
        _freeing_for_native_node.on = True
        try:
            mm.free_memory(need, torch.device(name))
        finally:
            _freeing_for_native_node.on = False


# Set while a native node asks ComfyUI for room, so that request does not unload native models.
_freeing_for_native_node = threading.local()


def _frees_native_device(device):
    """Whether ComfyUI freeing `device` concerns the memory the native models sit in: the same
    CUDA device, or the CPU-backed virtual accelerator when ComfyUI runs on the CPU."""
    ours = _native.settings()["device"]
    try:
        dev = torch.device(device)
    except (TypeError, RuntimeError):
        return False
    if ours.startswith("cuda"):
        index = int(ours.split(":")[1]) if ":" in ours else 0
        return dev.type == "cuda" and (dev.index or 0) == index
    return ours != "cpu" and dev.type == "cpu"


def _hook_comfy_unload(mm):
    """Makes ComfyUI's unload path release native models too: its free_memory (which
    unload_all_models and the frontend's "Unload models" end in) unloads ComfyUI's models first
    and then, if that was not enough, moves every idle native model off that device."""
    original = getattr(mm, "free_memory", None) if mm is not None else None
    if original is None or getattr(original, "_wan_native", False):
        return
    get_free = getattr(mm, "get_free_memory", None)

    def free_memory(memory_required, device, *args, **kwargs):
        result = original(memory_required, device, *args, **kwargs)
        if getattr(_freeing_for_native_node, "on", False) or not _configured:
            return result
        if not _frees_native_device(device):
            return result
        if get_free is not None and get_free(device) >= memory_required:
            return result
        freed = _native.unload_models()
        if freed:
            log.info("wan-native: unloaded %.1f MiB of idle native models from %s for ComfyUI",
                     freed / 2**20, device)
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()
        return result

    free_memory._wan_native = True
    mm.free_memory = free_memory


def _comfy_message(message):
    # The native messages suggest wan-run's command-line options; inside ComfyUI those are not
    # there to set.
    message = message.replace(", or a larger --vram", "").replace(", a smaller weight dtype",
                                                                 " or a smaller weight dtype")
    message = message.replace(", a smaller size", " or a smaller size")
    for flag, variable in (("--vram", "WAN_VRAM"), ("--reserve", "WAN_RESERVE"),
                           ("--page-lock", "WAN_PAGE_LOCK"), ("--device", "WAN_DEVICE")):
        message = message.replace(flag, variable)
    return message


def _ensure_configured():
    if not _configured:
        configure()


def _register_tokenizer_folder(fp):
    # ComfyUI has no tokenizers/ folder; LoadT5 reads spiece.model files from one. Its default
    # place goes first, after any extra_model_paths.yaml entries were read.
    if fp is not None and hasattr(fp, "add_model_folder_path"):
        fp.add_model_folder_path("tokenizers", os.path.join(fp.models_dir, "tokenizers"),
                                 is_default=True)


def _comfy_bases(fp, folder):
    try:
        return [p for p in fp.get_folder_paths(folder) if os.path.isdir(p)]
    except Exception:  # ComfyUI raises KeyError for an unknown folder name
        return []


_MODEL_EXTENSIONS = (".safetensors", ".sft", ".pth", ".pt", ".bin", ".ckpt",
                     ".safetensors.index.json")


def _comfy_model_dirs(fp):
    """{folder: [dir, ...]} for every models folder a pack node reads, in ComfyUI's search order
    (folder_paths, extra_model_paths.yaml): where the native side finds model files."""
    folders = sorted({f for inputs in _MODEL_FOLDERS.values() for f in inputs.values()})
    return {folder: _comfy_bases(fp, folder) for folder in folders}


def _combo_options_in_comfy(fp, class_type, input_name, static, native_names):
    """The native listing of ComfyUI's folders, plus what ComfyUI's own cache lists."""
    names = set(native_names)
    try:
        names.update(n for n in fp.get_filename_list(_MODEL_FOLDERS[class_type][input_name])
                     if n.endswith(_MODEL_EXTENSIONS))
    except Exception:
        pass
    return list(static) + sorted(names - set(static))


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


def _run_native(class_type, inputs, hidden, ui=None):
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

    try:
        _free_comfy_memory(mm, fp, class_type, inputs)
        return _native.execute(
            class_type, inputs, node_id=node_id, progress=progress, interrupt=interrupted,
            model_dirs=_comfy_model_dirs(fp) if fp is not None else None,
            prompt=json.dumps(prompt) if prompt is not None else "",
            workflow=json.dumps(workflow) if workflow is not None else "",
            extra_pnginfo=json.dumps(extra) if isinstance(extra, dict) else "", ui=ui)
    except Interrupted as error:
        if mm is not None and hasattr(mm, "InterruptProcessingException"):
            raise mm.InterruptProcessingException() from error
        raise
    except torch.cuda.OutOfMemoryError as error:
        if mm is None and fp is None:
            raise
        # ComfyUI's executor reacts to this type: it unloads its models and shows the message.
        raise torch.cuda.OutOfMemoryError(_comfy_message(str(error))) from None


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
        info = json.loads(_native.object_info(model_dirs=_comfy_model_dirs(fp)))[class_type]
        for input_name in _MODEL_FOLDERS.get(class_type, {}):
            section = "required" if input_name in info["input"].get("required", {}) else "optional"
            spec = list(info["input"][section][input_name])
            spec[0] = _combo_options_in_comfy(fp, class_type, input_name,
                                              _STATIC_OPTIONS[class_type][input_name], spec[0])
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


def _comfy_upscale(samples, width, height):
    """[N, C, H, W] resized as ComfyUI's common_upscale(..., "bilinear", "center") does."""
    utils = _comfy_module("comfy.utils")
    if utils is not None and hasattr(utils, "common_upscale"):
        return utils.common_upscale(samples, width, height, "bilinear", "center")
    old_h, old_w = samples.shape[-2], samples.shape[-1]
    old_aspect, new_aspect = old_w / old_h, width / height
    x = y = 0
    if old_aspect > new_aspect:
        x = round((old_w - old_w * (new_aspect / old_aspect)) / 2)
    elif old_aspect < new_aspect:
        y = round((old_h - old_h * (old_aspect / new_aspect)) / 2)
    cropped = samples.narrow(-2, y, old_h - y * 2).narrow(-1, x, old_w - x * 2)
    return torch.nn.functional.interpolate(cropped, size=(height, width), mode="bilinear")


def _as_comfy_wan_inputs(kwargs, input_types):
    """IMAGE and MASK inputs as ComfyUI's Wan nodes take them: CPU float32, alpha dropped
    (they encode image[..., :3]) and masks resized to the node's width x height."""
    width, height = kwargs.get("width"), kwargs.get("height")
    for name, value in kwargs.items():
        kind = input_types.get(name)
        if not _socket_is_float_image(kind) or not isinstance(value, torch.Tensor):
            continue
        value = value.to(device="cpu", dtype=torch.float32)
        if kind == "IMAGE" and value.dim() == 4 and value.shape[-1] == 4:
            value = value[..., :3].contiguous()
        if (kind == "MASK" and isinstance(width, int) and isinstance(height, int)
                and value.dim() in (2, 3) and tuple(value.shape[-2:]) != (height, width)):
            frames = value.reshape(-1, 1, value.shape[-2], value.shape[-1])
            value = _comfy_upscale(frames, width, height)[:, 0].contiguous()
        kwargs[name] = value
    return kwargs


# Pack nodes that read a file (or a glob of files) named by a string input from the input
# folder, as their schemas declare it. ComfyUI re-runs them when the files change and rejects a
# name that matches nothing before the prompt runs, as it does for its own LoadImage.
def _input_file_inputs(class_type):
    files = getattr(_native, "input_files", None)
    return sorted(files().get(class_type, {})) if files is not None else []


def _input_matches(value):
    """The files an input-folder name or glob matches (annotated names like 'x.png [input]')."""
    fp = _folder_paths()
    if fp is not None and hasattr(fp, "get_annotated_filepath"):
        path = fp.get_annotated_filepath(value)
    else:
        _ensure_configured()
        path = os.path.join(_native.settings()["input_dir"], value)
    if os.path.isdir(path):
        return sorted(p for p in glob.glob(os.path.join(path, "*")) if os.path.isfile(p))
    return sorted(p for p in glob.glob(path) if os.path.isfile(p))


def _make_node_class(class_type, info):
    input_types = {}
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            input_types[name] = spec[0]
    output_node = bool(info["output_node"])

    def execute(self, **kwargs):
        hidden = {key: kwargs.pop(key) for key in list(kwargs) if key in _HIDDEN}
        kwargs = _as_comfy_wan_inputs(kwargs, input_types)
        if not output_node:
            return tuple(_run_native(class_type, kwargs, hidden))
        shown = []
        outputs = _run_native(class_type, kwargs, hidden, ui=shown.append)
        # ComfyUI's shape for an output node: what it wrote shows in /history and the UI.
        return {"ui": json.loads(shown[-1]) if shown else {}, "result": tuple(outputs)}

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
        "OUTPUT_NODE": output_node,
        "DESCRIPTION": info.get("description", ""),
        "execute": execute,
    }
    file_inputs = _input_file_inputs(class_type)
    if file_inputs:
        def is_changed(cls, **kwargs):
            digest = hashlib.sha256()
            for name in file_inputs:
                for path in _input_matches(str(kwargs.get(name, ""))):
                    digest.update(path.encode())
                    with open(path, "rb") as f:
                        digest.update(f.read())
            return digest.hexdigest()

        def validate_inputs(cls, **kwargs):
            for name in file_inputs:
                value = kwargs.get(name)
                if isinstance(value, str) and not _input_matches(value):
                    return "Invalid %s: no file in the input folder matches '%s'" % (name, value)
            return True

        # ComfyUI passes VALIDATE_INPUTS the inputs its signature names, and skips its own
        # range checks for every input when it takes **kwargs: so name exactly the file inputs.
        param = inspect.Parameter.POSITIONAL_OR_KEYWORD
        validate_inputs.__signature__ = inspect.Signature(
            [inspect.Parameter("cls", param)] + [inspect.Parameter(n, param) for n in file_inputs])
        attrs["IS_CHANGED"] = classmethod(is_changed)
        attrs["VALIDATE_INPUTS"] = classmethod(validate_inputs)
    return type(class_type, (), attrs)


# ComfyUI core nodes the native registry implements under their ComfyUI names, so wan-run runs
# ComfyUI's own workflows. Inside ComfyUI its own nodes run and the package registers none of
# these; outside ComfyUI (plain Python) they are offered so a whole pipeline can be built.
def _is_core_node(info):
    if info.get("comfy_core") or info.get("core"):
        return True
    module = info.get("python_module", "")
    return module == "nodes" or module.startswith("comfy_extras") or module.startswith("comfy_api")


def _inside_comfyui():
    nodes = sys.modules.get("nodes")
    return isinstance(getattr(nodes, "NODE_CLASS_MAPPINGS", None), dict) and (
        _folder_paths() is not None)


def _comfy_node_names():
    return set(sys.modules["nodes"].NODE_CLASS_MAPPINGS) if _inside_comfyui() else set()


_register_tokenizer_folder(_folder_paths())
if _inside_comfyui():
    _hook_comfy_unload(_comfy_module("comfy.model_management"))
CORE_NODES = sorted(name for name, info in _OBJECT_INFO.items() if _is_core_node(info))
NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
_skip = (set(CORE_NODES) | _comfy_node_names()) if _inside_comfyui() else set()
for _class_type, _info in sorted(_OBJECT_INFO.items()):
    if _class_type in _skip:
        # Registering it would be ignored by ComfyUI's loader, but its display name would still
        # replace core's.
        continue
    NODE_CLASS_MAPPINGS[_class_type] = _make_node_class(_class_type, _info)
    NODE_DISPLAY_NAME_MAPPINGS[_class_type] = _info.get("display_name") or _class_type
if _skip & set(_OBJECT_INFO):
    log.info("wan-native: ComfyUI's own %s run in ComfyUI", ", ".join(sorted(_skip & set(_OBJECT_INFO))))
