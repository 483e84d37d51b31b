#!/usr/bin/env bash
# The main job: installs dependencies, builds, and runs the shipped T2V workflow on the tiny bundled
# models (tests/data/models) on a budgeted virtual accelerator of 552 MiB (40 MiB usable after the
# default 0.5 GiB reserve), so the memory report shows what each device held at each stage.
# Writes an H.264 MP4 (output/video/), preview PNGs (output/temp/) and the report (JSON + SVG timeline) under output/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
WORKFLOW=${WORKFLOW:-workflows/t2v/baseline.json}
mkdir -p output
"$BUILD_DIR"/wan-run "$WORKFLOW" --models tests/data/models --output output \
  --set LoadDiT.model_name=dit_t2v_tiny.safetensors \
  --set LoadT5.model_name=t5_tiny_encoder.pth \
  --set LoadT5.tokenizer=wan_tiny \
  --set LoadT5.dtype=fp32 \
  --set LoadVAE.model_name=vae_tiny.pth \
  --set LoadDiT.compute_dtype=fp32 \
  --set positive.text="A small red fox runs across a snowy field at sunrise." \
  --set Sample.width=64 --set Sample.height=64 --set Sample.frames=9 \
  --set Sample.steps=4 --set Sample.seed=42 \
  --vram 552MiB --report output/demo_report.json "$@"
echo "wrote: $(ls -t output/video/*.mp4 | head -1), memory report output/demo_report.json (+ .svg)"
