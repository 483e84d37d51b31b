#!/usr/bin/env bash
# Installs everything wan-native needs: Debian packages (apt-get) and a Python environment in
# .venv/ (git-ignored) holding the pinned pip torch 2.x that the build links and the tests import.
# Idempotent and non-interactive: safe to run on every CI start.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config git
  nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  libwebp-dev libpng-dev libjpeg62-turbo-dev zlib1g-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  pybind11-dev python3-venv
  libcli11-dev clang libclang-rt-14-dev
  libboost-dev
  chromium  # the browser tests (serve_frontend, the ComfyUI check) drive it headless
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "install_deps: all ${#packages[@]} Debian packages present"

# The venv's Python: the `python3` on PATH unless WAN_PYTHON names another (3.10+ with venv).
PYTHON=${WAN_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
  echo "$want" > "$stamp"
fi
echo "install_deps: .venv has $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"

bash scripts/cuda_toolkit.sh

# The browser and API-client tests' npm packages (playwright-core, @saintno/comfyui-sdk) into
# git-ignored node_modules, when node's npm is installed; without it those tests report SKIPPED.
if command -v npm >/dev/null; then
  for dir in scripts/comfyui_check tests/server/client; do
    stamp="$dir/node_modules/.lock.sha256"
    want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
      (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
      echo "$want" > "$stamp"
    fi
  done
  echo "install_deps: npm packages for the browser and client tests present"
fi
