#!/usr/bin/env bash
# Checks the pack inside a real ComfyUI on the tiny models:
#   scripts/comfyui_check.sh COMFYUI_DIR
# COMFYUI_DIR is a checkout of Comfy-Org/ComfyUI (never part of this repository). Installs its
# requirements into .venv (once per requirements file), links python_shim/ into its
# custom_nodes/ as docs/comfyui.md says, and runs scripts/comfyui_check/check.py: /object_info,
# the 20 shipped workflows through /prompt + /ws + /history + /view (frames bit-identical to
# wan-run's), an interrupt, an out-of-memory error, and the frontend in headless Chromium
# (screenshot to docs/comfyui_screenshot.png). One line per check; non-zero exit on any failure.
# Needs build/python_shim/_wan_native*.so and build/wan-run (cmake --build build --target
# _wan_native wan-run), Debian's chromium and Node.js.
set -euo pipefail

REPO="$(cd "$(dirname "$(realpath "$0")")/.." && pwd)"
COMFYUI="${1:?usage: scripts/comfyui_check.sh COMFYUI_DIR}"
COMFYUI="$(realpath "$COMFYUI")"
PY="$REPO/.venv/bin/python"
HELPER="$REPO/scripts/comfyui_check"
LINK="$COMFYUI/custom_nodes/wan-native"
WORK="$(mktemp -d /tmp/comfyui_check.XXXXXX)"
made_link=0

cleanup() {
  local rc=$?
  # Every ComfyUI the helper started ran in its own process group, listed in $WORK/pids.
  if [[ -f "$WORK/pids" ]]; then
    while read -r pid; do
      kill -TERM -- "-$pid" 2>/dev/null || true
    done <"$WORK/pids"
  fi
  [[ $made_link == 1 ]] && rm -f "$LINK"
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL $1"; exit 1; }

[[ -f "$COMFYUI/main.py" && -f "$COMFYUI/requirements.txt" ]] ||
  fail "ComfyUI checkout: $COMFYUI has no main.py/requirements.txt"
[[ -x "$PY" ]] || fail "venv: $PY is missing (run scripts/install_deps.sh)"
shopt -s nullglob
native=("$REPO"/build/python_shim/_wan_native*.so)
[[ ${#native[@]} -gt 0 && -x "$REPO/build/wan-run" ]] ||
  fail "build: build/python_shim/_wan_native*.so or build/wan-run missing (cmake --build build --target _wan_native wan-run)"

# ComfyUI's requirements, installed again only when its requirements.txt changes. `requests`
# is imported by its app/frontend_management.py but not listed (it used to arrive with other
# packages' dependencies), so it is named here too.
stamp="$REPO/.venv/.comfyui_requirements.sha256"
want="$(cat "$COMFYUI/requirements.txt" <(echo requests) | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  "$PY" -m pip install -q -r "$COMFYUI/requirements.txt" requests >"$WORK/pip.log" 2>&1 ||
    { tail -5 "$WORK/pip.log"; fail "pip install -r $COMFYUI/requirements.txt"; }
  echo "$want" >"$stamp"
fi
echo "PASS ComfyUI requirements in .venv ($(cd "$COMFYUI" && git rev-parse --short HEAD 2>/dev/null || echo "no git"))"

# The documented install: a symlink of python_shim/ in custom_nodes/.
if [[ -L "$LINK" && "$(realpath "$LINK")" == "$REPO/python_shim" ]]; then
  :
elif [[ -e "$LINK" ]]; then
  fail "install: $LINK exists and is not a link to $REPO/python_shim"
else
  ln -s "$REPO/python_shim" "$LINK"
  made_link=1
fi
echo "PASS pack linked: custom_nodes/wan-native -> python_shim"

# The browser side: Debian's chromium and npm playwright-core in an ignored folder.
command -v chromium >/dev/null || fail "frontend: /usr/bin/chromium missing (apt-get install -y chromium)"
command -v node >/dev/null || fail "frontend: node missing (apt-get install -y nodejs npm)"
if [[ ! -d "$HELPER/node_modules/playwright-core" ]]; then
  (cd "$HELPER" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm install --no-audit --no-fund \
    >"$WORK/npm.log" 2>&1) || { tail -5 "$WORK/npm.log"; fail "npm install playwright-core"; }
fi

# The tiny models in ComfyUI's folder layout, and the workflows' inputs in its input folder.
mkdir -p "$WORK/input"
cp "$REPO"/tests/data/wan-tiny/inputs/* "$WORK/input/"
cat >"$WORK/extra_model_paths.yaml" <<EOF
wan_native_tiny:
  base_path: $REPO/tests/data/models
  diffusion_models: diffusion_models
  text_encoders: text_encoders
  vae: vae
  clip_vision: clip_vision
  tokenizers: tokenizers
EOF

"$PY" "$HELPER/check.py" --comfyui "$COMFYUI" --repo "$REPO" --work "$WORK" --python "$PY" \
  --wan-run "$REPO/build/wan-run" --models "$REPO/tests/data/models" --input-dir "$WORK/input" \
  --model-paths "$WORK/extra_model_paths.yaml" --screenshot "$REPO/docs/comfyui_screenshot.png"
