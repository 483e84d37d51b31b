"""Fixtures: the package loaded the way ComfyUI loads a custom node, configured on the tiny models.

Run with: WAN_NATIVE_BUILD_DIR=<build> /usr/bin/python3 -m pytest -q python_shim/tests
"""

import importlib.util
import json
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch

SHIM_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_ROOT = os.path.dirname(SHIM_DIR)
MODELS_DIR = os.path.join(REPO_ROOT, "tests", "data", "models")
INPUTS_DIR = os.path.join(REPO_ROOT, "tests", "data", "wan-tiny", "inputs")


def build_dir():
    path = os.environ.get("WAN_NATIVE_BUILD_DIR")
    assert path, "set WAN_NATIVE_BUILD_DIR to the CMake build folder holding python_shim/_wan_native*"
    return os.path.abspath(path)


def load_like_comfyui(module_path):
    """nodes.load_custom_node: the folder's __init__.py under a generated module name."""
    sys_module_name = module_path.replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(
        sys_module_name, os.path.join(module_path, "__init__.py"),
        submodule_search_locations=[module_path])
    module = importlib.util.module_from_spec(spec)
    sys.modules[sys_module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def output_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("wan_output"))


@pytest.fixture(scope="session")
def pkg(output_dir):
    module = load_like_comfyui(SHIM_DIR)
    module.configure(models_dir=MODELS_DIR, output_dir=output_dir, input_dir=INPUTS_DIR,
                     device="cpu")
    return module


@pytest.fixture(scope="session")
def wan_run():
    path = os.path.join(build_dir(), "wan-run")
    assert os.path.isfile(path), "wan-run is not built at " + path
    return path


def run_wan_run(wan_run, prompt, workdir, output_dir, *extra):
    """Runs an API prompt through wan-run on the tiny models, CPU; returns the process."""
    workflow = os.path.join(workdir, "prompt.json")
    with open(workflow, "w") as f:
        json.dump(prompt, f)
    return subprocess.run(
        [wan_run, workflow, "--models", MODELS_DIR, "--input", INPUTS_DIR, "--output", output_dir,
         "--device", "cpu",
         *extra],
        cwd=INPUTS_DIR, capture_output=True, text=True, timeout=600)


def read_safetensors(path):
    """{key: tensor} from a float32 safetensors file (the format SaveTensor writes)."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    base = 8 + header_len
    out = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        assert entry["dtype"] == "F32", entry
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=np.float32)
        out[key] = torch.from_numpy(array.reshape(entry["shape"]).copy())
    return out


def read_png_rgb(path):
    """An 8-bit RGB/RGBA, non-interlaced PNG as uint8 [H, W, C] (what PIL would give)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1)
        line = line.astype(np.int32)
        cur = np.zeros(stride, dtype=np.int32)
        for x in range(stride):
            a = cur[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + pred) & 0xFF
        out[y] = cur
        prev = cur
    return out.reshape(height, width, channels)


def run_prompt_like_comfyui(pkg, prompt):
    """Calls each node class's FUNCTION in dependency order, as ComfyUI's executor does.

    Returns {node_id: outputs tuple}."""
    outputs = {}
    visiting = set()

    def run(node_id):
        if node_id in outputs:
            return
        assert node_id not in visiting, "cycle at node " + node_id
        visiting.add(node_id)
        node = prompt[node_id]
        cls = pkg.NODE_CLASS_MAPPINGS[node["class_type"]]
        declared = cls.INPUT_TYPES()
        kwargs = {}
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                run(value[0])
                kwargs[name] = outputs[value[0]][value[1]]
            else:
                kwargs[name] = value
        if "unique_id" in declared.get("hidden", {}):
            kwargs["unique_id"] = node_id
        if "prompt" in declared.get("hidden", {}):
            kwargs["prompt"] = prompt
        outputs[node_id] = getattr(cls(), cls.FUNCTION)(**kwargs)

    for node_id, node in prompt.items():
        if pkg.NODE_CLASS_MAPPINGS[node["class_type"]].OUTPUT_NODE:
            run(node_id)
    return outputs


def t2v_prompt(prefix="t2v", steps=2, width=64, height=64, frames=5):
    return {
        "1": {"class_type": "LoadT5",
              "inputs": {"model_name": "t5_tiny_encoder.pth", "tokenizer": "wan_tiny",
                         "placement": "cpu", "dtype": "fp32"}},
        "2": {"class_type": "LoadVAE",
              "inputs": {"model_name": "vae_tiny.pth", "placement": "gpu", "dtype": "fp32"}},
        "3": {"class_type": "LoadDiT",
              "inputs": {"model_name": "dit_t2v_tiny.safetensors", "placement": "offload",
                         "weight_dtype": "as_stored", "compute_dtype": "fp32"}},
        "4": {"class_type": "EncodePrompt", "_meta": {"title": "positive"},
              "inputs": {"t5": ["1", 0], "text": "The red disc rolls slowly to the right."}},
        "5": {"class_type": "EncodePrompt", "_meta": {"title": "negative"},
              "inputs": {"t5": ["1", 0], "text": ""}},
        "6": {"class_type": "Sample",
              "inputs": {"dit": ["3", 0], "positive": ["4", 0], "negative": ["5", 0],
                         "width": width, "height": height, "frames": frames, "seed": 123,
                         "steps": steps, "cfg": 5.0, "shift": 5.0, "solver": "unipc"}},
        "7": {"class_type": "Decode", "inputs": {"vae": ["2", 0], "latent": ["6", 0]}},
        "8": {"class_type": "SaveTensor",
              "inputs": {"tensor": ["7", 0], "filename_prefix": prefix}},
    }


def i2v_prompt(prefix="i2v", width=64, height=64, frames=5):
    prompt = t2v_prompt(prefix, width=width, height=height, frames=frames)
    prompt["3"]["inputs"]["model_name"] = "dit_i2v_tiny.safetensors"
    prompt["9"] = {"class_type": "LoadCLIPVision",
                   "inputs": {"model_name": "clip_tiny.pth", "placement": "cpu",
                              "dtype": "fp32"}}
    prompt["10"] = {"class_type": "LoadImage", "inputs": {"image": "i2v_image.png"}}
    prompt["11"] = {"class_type": "ImageToVideo",
                    "inputs": {"vae": ["2", 0], "clip_vision": ["9", 0],
                               "start_image": ["10", 0], "width": width, "height": height,
                               "frames": frames}}
    prompt["6"]["inputs"]["cond"] = ["11", 0]
    return prompt
