"""The files our writers produce, read back with the libraries users read them with.

safetensors (the `safetensors` package), PNG and WebP (Pillow), MP4 (PyAV): frame count, size,
frame rate, pixel values against the IMAGE tensor that was written, and the `prompt`/`workflow`
metadata where ComfyUI puts it (PNG tEXt chunks, WebP EXIF IFD0 tags, MP4 container tags). The
files are written by the native output nodes (SaveTensor, and the native implementations of
ComfyUI's SaveImage, SaveAnimatedWEBP, CreateVideo + SaveVideo) through `_wan_native.execute`,
with the hidden PROMPT and EXTRA_PNGINFO inputs ComfyUI passes.
"""

import glob
import json
import os
import struct
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

FRAMES, HEIGHT, WIDTH, FPS = 5, 48, 64, 16.0

# Key order and non-ASCII text as a real ComfyUI prompt/workflow may hold them.
PROMPT = {"9": {"class_type": "SaveAnimatedWEBP", "inputs": {"filename_prefix": "wan", "fps": 16.0}},
          "3": {"class_type": "EncodePrompt", "inputs": {"text": "Ein Fuchs läuft über Schnee"}}}
WORKFLOW = {"last_node_id": 9, "nodes": [{"id": 9, "type": "SaveAnimatedWEBP", "pos": [10, 20]}],
            "links": [], "version": 0.4}


def make_images():
    """[F, H, W, 3] float32 in [0, 1]: smooth colour ramps moving per frame (so that the lossy
    H.264 round trip stays close) with one sharp square (so that a transposed or shifted frame
    shows)."""
    t = torch.arange(FRAMES, dtype=torch.float32).view(-1, 1, 1)
    y = torch.arange(HEIGHT, dtype=torch.float32).view(1, -1, 1)
    x = torch.arange(WIDTH, dtype=torch.float32).view(1, 1, -1)
    shape = (FRAMES, HEIGHT, WIDTH)
    r = ((x * 3 + t * 10) % 256).expand(shape)
    g = ((y * 4 + t * 7) % 256).expand(shape)
    b = ((x + y + 40 * t) % 256).expand(shape)
    levels = torch.stack([r, g, b], dim=-1).clone()
    levels[:, 8:20, 8:20, :] = torch.tensor([255.0, 25.0, 0.0])
    # Half a level up, so that 255 * x truncates to the intended level whatever the rounding.
    return ((levels + 0.5) / 255.0).clamp(0, 1).contiguous()


def comfy_uint8(images):
    """ComfyUI's SaveImage/SaveAnimatedWEBP conversion: clip(255 * image).astype(uint8)."""
    return np.clip(255.0 * images.numpy(), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def native(pkg):
    return pkg._native


@pytest.fixture(scope="module")
def write(native, output_dir):
    """write(class_type, inputs, prefix) -> the paths the node wrote for `prefix`."""

    def run(class_type, inputs, prefix):
        inputs = dict(inputs, filename_prefix=prefix)
        native.execute(class_type, inputs, node_id="9", prompt=json.dumps(PROMPT),
                       extra_pnginfo=json.dumps({"workflow": WORKFLOW}))
        written = sorted(glob.glob(os.path.join(output_dir, prefix + "_*")))
        assert written, "%s wrote nothing for prefix %s in %s" % (class_type, prefix, output_dir)
        return written

    return run


def expect_metadata(prompt_text, workflow_text):
    """The text ComfyUI embeds: json.dumps of each object, key order kept."""
    assert prompt_text == json.dumps(PROMPT)
    assert workflow_text == json.dumps(WORKFLOW)


# ---- safetensors ----


def test_save_tensor_reads_with_the_safetensors_package(write):
    images = make_images()
    (path,) = write("SaveTensor", {"tensor": images}, "written_tensor")
    tensors = load_file(path)
    assert list(tensors) == ["tensor"]
    assert tensors["tensor"].dtype == torch.float32
    assert torch.equal(tensors["tensor"], images)
    with safe_open(path, framework="pt") as f:
        assert list(f.keys()) == ["tensor"]
        assert f.get_slice("tensor").get_shape() == [FRAMES, HEIGHT, WIDTH, 3]


def test_save_tensor_of_a_latent_reads_with_the_safetensors_package(native, write):
    latent = torch.randn(16, 2, 6, 8, generator=torch.Generator().manual_seed(3))
    (path,) = write("SaveTensor", {"tensor": latent}, "written_latent")
    assert torch.equal(load_file(path)["tensor"], latent)


# ---- PNG ----


def test_save_image_pngs_read_with_pillow(write):
    images = make_images()
    files = write("SaveImage", {"images": images}, "written_png")
    assert len(files) == FRAMES  # one file per image
    expected = comfy_uint8(images)
    for i, path in enumerate(files):
        with Image.open(path) as im:
            assert im.format == "PNG" and im.mode == "RGB"
            assert im.size == (WIDTH, HEIGHT)
            assert np.array_equal(np.asarray(im), expected[i]), "frame %d differs" % i
            expect_metadata(im.text["prompt"], im.text["workflow"])


# ---- WebP ----


def webp_exif_metadata(im):
    """ComfyUI's WebP metadata: IFD0 ASCII tags "prompt:<json>" (0x0110), "workflow:<json>"."""
    found = {}
    for tag, value in im.getexif().items():
        if isinstance(value, bytes):
            value = value.decode()
        key, _, text = value.partition(":")
        found[key] = (tag, text)
    return found


def test_animated_webp_reads_with_pillow(write):
    images = make_images()
    (path,) = write("SaveAnimatedWEBP", {"images": images, "fps": FPS, "method": "default"}, "written_webp")
    expected = comfy_uint8(images)
    with Image.open(path) as im:
        assert im.format == "WEBP"
        assert im.n_frames == FRAMES and im.is_animated
        assert im.size == (WIDTH, HEIGHT)
        metadata = webp_exif_metadata(im)
        assert metadata["prompt"][0] == 0x0110 and metadata["workflow"][0] == 0x010F
        expect_metadata(metadata["prompt"][1], metadata["workflow"][1])
        for i in range(FRAMES):
            im.seek(i)
            # Lossless (SaveAnimatedWEBP's default): the pixels are the ones written.
            assert np.array_equal(np.asarray(im.convert("RGB")), expected[i]), "frame %d" % i
            assert im.info["duration"] == int(1000.0 / FPS)  # known once the frame is loaded


def frontend_webp_metadata(data):
    """The ComfyUI frontend's getWebpMetadata: walks the RIFF chunks by `offset += 8 + length`
    (no pad byte) to the first EXIF chunk and splits its ASCII tags at the first ':'."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    offset = 12
    while offset + 8 <= len(data):
        kind = data[offset:offset + 4]
        (length,) = struct.unpack("<I", data[offset + 4:offset + 8])
        if kind == b"EXIF":
            body = data[offset + 8:offset + 8 + length]
            if body[:6] == b"Exif\x00\x00":
                body = body[6:]
            return parse_tiff_ascii(body)
        offset += 8 + length
    return {}


def parse_tiff_ascii(tiff):
    """ASCII entries of IFD0 of a TIFF stream (either byte order, as the frontend's
    parseExifData) as {key: text}, split at the first ':'."""
    order = {b"II": "<", b"MM": ">"}[tiff[:2]]
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    found = {}
    for n in range(count):
        entry = ifd + 2 + 12 * n
        tag, kind, size, value = struct.unpack(order + "HHII", tiff[entry:entry + 12])
        if kind != 2:
            continue
        raw = tiff[entry + 8:entry + 8 + size] if size <= 4 else tiff[value:value + size]
        key, _, text = raw.rstrip(b"\x00").decode().partition(":")
        found[key] = text
    return found


def write_single_frame_webps(write, tag):
    """One single-frame WebP per width: whether RIFF pads the still image's VP8L chunk depends on
    the parity of its compressed size, so about half of these have a padded image chunk."""
    written = []
    for width in range(WIDTH - 8, WIDTH + 1):
        images = make_images()[:1, :, :width].contiguous()
        (path,) = write("SaveAnimatedWEBP", {"images": images, "fps": FPS, "method": "default"},
                        "written_webp_%s_%d" % (tag, width))
        written.append((width, images, path))
    return written


def test_single_frame_webp_reads_with_pillow(write):
    for width, images, path in write_single_frame_webps(write, "pillow"):
        with Image.open(path) as im:
            assert im.n_frames == 1
            assert im.size == (width, HEIGHT)
            assert np.array_equal(np.asarray(im.convert("RGB")), comfy_uint8(images)[0])
            metadata = webp_exif_metadata(im)
            expect_metadata(metadata["prompt"][1], metadata["workflow"][1])


# libwebp assembles one frame as VP8X, VP8L, EXIF; an odd-sized VP8L chunk is followed by RIFF's
# pad byte, which the frontend's walk does not skip. WebPMux turns a one-frame animation back into
# a still image, so that is no way out; moving EXIF before the image chunk is (Pillow reads that
# order too), not done yet.
def test_single_frame_webp_metadata_reads_in_the_frontend(write):
    for width, _, path in write_single_frame_webps(write, "frontend"):
        with open(path, "rb") as f:
            frontend = frontend_webp_metadata(f.read())
        assert set(frontend) == {"prompt", "workflow"}, \
            "width %d: the frontend's chunk walk missed the EXIF chunk" % width
        expect_metadata(frontend["prompt"], frontend["workflow"])


# ---- MP4 ----


def test_mp4_reads_with_pyav(native, write):
    images = make_images()
    (video,) = native.execute("CreateVideo", {"images": images, "fps": FPS})
    (path,) = write("SaveVideo", {"video": video}, "written_mp4")
    assert path.endswith(".mp4")
    with av.open(path) as container:
        expect_metadata(container.metadata["prompt"], container.metadata["workflow"])
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (WIDTH, HEIGHT)
        assert stream.average_rate == Fraction(16)
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(decoded) == FRAMES
    expected = comfy_uint8(images).astype(np.int32)
    for i, frame in enumerate(decoded):
        assert frame.shape == (HEIGHT, WIDTH, 3)
        # H.264 at CRF 23 with 4:2:0 chroma is lossy: close on average, not equal.
        error = np.abs(frame.astype(np.int32) - expected[i])
        assert error.mean() < 6.0, "frame %d: mean abs error %.2f levels" % (i, error.mean())
