"""Runs the DiT weights and inputs that benchmarks/dit_step_bench exported through the official
Wan2.1 WanModel (wan/modules/model.py of the bundle) with PyTorch attention, and reports its
forward time and how far wan-native's output is from it.

    python reference_dit.py --reference DIR --dit FILE --config FILE --inputs FILE
                            [--device cuda|cpu] [--repeats N] [--json FILE]

Needs only torch: safetensors files are read here, and the two diffusers base classes model.py
imports are stood in for when diffusers is absent (WanModel uses neither at inference).
"""
import argparse
import importlib
import importlib.util
import json
import sys
import time
import types
import warnings

import torch

# The reference's deprecated torch.cuda.amp spelling and its SDPA padding notice, once per call.
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", message="Padding mask is disabled")
warnings.filterwarnings("ignore", message="CUDA is not available")

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "F64": torch.float64, "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path):
    """(tensors, metadata) of a safetensors file."""
    with open(path, "rb") as f:
        header_size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_size))
        raw = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        tensors[name] = raw[begin:end].view(DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return tensors, metadata


def stand_in_for_diffusers():
    if importlib.util.find_spec("diffusers") is not None:
        return
    configuration_utils = types.ModuleType("diffusers.configuration_utils")

    class ConfigMixin:
        pass

    configuration_utils.ConfigMixin = ConfigMixin
    configuration_utils.register_to_config = lambda init: init
    modeling_utils = types.ModuleType("diffusers.models.modeling_utils")
    modeling_utils.ModelMixin = torch.nn.Module
    sys.modules["diffusers"] = types.ModuleType("diffusers")
    sys.modules["diffusers.configuration_utils"] = configuration_utils
    sys.modules["diffusers.models"] = types.ModuleType("diffusers.models")
    sys.modules["diffusers.models.modeling_utils"] = modeling_utils


def load_reference(folder, attention_dtype):
    """The reference model module, its attention forced onto PyTorch's SDPA."""
    stand_in_for_diffusers()
    package = types.ModuleType("wan_reference")
    package.__path__ = [folder]
    sys.modules["wan_reference"] = package
    attention = importlib.import_module("wan_reference.attention")
    model = importlib.import_module("wan_reference.model")
    attention.FLASH_ATTN_2_AVAILABLE = False
    attention.FLASH_ATTN_3_AVAILABLE = False

    def pytorch_attention(q, k, v, k_lens=None, window_size=(-1, -1), **_):
        # Batch 1 at its full length: the padding mask SDPA cannot take would mask nothing.
        return attention.attention(q, k, v, window_size=window_size, dtype=attention_dtype)

    model.flash_attention = pytorch_attention
    return model


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", required=True)
    parser.add_argument("--dit", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    device = torch.device(args.device)

    inputs, meta = read_safetensors(args.inputs)
    compute = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        meta.get("compute_dtype", "fp32")]
    low_precision = compute != torch.float32
    module = load_reference(args.reference, compute if low_precision else torch.float32)
    with open(args.config) as f:
        config = json.load(f)
    keys = ["model_type", "patch_size", "text_len", "in_dim", "dim", "ffn_dim", "freq_dim",
            "text_dim", "out_dim", "num_heads", "num_layers", "window_size", "qk_norm",
            "cross_attn_norm", "eps"]
    kwargs = {k: tuple(config[k]) if isinstance(config[k], list) else config[k] for k in keys}

    start = time.perf_counter()
    with torch.device(device):
        model = module.WanModel(**kwargs)
    weights, _ = read_safetensors(args.dit)
    # The official pipeline keeps the DiT in float32 and computes under autocast.
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    model.eval().requires_grad_(False)
    del weights
    load_s = time.perf_counter() - start

    x = [inputs["x"].to(device)]
    t = inputs["t"].to(device)
    context = [inputs["context"].to(device)]
    seq_len = int(meta["seq_len"])
    autocast = torch.autocast(device.type, dtype=compute, enabled=low_precision)
    with torch.no_grad(), autocast:
        out = model(x, t=t, context=context, seq_len=seq_len)[0]
        synchronize(device)
        start = time.perf_counter()
        for _ in range(args.repeats):
            out = model(x, t=t, context=context, seq_len=seq_len)[0]
        synchronize(device)
    forward_s = (time.perf_counter() - start) / args.repeats

    ours = inputs["output"].float()
    reference = out.float().cpu()
    difference = (ours - reference).abs()
    result = {
        "device": str(device), "compute_dtype": meta.get("compute_dtype"),
        "reference_forward_s": forward_s, "reference_load_s": load_s,
        "max_abs_diff": difference.max().item(), "mean_abs_diff": difference.mean().item(),
        "reference_max_abs": reference.abs().max().item(),
        "shape": list(reference.shape),
    }
    result["max_rel_diff"] = result["max_abs_diff"] / max(result["reference_max_abs"], 1e-30)
    print("reference_dit: official WanModel (PyTorch attention) forward %.3f s on %s; "
          "max |ours - reference| %.3g (%.3g of max |reference|), mean %.3g" % (
              forward_s, device, result["max_abs_diff"], result["max_rel_diff"],
              result["mean_abs_diff"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
