#!/usr/bin/env python3
"""Generates the shipped workflows: workflows/<task>/<config>.json in ComfyUI's UI format.

Four tasks (t2v, i2v, flf2v, vace) times four memory configurations (baseline, vae_cpu, t5_cpu,
vae_cpu_t5_cpu), plus an `auto` variant per task where the planner places every model = 20 files
that differ only where they must, so edit this script, not the JSON:

    python3 scripts/make_workflows.py            # rewrite workflows/
    python3 scripts/make_workflows.py --check    # exit 1 when a file differs from what it writes

widgets_values follow each node's schema (required widget inputs, then optional ones, with
Sample's control_after_generate value after seed); tests/runner/ checks that against the node
registry. Defaults are the official Wan2.1 ones (generate.py and wan/configs/).
"""
import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# wan/configs/shared_config.py; i2v adds a camera-shake term, flf2v a shot-cut term too.
NEGATIVE = ("色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
            "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
            "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走")

# generate.py's EXAMPLE_PROMPT and defaults: steps 50 (40 for i2v), shift 5.0 (3.0 for i2v at
# 480p, 16 for flf2v and vace), guide scale 5.0, 81 frames.
TASKS = {
    "t2v": {
        "title": "Wan2.1 text to video (t2v-1.3B)",
        "dit": "wan2.1_t2v_1.3B_fp16.safetensors",
        "prompt": "Two anthropomorphic cats in comfy boxing gear and bright gloves fight intensely "
                  "on a spotlighted stage.",
        "negative": NEGATIVE,
        "width": 832, "height": 480, "frames": 81, "steps": 50, "shift": 5.0, "cfg": 5.0,
    },
    "i2v": {
        "title": "Wan2.1 image to video (i2v-14B, 480p)",
        "dit": "wan2.1_i2v_480p_14B_fp16.safetensors",
        "prompt": "Summer beach vacation style, a white cat wearing sunglasses sits on a surfboard. "
                  "The fluffy-furred feline gazes directly at the camera with a relaxed expression. "
                  "Blurred beach scenery forms the background featuring crystal-clear waters, "
                  "distant green hills, and a blue sky dotted with white clouds. The cat assumes a "
                  "naturally relaxed posture, as if savoring the sea breeze and warm sunlight. A "
                  "close-up shot highlights the feline's intricate details and the refreshing "
                  "atmosphere of the seaside.",
        "negative": "镜头晃动，" + NEGATIVE,
        "width": 832, "height": 480, "frames": 81, "steps": 40, "shift": 3.0, "cfg": 5.0,
        "images": {"start_image": "i2v_input.png"},
    },
    "flf2v": {
        "title": "Wan2.1 first-last frame to video (flf2v-14B, 720p)",
        "dit": "wan2.1_flf2v_720p_14B_fp16.safetensors",
        "prompt": "CG动画风格，一只蓝色的小鸟从地面起飞，煽动翅膀。小鸟羽毛细腻，胸前有独特的花纹，背景是蓝天白云，"
                  "阳光明媚。镜跟随小鸟向上移动，展现出小鸟飞翔的姿态和天空的广阔。近景，仰视视角。",
        "negative": "镜头切换，镜头晃动，" + NEGATIVE,
        "width": 1280, "height": 720, "frames": 81, "steps": 50, "shift": 16.0, "cfg": 5.0,
        "images": {"start_image": "flf2v_first_frame.png", "end_image": "flf2v_last_frame.png"},
    },
    "vace": {
        "title": "Wan2.1 VACE (vace-1.3B)",
        "dit": "wan2.1_vace_1.3B_fp16.safetensors",
        "prompt": "在一个欢乐而充满节日气氛的场景中，穿着鲜艳红色春服的小女孩正与她的可爱卡通蛇嬉戏。她的春服上绣着金色"
                  "吉祥图案，散发着喜庆的气息，脸上洋溢着灿烂的笑容。蛇身呈现出亮眼的绿色，形状圆润，宽大的眼睛让它"
                  "显得既友善又幽默。小女孩欢快地用手轻轻抚摸着蛇的头部，共同享受着这温馨的时刻。周围五彩斑斓的灯笼"
                  "和彩带装饰着环境，阳光透过洒在她们身上，营造出一个充满友爱与幸福的新年氛围。",
        "negative": NEGATIVE,
        "width": 832, "height": 480, "frames": 81, "steps": 50, "shift": 16.0, "cfg": 5.0,
        "control_video": "vace_control/*.png",
        "control_masks": "vace_masks/*.png",
        "reference_image": "vace_reference.png",
    },
}

# Placements per configuration; the DiT is offloaded in the four of Wan's generate.py
# (--offload_model), and every model is the planner's choice in `auto`.
CONFIGS = {
    "baseline": {"t5": "offload", "vae": "gpu"},
    "vae_cpu": {"t5": "offload", "vae": "offload"},
    "t5_cpu": {"t5": "cpu", "vae": "gpu"},
    "vae_cpu_t5_cpu": {"t5": "cpu", "vae": "offload"},
    # Every loader left to the planner (wan-run picks for the budget and says why).
    "auto": {"t5": "auto", "vae": "auto", "dit": "auto", "clip": "auto"},
}

T5_FILE = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
VAE_FILE = "wan_2.1_vae.safetensors"
CLIP_FILE = "clip_vision_h.safetensors"

# Socket inputs ([name, type, optional]) and outputs ([name, type]) per node type, as the
# schemas in nodes/ declare them (ComfyUI core's own for the core nodes).
SOCKETS = {
    "LoadDiT": ([], [("dit", "WAN_DIT")]),
    "LoadT5": ([], [("t5", "WAN_T5")]),
    "LoadVAE": ([], [("vae", "WAN_VAE")]),
    "LoadCLIPVision": ([], [("clip_vision", "WAN_CLIP_VISION")]),
    "EncodePrompt": ([("t5", "WAN_T5", False)], [("text", "WAN_TEXT")]),
    "LoadImage": ([], [("IMAGE", "IMAGE"), ("MASK", "MASK")]),
    "WanLoadImageFrames": ([], [("images", "IMAGE")]),
    "ImageToMask": ([("image", "IMAGE", False)], [("MASK", "MASK")]),
    "ImageToVideo": ([("vae", "WAN_VAE", False), ("clip_vision", "WAN_CLIP_VISION", False),
                      ("start_image", "IMAGE", False)], [("cond", "WAN_COND")]),
    "FirstLastFrameToVideo": ([("vae", "WAN_VAE", False),
                               ("clip_vision", "WAN_CLIP_VISION", False),
                               ("start_image", "IMAGE", False), ("end_image", "IMAGE", False)],
                              [("cond", "WAN_COND")]),
    "VaceToVideo": ([("vae", "WAN_VAE", False), ("control_video", "IMAGE", True),
                     ("control_masks", "MASK", True), ("reference_image", "IMAGE", True),
                     ("reference_image_2", "IMAGE", True), ("reference_image_3", "IMAGE", True)],
                    [("cond", "WAN_COND")]),
    "Sample": ([("dit", "WAN_DIT", False), ("positive", "WAN_TEXT", False),
                ("negative", "WAN_TEXT", False), ("cond", "WAN_COND", True)],
               [("latent", "WAN_LATENT")]),
    "Decode": ([("vae", "WAN_VAE", False), ("latent", "WAN_LATENT", False)],
               [("images", "IMAGE")]),
    "CreateVideo": ([("images", "IMAGE", False), ("audio", "AUDIO", True)], [("VIDEO", "VIDEO")]),
    "SaveVideo": ([("video", "VIDEO", False)], []),
    "PreviewImage": ([("images", "IMAGE", False)], []),
}

# ComfyUI core nodes (ComfyUI runs its own; wan-run has them natively) and the pack's nodes, as
# the registry knows them: properties.cnr_id / ver, which ComfyUI writes into every workflow.
CORE_NODES = {"LoadImage", "ImageToMask", "CreateVideo", "SaveVideo", "PreviewImage"}
CORE_ID = {"cnr_id": "comfy-core", "ver": "0.3.64"}
PACK_ID = {"cnr_id": "wan-native", "ver": "0.2.0"}

GROUP_COLORS = {"Models": "#3f789e", "Prompts": "#8A8", "Inputs": "#b58b2a",
                "Conditioning": "#a1309b", "Sampling": "#88A", "Output": "#b06634"}
NODE_WIDTH = 340


class Graph:
    def __init__(self):
        self.nodes, self.links, self.groups = [], [], []

    def add(self, node_type, pos, widgets, title=None, width=NODE_WIDTH, text_height=0):
        inputs, outputs = SOCKETS[node_type]
        node = {
            "id": len(self.nodes) + 1,
            "type": node_type,
            "pos": list(pos),
            # Title bar excluded, as LiteGraph stores it: rows of sockets, then widgets.
            "size": [width, 10 + 22 * max(len(inputs), len(outputs)) + 26 * len(widgets)
                     + text_height],
            "flags": {},
            "order": 0,
            "mode": 0,
            "inputs": [dict({"name": n, "type": t, "link": None}, **({"shape": 7} if opt else {}))
                       for n, t, opt in inputs],
            "outputs": [{"name": n, "type": t, "links": [], "slot_index": i}
                        for i, (n, t) in enumerate(outputs)],
            "properties": dict(CORE_ID if node_type in CORE_NODES else PACK_ID,
                               **{"Node name for S&R": node_type}),
            "widgets_values": widgets,
        }
        if title:
            node["title"] = title
        self.nodes.append(node)
        return node

    def link(self, src, src_name, dst, dst_name):
        out_slot = next(i for i, o in enumerate(src["outputs"]) if o["name"] == src_name)
        in_slot = next(i for i, o in enumerate(dst["inputs"]) if o["name"] == dst_name)
        link_id = len(self.links) + 1
        link_type = src["outputs"][out_slot]["type"]
        self.links.append([link_id, src["id"], out_slot, dst["id"], in_slot, link_type])
        src["outputs"][out_slot]["links"].append(link_id)
        dst["inputs"][in_slot]["link"] = link_id

    def group(self, title, nodes, pad=30):
        left = min(n["pos"][0] for n in nodes) - pad
        top = min(n["pos"][1] for n in nodes) - pad - 50  # room for the group and node titles
        right = max(n["pos"][0] + n["size"][0] for n in nodes) + pad
        bottom = max(n["pos"][1] + n["size"][1] for n in nodes) + pad
        self.groups.append({"title": title, "bounding": [left, top, right - left, bottom - top],
                            "color": GROUP_COLORS[title], "font_size": 24, "flags": {}})

    def finish(self):
        # Execution order as the frontend would compute it: a node after everything it reads.
        order, placed = {}, set()
        while len(placed) < len(self.nodes):
            for node in self.nodes:
                if node["id"] in placed:
                    continue
                sources = [l[1] for l in self.links if l[3] == node["id"]]
                if all(s in placed for s in sources):
                    order[node["id"]] = len(placed)
                    placed.add(node["id"])
        for node in self.nodes:
            node["order"] = order[node["id"]]
            for out in node["outputs"]:
                if not out["links"]:
                    out["links"] = None


def column(index):
    return 40 + index * 420


def build(task, config):
    spec, placements = TASKS[task], CONFIGS[config]
    g = Graph()
    # Column 0: models.
    y = 80
    # auto leaves every memory choice to the planner: placements, the DiT blocks kept resident
    # while streaming, where VACE activations wait, and the VAE tiles (-1, "auto"); the other
    # configurations fix them (0: every block streams when streaming, VACE activations stay on
    # the device, untiled VAE).
    planned = -1 if config == "auto" else 0
    vace_activations = "auto" if config == "auto" else "device"
    dit = g.add("LoadDiT", (column(0), y),
                [spec["dit"], placements.get("dit", "offload"), "as_stored", "bf16", planned,
                 vace_activations])
    y += dit["size"][1] + 60
    t5 = g.add("LoadT5", (column(0), y), [T5_FILE, "from_checkpoint", placements["t5"], "bf16"])
    y += t5["size"][1] + 60
    vae = g.add("LoadVAE", (column(0), y), [VAE_FILE, placements["vae"], "fp32"])
    models = [dit, t5, vae]
    clip = None
    if task in ("i2v", "flf2v"):
        y += vae["size"][1] + 60
        clip = g.add("LoadCLIPVision", (column(0), y),
                     [CLIP_FILE, placements.get("clip", "offload"), "fp16"])
        models.append(clip)

    # Column 1: prompts, then the image/video inputs below them.
    y = 80
    positive = g.add("EncodePrompt", (column(1), y), [spec["prompt"]], title="positive",
                     text_height=140)
    y += positive["size"][1] + 60
    negative = g.add("EncodePrompt", (column(1), y), [spec["negative"]], title="negative",
                     text_height=140)
    y += negative["size"][1] + 110
    g.link(t5, "t5", positive, "t5")
    g.link(t5, "t5", negative, "t5")
    prompts = [positive, negative]

    size = [spec["width"], spec["height"], spec["frames"]]
    inputs, cond_nodes = [], []
    cond = None
    if task in ("i2v", "flf2v"):
        cond_type = "ImageToVideo" if task == "i2v" else "FirstLastFrameToVideo"
        # tile_size, overlap 64.
        cond = g.add(cond_type, (column(2), 80), size + [planned, 64])
        g.link(vae, "vae", cond, "vae")
        g.link(clip, "clip_vision", cond, "clip_vision")
        for socket, name in spec["images"].items():
            title = {"start_image": "start image", "end_image": "end image"}[socket]
            image = g.add("LoadImage", (column(1), y), [name, "image"], title=title)
            y += image["size"][1] + 60
            g.link(image, "IMAGE", cond, socket)
            inputs.append(image)
    elif task == "vace":
        cond = g.add("VaceToVideo", (column(2), 80), size + [1.0, planned, 64])
        g.link(vae, "vae", cond, "vae")
        video = g.add("WanLoadImageFrames", (column(1), y), [spec["control_video"], 0],
                      title="control video")
        y += video["size"][1] + 60
        masks = g.add("WanLoadImageFrames", (column(1), y), [spec["control_masks"], 0],
                      title="control masks")
        y += masks["size"][1] + 60
        to_mask = g.add("ImageToMask", (column(1), y), ["red"])
        y += to_mask["size"][1] + 60
        reference = g.add("LoadImage", (column(1), y), [spec["reference_image"], "image"],
                          title="reference image")
        g.link(video, "images", cond, "control_video")
        g.link(masks, "images", to_mask, "image")
        g.link(to_mask, "MASK", cond, "control_masks")
        g.link(reference, "IMAGE", cond, "reference_image")
        inputs += [video, masks, to_mask, reference]
    if cond:
        cond_nodes.append(cond)

    # Sampling, then decoding and saving, further right.
    sample_col = column(3) if cond else column(2)
    sample = g.add("Sample", (sample_col, 80),
                   size + [0, "fixed", spec["steps"], spec["cfg"], spec["shift"], "unipc"])
    g.link(dit, "dit", sample, "dit")
    g.link(positive, "text", sample, "positive")
    g.link(negative, "text", sample, "negative")
    if cond:
        g.link(cond, "cond", sample, "cond")
    # tile_size (overlap 64 applies only when tiled).
    decode = g.add("Decode", (sample_col + 420, 80), [planned, 64], width=260)
    # ComfyUI's video output: frames -> VIDEO at Wan's 16 fps -> MP4, and a preview of the frames.
    create = g.add("CreateVideo", (sample_col + 420, 80 + decode["size"][1] + 80), [16.0],
                   width=260)
    save = g.add("SaveVideo", (sample_col + 420, create["pos"][1] + create["size"][1] + 80),
                 ["video/wan_" + task, "auto", "auto"], width=300)
    preview = g.add("PreviewImage", (sample_col + 800, 80), [], width=300, text_height=240)
    g.link(vae, "vae", decode, "vae")
    g.link(sample, "latent", decode, "latent")
    g.link(decode, "images", create, "images")
    g.link(create, "VIDEO", save, "video")
    g.link(decode, "images", preview, "images")

    g.group("Models", models)
    g.group("Prompts", prompts)
    if inputs:
        g.group("Inputs", inputs)
    if cond_nodes:
        g.group("Conditioning", cond_nodes)
    g.group("Sampling", [sample])
    g.group("Output", [decode, create, save, preview])
    g.finish()
    return {
        "last_node_id": len(g.nodes),
        "last_link_id": len(g.links),
        "nodes": g.nodes,
        "links": g.links,
        "groups": g.groups,
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [0, 0]},
                  "wan": {"task": task, "config": config, "title": spec["title"],
                          "placements": {**placements, "dit": placements.get("dit", "offload")}}},
        "version": 0.4,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "workflows"))
    parser.add_argument("--check", action="store_true",
                        help="compare with the files instead of writing them")
    args = parser.parse_args()
    stale = []
    for task in TASKS:
        for config in CONFIGS:
            path = os.path.join(args.out, task, config + ".json")
            text = json.dumps(build(task, config), indent=2, ensure_ascii=False) + "\n"
            if args.check:
                try:
                    with open(path, encoding="utf-8") as f:
                        if f.read() != text:
                            stale.append(path)
                except FileNotFoundError:
                    stale.append(path)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("out of date (run scripts/make_workflows.py):\n  " + "\n  ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
