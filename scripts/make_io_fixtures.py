#!/usr/bin/python3
"""Regenerates tests/data/io/: reference summaries of the tiny .pth checkpoints and hostile inputs.

Run with Debian's /usr/bin/python3 (python3-torch). The outputs are committed; tests never run this.
"""
import io
import json
import os
import zipfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "tests", "data")
OUT = os.path.join(DATA, "io")
DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64"}


def summarize(path):
    sd = torch.load(path, map_location="cpu")
    out = {}
    for k, v in sd.items():
        flat = v.detach().reshape(-1).double()
        out[k] = {"dtype": DTYPES[v.dtype], "shape": list(v.shape), "sum": flat.sum().item(),
                  "sum_sq": (flat * flat).sum().item(), "first": flat[:4].tolist()}
    return out


def zip_with(records, name, compress_data=False):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for rec, payload in records:
            method = zipfile.ZIP_DEFLATED if (compress_data and rec.startswith("data/")) else zipfile.ZIP_STORED
            z.writestr(f"archive/{rec}", payload, compress_type=method)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(buf.getvalue())


def main():
    os.makedirs(OUT, exist_ok=True)
    ref = {name: summarize(os.path.join(DATA, "wan-tiny", "weights", name))
           for name in ["t5_tiny_encoder.pth", "vae_tiny.pth", "clip_tiny.pth"]}
    with open(os.path.join(OUT, "pth_reference.json"), "w") as f:
        json.dump(ref, f, indent=0, sort_keys=True)

    # A genuine small checkpoint: views sharing a storage, bf16, int64, a parameter.
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = {"a": base, "a_t": base.t(), "a_row": base[1], "b": torch.tensor([1.5, -2.25], dtype=torch.bfloat16),
          "i": torch.tensor([7, -9], dtype=torch.int64), "p": torch.nn.Parameter(torch.ones(2, 2))}
    torch.save(sd, os.path.join(OUT, "small_state_dict.pth"))
    raw = open(os.path.join(OUT, "small_state_dict.pth"), "rb").read()

    # Pickles that must be refused: a call to os.system, and an unlisted global.
    evil = b"\x80\x02cposix\nsystem\nX\x05\x00\x00\x00echo!\x85R."
    zip_with([("data.pkl", evil), ("version", b"3\n")], "evil_os_system.pth")
    builtins_eval = b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R."
    zip_with([("data.pkl", builtins_eval), ("version", b"3\n")], "evil_builtins_eval.pth")

    # The genuine checkpoint with its storage records deflated.
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        records = [(n.split("/", 1)[1], z.read(n)) for n in z.namelist()]
    zip_with(records, "compressed_record.pth", compress_data=True)
    # The genuine checkpoint cut short.
    with open(os.path.join(OUT, "truncated.pth"), "wb") as f:
        f.write(raw[: len(raw) // 2])


if __name__ == "__main__":
    main()
