#!/usr/bin/env bash
# The one-shot device check: one command on the lent GPU machine (docs/gpu.md).
#
#   bash scripts/device_check.sh --out DIR [--dry-run] [--parts LIST] [--build-dir DIR]
#
# On the GPU machine (needs .device_bundle/ carried along: scripts/device_bundle.sh) it builds
# build-device/ against that machine's torch (WAN_WITH_MEDIA=OFF, libraries from the bundle),
# runs the CUDA tests, then measures, printing a line per part and writing device_check.json,
# device_check.md and cuda_device_tests.xml under --out after every part. Expected on an H200
# (16 cores), about 8 minutes without the placements, 10 with (estimates: no GPU run yet):
#   build       configure + the five targets on 16 cores                          ~3.5 min
#   tests       device_tests (CudaDevice.* on the card)                           ~10 s
#   configs     random official-shape weights (~14 GB, generated on the card) ~40 s, then the
#               four t2v-1.3B configurations at 480x832x81, 2 steps, --vram 11.49GiB, each
#               planned (--plan) and run; baseline must fail moving T5 in          ~3.5 min
#   dit         one DiT forward at 480x832x81 bf16 (3 timed), then the official WanModel
#               with PyTorch attention on the same weights and inputs              ~40 s
#   copy        host<->device copies of 1 GiB, pageable and pinned                 ~10 s
#   placements  auto / stream / tiled VAE at 6 and 8 GiB, run once they exist, else
#               "not built" (~1 s); tiled VAE exists: two t5_cpu runs          ~1.5 min
# Parts run in that order, so a run cut short loses the placements first; rerun the rest at
# once with --parts (on a fresh machine the build runs first by itself).
# --dry-run takes every part's code path on a machine without a GPU: the existing build/ (no
# second build), tiny models, 64x64x9, the virtual accelerator; under 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${WAN_CHECK_PYTHON:-}
if [ -z "$python" ]; then
  # The dry run uses the venv's torch (the one build/ links); the GPU machine its own Python's.
  if [[ " $* " == *" --dry-run "* ]] && [ -x .venv/bin/python ]; then
    python=.venv/bin/python
  else
    # The first Python on PATH that imports torch (WAN_CHECK_PYTHON names another).
    for candidate in python3 python; do
      if command -v "$candidate" >/dev/null && "$candidate" -c 'import torch' 2>/dev/null; then
        python=$(command -v "$candidate")
        break
      fi
    done
    if [ -z "$python" ]; then
      echo "device_check: no python3/python on PATH imports torch; set WAN_CHECK_PYTHON" >&2
      exit 1
    fi
  fi
fi
exec "$python" scripts/device_check/device_check.py "$@"
