"""Checks the pack inside a real ComfyUI on the tiny models (run by scripts/comfyui_check.sh).

Starts ComfyUI (--cpu, 127.0.0.1, a free port, every folder in a scratch directory), then checks
/object_info, queues each shipped workflow through /prompt and compares its frames with wan-run's,
interrupts a run, drives the frontend in headless Chromium, and (in a second ComfyUI with a tiny
memory budget) checks an out-of-memory error. One line per check; exit 1 when any fails.
"""

import argparse
import asyncio
import glob
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import aiohttp
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workflow_api  # noqa: E402

TASKS = ("t2v", "i2v", "flf2v", "vace")
CONFIGS = ("baseline", "vae_cpu", "t5_cpu", "vae_cpu_t5_cpu", "auto")
TINY_SIZE = {"i2v": (64, 48, 9), "flf2v": (32, 32, 9)}
# Every loader's placement combo offers at least these (LoadDiT adds "stream").
PLACEMENT = ["gpu", "cpu", "offload", "auto"]

results = []


def report(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""),
          flush=True)


def tiny_overrides(task, steps=2):
    """The --set list the runner tests use (tests/runner/runner_test_util.h, fp32), with the
    input files named as ComfyUI's input folder holds them."""
    width, height, frames = TINY_SIZE.get(task, (64, 64, 9))
    sets = ["LoadDiT.model_name=dit_%s_tiny.safetensors" % task,
            "LoadT5.model_name=t5_tiny_encoder.pth", "LoadT5.tokenizer=wan_tiny",
            "LoadVAE.model_name=vae_tiny.pth", "Sample.steps=%d" % steps,
            "LoadT5.dtype=fp32", "LoadDiT.weight_dtype=fp32", "LoadDiT.compute_dtype=fp32"]
    sized = ["Sample"] + {"i2v": ["ImageToVideo"], "flf2v": ["FirstLastFrameToVideo"],
                          "vace": ["VaceToVideo"]}.get(task, [])
    for node in sized:
        sets += ["%s.width=%d" % (node, width), "%s.height=%d" % (node, height),
                 "%s.frames=%d" % (node, frames)]
    if task in ("i2v", "flf2v"):
        sets += ["LoadCLIPVision.model_name=clip_tiny.pth", "LoadCLIPVision.dtype=fp32"]
    if task == "i2v":
        sets.append("start image.image=i2v_image.png")
    if task == "flf2v":
        sets += ["start image.image=flf2v_first.png", "end image.image=flf2v_last.png"]
    if task == "vace":
        sets += ["control video.frames=vace_src_frame_*.png",
                 "control masks.frames=vace_src_mask_*.png", "reference image.image=vace_ref.png"]
    return sets


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Comfy:
    """A ComfyUI process in its own process group, stopped by stop() (or the shell's trap)."""

    def __init__(self, args, name, env_extra):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        root = os.path.join(args.work, name)
        self.dirs = {k: os.path.join(root, k) for k in ("output", "temp", "user")}
        for path in self.dirs.values():
            os.makedirs(path, exist_ok=True)
        self.log_path = os.path.join(args.work, name + ".log")
        env = dict(os.environ, **env_extra)
        env.pop("WAN_NATIVE_BUILD_DIR", None)  # the pack finds build/ next to its real path
        cmd = [args.python, os.path.join(args.comfyui, "main.py"), "--cpu",
               "--listen", "127.0.0.1", "--port", str(self.port), "--disable-auto-launch",
               "--output-directory", self.dirs["output"], "--input-directory", args.input_dir,
               "--temp-directory", self.dirs["temp"], "--user-directory", self.dirs["user"],
               "--database-url", "sqlite:///:memory:",
               "--extra-model-paths-config", args.model_paths]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=args.comfyui, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        with open(os.path.join(args.work, "pids"), "a") as f:
            f.write("%d\n" % self.proc.pid)

    async def wait_ready(self, session, seconds=240):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                async with session.get(self.url + "/system_stats") as r:
                    if r.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(1)
        return False

    def log_tail(self, lines=15):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


async def queue(session, comfy, prompt, workflow=None, on_progress=None, seconds=600):
    """Queues an API prompt and follows /ws until it ends.

    Returns (outcome, prompt_id, detail): outcome is 'success', 'error', 'interrupted',
    'rejected' or 'timeout'; detail the error message data or the /prompt error."""
    client_id = uuid.uuid4().hex
    async with session.ws_connect("%s/ws?clientId=%s" % (comfy.url, client_id),
                                  max_msg_size=0) as ws:
        body = {"prompt": prompt, "client_id": client_id}
        if workflow is not None:
            body["extra_data"] = {"extra_pnginfo": {"workflow": workflow}}
        async with session.post(comfy.url + "/prompt", json=body) as r:
            answer = await r.json(content_type=None)
            if r.status != 200:
                return "rejected", None, answer
        prompt_id = answer["prompt_id"]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                msg = await ws.receive(timeout=max(1.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return "error", prompt_id, {"exception_message": "websocket closed"}
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue  # binary previews
            event = json.loads(msg.data)
            data = event.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            kind = event.get("type")
            if kind == "progress" and on_progress is not None:
                await on_progress(data)
            elif kind == "execution_success":
                return "success", prompt_id, data
            elif kind == "execution_error":
                return "error", prompt_id, data
            elif kind == "execution_interrupted":
                return "interrupted", prompt_id, data
        return "timeout", prompt_id, {}


async def fetch_frames(session, comfy, prompt_id):
    """Every PNG image the prompt's output nodes show (/history, then /view), in node order, as
    uint8 arrays."""
    # ComfyUI files the history entry just after it reports execution_success.
    for _ in range(100):
        async with session.get("%s/history/%s" % (comfy.url, prompt_id)) as r:
            history = (await r.json()).get(prompt_id)
        if history is not None:
            break
        await asyncio.sleep(0.1)
    else:
        raise RuntimeError("/history has no entry for %s after 10 s" % prompt_id)
    frames = []
    for node_id in sorted(history["outputs"], key=lambda k: (len(k), k)):
        for image in history["outputs"][node_id].get("images", []):
            if not image["filename"].endswith(".png"):
                continue  # SaveVideo lists its video under "images" too
            async with session.get(comfy.url + "/view", params=image) as r:
                if r.status != 200:
                    raise RuntimeError("/view %s: HTTP %d" % (image, r.status))
                frames.append(np.array(Image.open(io.BytesIO(await r.read())).convert("RGB")))
    return frames, history


def wan_run_frames(args, workflow_path, sets, out_dir):
    """Runs wan-run on the shipped workflow with the same overrides; its PNG frames."""
    cmd = [args.wan_run, workflow_path, "--models", args.models, "--input", args.input_dir,
           "--output", out_dir, "--device", "cpu"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=args.input_dir, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError("wan-run exit %d: %s" % (proc.returncode, proc.stderr[-600:]))
    paths = sorted(glob.glob(os.path.join(out_dir, "**", "*.png"), recursive=True))
    return [np.array(Image.open(p).convert("RGB")) for p in paths]


def check_object_info(info, pack_nodes, native_info):
    """Every pack node is in ComfyUI's /object_info, each loader with wan-run's placement combo."""
    missing = [n for n in pack_nodes if n not in info]
    if missing:
        return False, "missing " + ", ".join(missing)
    loaders = [n for n in pack_nodes if "placement" in info[n]["input"].get("required", {})]
    combo = lambda i, n: i[n]["input"]["required"]["placement"][0]
    bad = [n for n in loaders
           if combo(info, n) != combo(native_info, n) or not set(PLACEMENT) <= set(combo(info, n))]
    if not loaders or bad:
        return False, "placement combos differ on %s" % (bad or "every loader (none found)")
    return True, "%d pack nodes, placement %s on %s" % (
        len(pack_nodes), "/".join(combo(info, loaders[0])), ", ".join(sorted(loaders)))


async def run_workflows(args, session, comfy, info):
    # WAN_CHECK_WORKFLOWS="t2v/baseline vace/t5_cpu" runs only those (while developing).
    only = os.environ.get("WAN_CHECK_WORKFLOWS", "").split()
    for task in TASKS:
        for config in CONFIGS:
            name = "queue %s/%s" % (task, config)
            if only and "%s/%s" % (task, config) not in only:
                continue
            path = os.path.join(args.repo, "workflows", task, config + ".json")
            with open(path) as f:
                ui = json.load(f)
            sets = tiny_overrides(task)
            try:
                prompt = workflow_api.apply_overrides(workflow_api.to_api(ui, info), sets)
            except workflow_api.WorkflowError as e:
                report(name, False, "cannot convert: %s" % e)
                continue
            outcome, prompt_id, detail = await queue(session, comfy, prompt, workflow=ui)
            if outcome != "success":
                report(name, False, "%s: %s" % (outcome, json.dumps(detail)[:400]))
                continue
            frames, _ = await fetch_frames(session, comfy, prompt_id)
            out_dir = os.path.join(args.work, "wan-run", task, config)
            try:
                expected = wan_run_frames(args, path, sets, out_dir)
            except Exception as e:  # noqa: BLE001  (reported as the check's failure)
                report(name, False, "wan-run: %s" % e)
                continue
            same = len(frames) == len(expected) and len(frames) > 0 and all(
                a.shape == b.shape and np.array_equal(a, b) for a, b in zip(frames, expected))
            report(name, same, "%d frames %s wan-run's (%d)" % (
                len(frames), "bit-identical to" if same else "differ from", len(expected)))


async def check_interrupt(session, comfy, info):
    with open(os.path.join(ARGS.repo, "workflows", "t2v", "baseline.json")) as f:
        ui = json.load(f)
    sets = tiny_overrides("t2v", steps=200)
    prompt = workflow_api.apply_overrides(workflow_api.to_api(ui, info), sets)
    sent = []

    async def on_progress(data):
        if not sent:
            sent.append(data)
            async with session.post(comfy.url + "/interrupt", json={}) as r:
                await r.read()

    outcome, _, detail = await queue(session, comfy, prompt, on_progress=on_progress,
                                     seconds=300)
    ok = outcome == "interrupted" and bool(sent)
    node = detail.get("node_type", "?") if isinstance(detail, dict) else "?"
    report("interrupt mid-sampling", ok,
           "%s at %s after step %s" % (outcome, node, sent[0].get("value") if sent else "none"))


async def check_oom(session, comfy, info):
    with open(os.path.join(ARGS.repo, "workflows", "t2v", "baseline.json")) as f:
        ui = json.load(f)
    sets = tiny_overrides("t2v") + ["LoadVAE.placement=gpu"]
    prompt = workflow_api.apply_overrides(workflow_api.to_api(ui, info), sets)
    outcome, _, detail = await queue(session, comfy, prompt, seconds=300)
    kind = detail.get("exception_type", "") if isinstance(detail, dict) else ""
    message = detail.get("exception_message", "") if isinstance(detail, dict) else ""
    ok = outcome == "error" and kind.endswith("OutOfMemoryError") and "--" not in message
    report("out-of-memory on a 1 MiB budget", ok,
           "%s %s: %s" % (outcome, kind, message.strip().splitlines()[0][:200] if message else ""))


def check_frontend(args, comfy, info):
    path = os.path.join(args.repo, "workflows", "t2v", "baseline.json")
    sets = tiny_overrides("t2v")
    profile = os.path.join(args.work, "chromium-profile")
    cmd = ["node", os.path.join(os.path.dirname(os.path.abspath(__file__)), "frontend.js"),
           comfy.url, path, json.dumps(sets), args.screenshot, profile]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=420)
    except subprocess.TimeoutExpired:
        report("frontend queue in headless Chromium", False, "timed out after 420 s")
        return
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    report("frontend queue in headless Chromium", proc.returncode == 0,
           last if proc.returncode == 0 else (last + " " + proc.stderr[-400:]).strip())


async def main_async(args):
    pack_nodes = json.loads(subprocess.run(
        [args.wan_run, "--object-info"], capture_output=True, text=True, check=True,
        timeout=120).stdout)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:
        comfy = Comfy(args, "comfyui", {})
        try:
            ready = await comfy.wait_ready(session)
            report("ComfyUI starts with the pack (--cpu, port %d)" % comfy.port, ready,
                   "" if ready else comfy.log_tail())
            if not ready:
                return
            async with session.get(comfy.url + "/object_info") as r:
                info = await r.json()
            # Pack nodes: wan-run's nodes that are not ComfyUI core nodes.
            core_modules = ("nodes", "comfy_extras", "comfy_api")
            expected = [n for n, node in pack_nodes.items()
                        if not (node.get("comfy_core") or node.get("python_module", "")
                                .startswith(core_modules))
                        and not info.get(n, {}).get("python_module", "").startswith(core_modules)]
            ok, detail = check_object_info(info, expected, pack_nodes)
            foreign = [n for n in expected if n in info and not info[n].get(
                "python_module", "").startswith("custom_nodes")]
            report("/object_info has every pack node", ok and not foreign,
                   detail if not foreign else "not from the pack: " + ", ".join(foreign))
            await run_workflows(args, session, comfy, info)
            await check_interrupt(session, comfy, info)
            check_frontend(args, comfy, info)
        finally:
            comfy.stop()
        budget = Comfy(args, "comfyui-1MiB", {"WAN_DEVICE": "cpu", "WAN_VRAM": "1MiB",
                                              "WAN_RESERVE": "0"})
        try:
            if await budget.wait_ready(session):
                await check_oom(session, budget, info)
            else:
                report("out-of-memory on a 1 MiB budget", False, budget.log_tail())
        finally:
            budget.stop()
        left = [c.proc.pid for c in (comfy, budget) if c.proc.poll() is None]
        report("ComfyUI stopped, nothing left running", not left, "" if not left else str(left))


ARGS = None


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    for name in ("comfyui", "repo", "work", "python", "wan-run", "models", "input-dir",
                 "model-paths", "screenshot"):
        parser.add_argument("--" + name, required=True)
    ARGS = parser.parse_args()
    asyncio.run(main_async(ARGS))
    failed = results.count(False)
    print("%d passed, %d failed" % (results.count(True), failed), flush=True)
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
