"""Progress, interrupts, errors and logging, inside a stand-in ComfyUI and outside one."""

import logging
import os
import subprocess
import sys
import textwrap
import types

import pytest
import torch

from conftest import MODELS_DIR, SHIM_DIR, build_dir, run_prompt_like_comfyui, t2v_prompt


class FakeComfy:
    """The parts of comfy.utils and comfy.model_management the package uses."""

    def __init__(self, interrupt_at_step=None):
        self.updates = []
        self.interrupted = False
        fake = self

        class ProgressBar:
            def __init__(self, total, node_id=None):
                self.total, self.node_id, self.current = total, node_id, 0

            def update_absolute(self, value, total=None, preview=None):
                self.current = value
                fake.updates.append((self.node_id, value, total))
                if interrupt_at_step is not None and value >= interrupt_at_step:
                    fake.interrupted = True  # the user pressed Cancel during this step

        class InterruptProcessingException(Exception):
            pass

        def processing_interrupted():
            return fake.interrupted

        def throw_exception_if_processing_interrupted():
            if fake.interrupted:
                fake.interrupted = False
                raise InterruptProcessingException()

        self.comfy = types.ModuleType("comfy")
        self.utils = types.ModuleType("comfy.utils")
        self.utils.ProgressBar = ProgressBar
        self.mm = types.ModuleType("comfy.model_management")
        self.mm.InterruptProcessingException = InterruptProcessingException
        self.mm.processing_interrupted = processing_interrupted
        self.mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
        self.comfy.utils, self.comfy.model_management = self.utils, self.mm

    def install(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "comfy", self.comfy)
        monkeypatch.setitem(sys.modules, "comfy.utils", self.utils)
        monkeypatch.setitem(sys.modules, "comfy.model_management", self.mm)


@pytest.fixture(scope="module")
def upstream(pkg):
    """Loaded models and prompt embeddings of the T2V graph (nodes 1-5)."""
    prompt = t2v_prompt()
    outputs = {}
    for node_id in ("1", "2", "3"):
        node = prompt[node_id]
        cls = pkg.NODE_CLASS_MAPPINGS[node["class_type"]]
        outputs[node_id] = cls().execute(**node["inputs"])
    encode = pkg.NODE_CLASS_MAPPINGS["EncodePrompt"]()
    outputs["4"] = encode.execute(t5=outputs["1"][0], text=prompt["4"]["inputs"]["text"])
    outputs["5"] = encode.execute(t5=outputs["1"][0], text="")
    return outputs


def sample(pkg, upstream, steps, **hidden):
    return pkg.NODE_CLASS_MAPPINGS["Sample"]().execute(
        dit=upstream["3"][0], positive=upstream["4"][0], negative=upstream["5"][0], width=64,
        height=64, frames=5, seed=1, steps=steps, cfg=5.0, shift=5.0, solver="euler", **hidden)


def test_progress_goes_to_the_comfy_progress_bar_per_step(pkg, upstream, monkeypatch):
    fake = FakeComfy()
    fake.install(monkeypatch)
    latent = sample(pkg, upstream, steps=3, unique_id="42")[0]
    assert latent.shape == (16, 2, 8, 8)
    assert fake.updates == [("42", 1, 3), ("42", 2, 3), ("42", 3, 3)]


def test_comfy_interrupt_stops_sampling_at_the_next_step(pkg, upstream, monkeypatch):
    fake = FakeComfy(interrupt_at_step=2)
    fake.install(monkeypatch)
    with pytest.raises(fake.mm.InterruptProcessingException):
        sample(pkg, upstream, steps=6, unique_id="7")
    # Interrupted while step 2 was reported: no step after it ran.
    assert [u[1] for u in fake.updates] == [1, 2]


def test_interrupt_outside_comfyui_raises_interrupted(pkg, upstream, monkeypatch):
    monkeypatch.delitem(sys.modules, "comfy", raising=False)
    monkeypatch.delitem(sys.modules, "comfy.utils", raising=False)
    monkeypatch.delitem(sys.modules, "comfy.model_management", raising=False)
    steps = []

    def hook(step, total, node_id):
        steps.append(step)
        if step == 1:
            pkg.interrupt()  # the flag a UI thread would set

    monkeypatch.setattr(pkg, "progress_hook", hook)
    with pytest.raises(pkg.Interrupted):
        sample(pkg, upstream, steps=4)
    assert steps == [1]
    # The next run starts with the flag cleared.
    monkeypatch.setattr(pkg, "progress_hook", None)
    assert sample(pkg, upstream, steps=1)[0].shape == (16, 2, 8, 8)


def test_a_progress_callback_error_surfaces_as_itself(pkg, upstream, monkeypatch):
    def hook(step, total, node_id):
        raise KeyError("from the hook")

    monkeypatch.setattr(pkg, "progress_hook", hook)
    with pytest.raises(KeyError, match="from the hook"):
        sample(pkg, upstream, steps=3)


def test_native_errors_map_to_python_exceptions(pkg, upstream):
    load_vae = pkg.NODE_CLASS_MAPPINGS["LoadVAE"]()
    with pytest.raises(RuntimeError, match="missing_vae.pth"):
        load_vae.execute(model_name="missing_vae.pth", placement="cpu", dtype="fp32")
    with pytest.raises(ValueError, match="LoadVAE"):
        load_vae.execute(model_name="/etc/vae_tiny.pth", placement="cpu", dtype="fp32")
    with pytest.raises(ValueError, match="placement"):
        load_vae.execute(model_name="vae_tiny.pth", placement="nowhere", dtype="fp32")
    with pytest.raises(TypeError, match="WAN_DIT"):
        sample_cls = pkg.NODE_CLASS_MAPPINGS["Sample"]()
        sample_cls.execute(dit="not a model", positive=upstream["4"][0],
                           negative=upstream["5"][0], width=64, height=64, frames=5, seed=1,
                           steps=1, cfg=5.0, shift=5.0, solver="euler")


def test_out_of_memory_is_torch_out_of_memory_error():
    # A fresh process: the device budget is per process and set once.
    script = textwrap.dedent("""
        import sys, torch
        sys.path.insert(0, %r)
        from conftest import load_like_comfyui
        pkg = load_like_comfyui(%r)
        pkg.configure(models_dir=%r, device="auto", vram="1MiB", reserve="0")
        try:
            # 14 MiB of VAE weights onto a 1 MiB card.
            pkg.NODE_CLASS_MAPPINGS["LoadVAE"]().execute(
                model_name="vae_tiny.pth", placement="gpu", dtype="fp32")
        except torch.cuda.OutOfMemoryError as e:
            print("OOM:", e)
        else:
            print("no error")
    """) % (os.path.dirname(__file__), SHIM_DIR, MODELS_DIR)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, WAN_NATIVE_BUILD_DIR=build_dir()), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OOM:" in proc.stdout and "LoadVAE" in proc.stdout, proc.stdout


def test_native_logging_goes_to_python_logging(pkg, caplog):
    caplog.set_level(logging.INFO, logger="wan_native")
    pkg.NODE_CLASS_MAPPINGS["LoadVAE"]().execute(model_name="vae_tiny.pth", placement="cpu",
                                                  dtype="fp32")
    messages = [r.getMessage() for r in caplog.records if r.name == "wan_native"]
    assert any("vae_tiny.pth" in m for m in messages), messages


def test_missing_native_module_raises_import_error_saying_how_to_build(tmp_path, monkeypatch):
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        from conftest import load_like_comfyui
        try:
            load_like_comfyui(%r)
        except ImportError as e:
            print("ImportError:", e)
    """) % (os.path.dirname(__file__), SHIM_DIR)
    env = dict(os.environ, WAN_NATIVE_BUILD_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert "ImportError:" in proc.stdout and "cmake" in proc.stdout, proc.stdout + proc.stderr
