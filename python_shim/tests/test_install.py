"""Installs as ComfyUI users make them, and what the package registers inside ComfyUI."""

import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from conftest import MODELS_DIR, REPO_ROOT, SHIM_DIR, build_dir

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def native_module():
    found = glob.glob(os.path.join(build_dir(), "python_shim", "_wan_native*.so"))
    assert found, "the native module is not built in " + build_dir()
    return found[0]


def checkout_copy(root):
    """A checkout elsewhere: root __init__.py, python_shim/__init__.py and a build/ holding (a
    link to) the native module, as `cmake --build build` leaves it."""
    os.makedirs(os.path.join(root, "python_shim"))
    shutil.copy(os.path.join(REPO_ROOT, "__init__.py"), root)
    shutil.copy(os.path.join(SHIM_DIR, "__init__.py"), os.path.join(root, "python_shim"))
    os.makedirs(os.path.join(root, "build", "python_shim"))
    module = native_module()
    os.symlink(module, os.path.join(root, "build", "python_shim", os.path.basename(module)))
    return root


def run_in_fresh_python(script, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    env.pop("WAN_NATIVE_BUILD_DIR", None)  # found from the package's own (real) place
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, env=env, timeout=300, cwd=TESTS_DIR)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


LOAD = """
    import json, sys
    sys.path.insert(0, %r)
    from conftest import load_like_comfyui
    pkg = load_like_comfyui(%r)
    print(json.dumps(sorted(pkg.NODE_CLASS_MAPPINGS)))
"""


def test_a_symlink_in_custom_nodes_imports_and_finds_the_build_next_to_the_real_folder(tmp_path):
    checkout = checkout_copy(str(tmp_path / "wan-native"))
    custom_nodes = tmp_path / "ComfyUI" / "custom_nodes"
    custom_nodes.mkdir(parents=True)
    link = custom_nodes / "wan-native"
    os.symlink(os.path.join(checkout, "python_shim"), link)
    # ComfyUI imports custom_nodes/wan-native/__init__.py through the link; ../build from the
    # link's path would be custom_nodes/build, which does not exist.
    names = run_in_fresh_python(LOAD % (TESTS_DIR, str(link)))
    assert "Sample" in names and "LoadDiT" in names


def test_a_clone_of_the_repository_root_in_custom_nodes_imports(tmp_path):
    custom_nodes = tmp_path / "custom_nodes"
    custom_nodes.mkdir()
    clone = checkout_copy(str(custom_nodes / "wan-native"))
    names = run_in_fresh_python(LOAD % (TESTS_DIR, clone))
    assert "Sample" in names and "SaveTensor" in names


def test_the_registry_metadata_is_at_the_repository_root():
    with open(os.path.join(REPO_ROOT, "pyproject.toml")) as f:
        text = f.read()
    assert "[tool.comfy]" in text and 'name = "wan-native"' in text


INSIDE_COMFYUI = """
    import json, os, sys, types
    sys.path.insert(0, %(tests)r)
    # The modules ComfyUI has imported before it loads custom nodes: its registry (with its own
    # LoadImage, SaveVideo, ...) and folder_paths.
    nodes = types.ModuleType("nodes")
    nodes.NODE_CLASS_MAPPINGS = {n: object for n in ("LoadImage", "LoadVideo", "SaveVideo",
                                                      "ImageToMask", "SaveImage")}
    fp = types.ModuleType("folder_paths")
    fp.models_dir = %(models)r
    fp.folder_names_and_paths = {}
    def add_model_folder_path(name, path, is_default=False):
        paths = fp.folder_names_and_paths.setdefault(name, ([], set()))[0]
        if path not in paths:
            paths.insert(0, path) if is_default else paths.append(path)
    fp.add_model_folder_path = add_model_folder_path
    fp.get_folder_paths = lambda name: list(fp.folder_names_and_paths[name][0])
    fp.get_filename_list = lambda name: []
    fp.get_output_directory = lambda: %(out)r
    fp.get_input_directory = lambda: %(out)r
    sys.modules.update(nodes=nodes, folder_paths=fp)
    from conftest import load_like_comfyui
    pkg = load_like_comfyui(%(shim)r)
    print(json.dumps({"classes": sorted(pkg.NODE_CLASS_MAPPINGS),
                      "display": sorted(pkg.NODE_DISPLAY_NAME_MAPPINGS),
                      "core": pkg.CORE_NODES,
                      "tokenizers": fp.folder_names_and_paths.get("tokenizers", [[]])[0]}))
"""


def test_inside_comfyui_core_named_nodes_are_left_to_comfyui(tmp_path):
    got = run_in_fresh_python(INSIDE_COMFYUI % {
        "tests": TESTS_DIR, "models": MODELS_DIR, "out": str(tmp_path), "shim": SHIM_DIR})
    core_names = {"LoadImage", "LoadVideo", "SaveVideo", "ImageToMask", "SaveImage"}
    skipped = core_names | set(got["core"])
    # Neither the class (ComfyUI would ignore it) nor the display name (which would rename
    # ComfyUI's own node) is registered.
    assert not skipped & set(got["classes"]), skipped & set(got["classes"])
    assert not skipped & set(got["display"]), skipped & set(got["display"])
    assert not [n for n in got["classes"] if n.startswith("WanNative")]
    for pack_node in ("LoadDiT", "LoadT5", "LoadVAE", "Sample", "Decode", "SaveTensor"):
        assert pack_node in got["classes"]
    assert got["tokenizers"][0] == os.path.join(MODELS_DIR, "tokenizers")


def test_outside_comfyui_every_native_node_is_offered(pkg):
    # Plain Python builds whole pipelines, core-named nodes included.
    for name in pkg.CORE_NODES + ["LoadImage", "Sample"]:
        assert name in pkg.NODE_CLASS_MAPPINGS


def test_save_tensor_returns_comfyui_ui_shape(pkg, output_dir):
    result = pkg.NODE_CLASS_MAPPINGS["SaveTensor"]().execute(
        tensor=torch.zeros(1, 2, 3), filename_prefix="ui_shape")
    assert set(result) == {"ui", "result"} and result["result"] == ()
    (entry,) = result["ui"]["tensors"]
    assert entry["type"] == "output" and entry["filename"].startswith("ui_shape")
    assert entry["filename"].endswith(".safetensors")
    path = os.path.join(output_dir, entry["subfolder"], entry["filename"])
    assert os.path.isfile(path)


def test_rgba_images_lose_alpha_and_masks_resize_as_comfyui_wan_nodes_do(pkg):
    rgba = torch.rand(2, 8, 12, 4)
    mask = torch.rand(3, 4, 6)
    out = pkg._as_comfy_wan_inputs({"start_image": rgba, "control_masks": mask, "width": 24,
                                    "height": 16},
                                   {"start_image": "IMAGE", "control_masks": "MASK"})
    assert torch.equal(out["start_image"], rgba[..., :3])
    assert out["control_masks"].shape == (3, 16, 24)
    # Same aspect ratio: no crop, a plain bilinear resize (comfy.utils.common_upscale).
    expected = torch.nn.functional.interpolate(mask[:, None], size=(16, 24), mode="bilinear")
    assert torch.equal(out["control_masks"], expected[:, 0])


def test_an_rgba_start_image_is_taken_as_its_rgb(pkg):
    cls = pkg.NODE_CLASS_MAPPINGS
    vae = cls["LoadVAE"]().execute(model_name="vae_tiny.pth", placement="cpu", dtype="fp32")[0]
    clip = cls["LoadCLIPVision"]().execute(model_name="clip_tiny.pth", placement="cpu",
                                           dtype="fp32")[0]
    rgba = torch.cat([torch.rand(1, 32, 32, 3), torch.ones(1, 32, 32, 1)], dim=-1)
    inputs = dict(vae=vae, clip_vision=clip, width=32, height=32, frames=5)
    # The native node takes RGB only; the class drops alpha first, as ComfyUI's Wan nodes do.
    with pytest.raises(ValueError, match="IMAGE"):
        pkg._native.execute("ImageToVideo", dict(inputs, start_image=rgba))
    cond = cls["ImageToVideo"]().execute(start_image=rgba, **inputs)[0]
    assert cond.type == "WAN_COND"


def test_out_of_memory_message_names_no_wan_run_flag(pkg):
    text = ("LoadVAE (node 3): vgpu out of memory moving vae tensor 'w' (4 MiB asked, 0 B free "
            "of 1 MiB); the move was undone and vae stays in CPU memory; try placement=offload "
            "for vae, or a larger --vram")
    message = pkg._comfy_message(text)
    assert "--" not in message and "placement=offload" in message and "LoadVAE" in message


IN_COMFY_DEVICE = """
    import json, sys, types, torch
    sys.path.insert(0, %(tests)r)
    comfy = types.ModuleType("comfy")
    mm = types.ModuleType("comfy.model_management")
    mm.get_torch_device = lambda: torch.device("cpu")  # what ComfyUI's --cpu gives
    mm.processing_interrupted = lambda: False
    comfy.model_management = mm
    sys.modules.update({"comfy": comfy, "comfy.model_management": mm})
    from conftest import load_like_comfyui
    pkg = load_like_comfyui(%(shim)r)
    pkg.configure(models_dir=%(models)r)
    device = pkg._native.settings()["device"]
    import os
    os.environ["WAN_DEVICE"] = "cpu"  # with a budget: the counted virtual accelerator
    pkg.configure(models_dir=%(models)r, vram="1MiB", reserve="0")
    try:
        pkg.NODE_CLASS_MAPPINGS["LoadVAE"]().execute(model_name="vae_tiny.pth",
                                                     placement="gpu", dtype="fp32")
        error = None
    except torch.cuda.OutOfMemoryError as e:
        error = str(e)
    print(json.dumps({"device": device, "oom": error}))
"""


def test_inside_comfyui_the_device_is_comfyuis_and_oom_names_no_wan_run_flag():
    env = {"WAN_DEVICE": "", "WAN_VRAM": ""}
    got = run_in_fresh_python(IN_COMFY_DEVICE % {"tests": TESTS_DIR, "shim": SHIM_DIR,
                                                 "models": MODELS_DIR}, env)
    assert got["device"] == "cpu"
    assert got["oom"] and "LoadVAE" in got["oom"] and "--" not in got["oom"], got["oom"]


UNLOAD_IN_COMFYUI = """
    import json, os, sys, types, torch
    sys.path.insert(0, %(tests)r)
    comfy = types.ModuleType("comfy")
    mm = types.ModuleType("comfy.model_management")
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.processing_interrupted = lambda: False
    calls = []
    def free_memory(memory_required, device, keep_loaded=[]):  # ComfyUI unloads its own here
        calls.append(str(device))
    mm.free_memory = free_memory
    mm.get_free_memory = lambda device=None: 0
    mm.unload_all_models = lambda: mm.free_memory(1e30, mm.get_torch_device())
    comfy.model_management = mm
    nodes = types.ModuleType("nodes")
    nodes.NODE_CLASS_MAPPINGS = {}
    fp = types.ModuleType("folder_paths")
    fp.models_dir = %(models)r
    fp.folder_names_and_paths = {}
    fp.add_model_folder_path = lambda name, path, is_default=False: None
    fp.get_folder_paths = lambda name: [os.path.join(%(models)r, name)]
    fp.get_filename_list = lambda name: []
    fp.get_output_directory = lambda: %(out)r
    fp.get_input_directory = lambda: %(out)r
    sys.modules.update({"comfy": comfy, "comfy.model_management": mm, "nodes": nodes,
                        "folder_paths": fp})
    from conftest import load_like_comfyui
    pkg = load_like_comfyui(%(shim)r)
    # The counted virtual accelerator stands in for a CUDA card.
    pkg.configure(models_dir=%(models)r, device="cpu", vram="1GiB", reserve="0")
    before = pkg._native.settings()["bytes_in_use"]
    vae = pkg.NODE_CLASS_MAPPINGS["LoadVAE"]().execute(model_name="vae_tiny.pth",
                                                       placement="gpu", dtype="fp32")
    loaded = pkg._native.settings()["bytes_in_use"]
    mm.unload_all_models()  # what ComfyUI's "Unload models" (POST /free) ends in
    after = pkg._native.settings()["bytes_in_use"]
    print(json.dumps({"before": before, "loaded": loaded, "after": after, "calls": calls}))
"""


def test_comfyuis_unload_path_releases_idle_native_models(tmp_path):
    got = run_in_fresh_python(UNLOAD_IN_COMFYUI % {
        "tests": TESTS_DIR, "models": MODELS_DIR, "out": str(tmp_path), "shim": SHIM_DIR},
        {"WAN_DEVICE": "", "WAN_VRAM": ""})
    assert got["loaded"] > got["before"], got          # the VAE's weights sit on the device
    assert got["after"] == got["before"], got          # and ComfyUI's unload took them off
    assert got["calls"] == ["cpu"], got                # after ComfyUI unloaded its own models
