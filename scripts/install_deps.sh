#!/usr/bin/env bash
# Installs every system dependency of wan-native from Debian's packages.
# Idempotent and non-interactive: safe to run on every CI start.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libtorch-dev libopenblas0-pthread
  nlohmann-json3-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
  libstb-dev libwebp-dev libpng-dev zlib1g-dev
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev
  pybind11-dev python3-dev python3-torch python3-pytest python3-numpy
  libcli11-dev clang libclang-rt-14-dev
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
echo "install_deps: all ${#packages[@]} packages present"
