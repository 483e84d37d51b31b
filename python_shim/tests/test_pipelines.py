"""T2V and I2V through the Python node classes give the frames wan-run gives, bit for bit."""

import glob
import os

import numpy as np
import torch

from conftest import (INPUTS_DIR, i2v_prompt, read_png_rgb, read_safetensors,
                      run_prompt_like_comfyui, run_wan_run, t2v_prompt)


def saved_tensor(output_dir, prefix):
    files = sorted(glob.glob(os.path.join(output_dir, prefix + "*.safetensors")))
    assert len(files) == 1, files
    return read_safetensors(files[0])["tensor"]


def check_comfy_image(frames, count, height, width):
    """What ComfyUI's SaveImage and other IMAGE consumers expect: [B, H, W, 3] float32 CPU."""
    assert isinstance(frames, torch.Tensor)
    assert frames.shape == (count, height, width, 3)
    assert frames.dtype == torch.float32 and frames.device.type == "cpu"
    assert float(frames.min()) >= 0.0 and float(frames.max()) <= 1.0
    # SaveImage: 255 * image.cpu().numpy(), clipped, as uint8 HWC per frame.
    for image in frames:
        pixels = np.clip(255.0 * image.cpu().numpy(), 0, 255).astype(np.uint8)
        assert pixels.shape == (height, width, 3)


def run_three_ways(pkg, prompt, prefix, wan_run, tmp_path):
    """The frames of node 7 (Decode) via the classes, the native executor and wan-run."""
    via_classes = run_prompt_like_comfyui(pkg, prompt)["7"][0]
    via_executor = pkg.run_prompt(__import__("json").dumps(prompt))["7"][0]
    pkg._native.clear_cache()
    out = str(tmp_path / "wan_run_out")
    proc = run_wan_run(wan_run, prompt, str(tmp_path), out)
    assert proc.returncode == 0, proc.stderr[-4000:]
    via_wan_run = saved_tensor(out, prefix)
    return via_classes, via_executor, via_wan_run


def test_t2v_through_the_classes_matches_wan_run_bit_for_bit(pkg, wan_run, tmp_path):
    prompt = t2v_prompt("t2v_parity")
    frames, executor_frames, wan_run_frames = run_three_ways(
        pkg, prompt, "t2v_parity", wan_run, tmp_path)
    check_comfy_image(frames, 5, 64, 64)
    assert torch.equal(frames, executor_frames)
    assert torch.equal(frames, wan_run_frames), (frames - wan_run_frames).abs().max()
    # The frames are a video, not a constant: a wrong seed or prompt would show.
    assert float(frames.std()) > 1e-3


def test_i2v_through_the_classes_matches_wan_run_bit_for_bit(pkg, wan_run, tmp_path):
    prompt = i2v_prompt("i2v_parity")
    frames, executor_frames, wan_run_frames = run_three_ways(
        pkg, prompt, "i2v_parity", wan_run, tmp_path)
    check_comfy_image(frames, 5, 64, 64)
    assert torch.equal(frames, executor_frames)
    assert torch.equal(frames, wan_run_frames), (frames - wan_run_frames).abs().max()


def test_comfyui_loadimage_tensor_feeds_image_to_video(pkg):
    # ComfyUI's LoadImage: np.array(PIL RGB) / 255 as float32, with a batch dimension.
    pixels = read_png_rgb(os.path.join(INPUTS_DIR, "i2v_image.png"))[..., :3]
    comfy_image = torch.from_numpy(pixels.astype(np.float32) / 255.0)[None,]
    assert comfy_image.shape == (1, 56, 72, 3)

    ours = pkg.NODE_CLASS_MAPPINGS["LoadImage"]().execute(image="i2v_image.png")[0]
    assert torch.equal(ours, comfy_image)  # our LoadImage follows ComfyUI's convention

    nodes = run_prompt_like_comfyui(pkg, i2v_prompt("i2v_feed"))
    cls = pkg.NODE_CLASS_MAPPINGS
    cond = cls["ImageToVideo"]().execute(vae=nodes["2"][0], clip_vision=nodes["9"][0],
                                         start_image=comfy_image, width=64, height=64,
                                         frames=5)[0]
    assert cond.type == "WAN_COND"
    latent = cls["Sample"]().execute(dit=nodes["3"][0], positive=nodes["4"][0],
                                     negative=nodes["5"][0], cond=cond, width=64, height=64,
                                     frames=5, seed=123, steps=2, cfg=5.0, shift=5.0,
                                     solver="unipc")[0]
    assert latent.shape == (16, 2, 8, 8) and latent.dtype == torch.float32
    frames = cls["Decode"]().execute(vae=nodes["2"][0], latent=latent)[0]
    check_comfy_image(frames, 5, 64, 64)
    # The same image through ComfyUI's tensor or our LoadImage gives the same video.
    assert torch.equal(frames, nodes["7"][0])


def test_tensors_cross_without_copies(pkg):
    image = torch.rand(1, 32, 32, 3)
    mask = pkg.NODE_CLASS_MAPPINGS["ImageToMask"]().execute(image=image, channel="green")[0]
    assert torch.equal(mask, image[..., 1])
    latent = torch.randn(16, 2, 8, 8)
    # Decode reads the latent in place; the handle keeps the model alive across calls.
    vae = pkg.NODE_CLASS_MAPPINGS["LoadVAE"]().execute(
        model_name="vae_tiny.pth", placement="cpu", dtype="fp32")[0]
    assert vae.type == "WAN_VAE" and "WAN_VAE" in repr(vae)
    before = latent.data_ptr()
    frames = pkg.NODE_CLASS_MAPPINGS["Decode"]().execute(vae=vae, latent=latent)[0]
    assert latent.data_ptr() == before
    assert frames.shape == (5, 64, 64, 3)


def test_planner_choices_resolve_from_the_prompt_as_comfyui_passes_it(pkg):
    """Inputs left to the planner, an integer (resident_blocks -1) and a combo (vace_activations
    auto), are chosen by planning the hidden prompt; the frames are the fixed graph's. Without a
    prompt the node refuses them, naming the input."""
    fixed = t2v_prompt("planned_fixed")
    planned = t2v_prompt("planned_auto")
    planned["3"]["inputs"].update(placement="stream", resident_blocks=-1,
                                  vace_activations="auto")
    frames = run_prompt_like_comfyui(pkg, planned)["7"][0]
    assert torch.equal(frames, run_prompt_like_comfyui(pkg, fixed)["7"][0])

    load_dit = pkg.NODE_CLASS_MAPPINGS["LoadDiT"]()
    inputs = dict(planned["3"]["inputs"], resident_blocks=0)
    try:
        load_dit.execute(**inputs)
    except ValueError as e:
        assert "vace_activations" in str(e) and "prompt" in str(e), str(e)
    else:
        raise AssertionError("LoadDiT ran vace_activations auto without a prompt")
