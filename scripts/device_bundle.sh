#!/usr/bin/env bash
# Prepares .device_bundle/ (git-ignored): what the lent GPU machine lacks to build and check
# wan-native (it has a Python with a CUDA torch 2.x, cmake, ninja and nvcc, but no Debian dev
# packages and no registry). Run it here, on a machine where scripts/install_deps.sh ran:
#
#   bash scripts/device_bundle.sh [--reference DIR]
#
#   include/{nlohmann,spdlog,fmt}  the system headers (spdlog and fmt are used header-only)
#   googletest/                    googletest sources (/usr/src/googletest), built there
#   reference/{model.py,attention.py}
#                                  the official Wan2.1 wan/modules files the DiT is timed and
#                                  compared against, copied from --reference DIR (a Wan2.1
#                                  checkout, or a folder holding those two files)
#
# Prints the bundle's size and the size of everything that travels to the device machine (the
# tracked and untracked, not ignored files plus the bundle): the device tool carries 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
reference=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reference) reference=${2:?--reference needs a folder}; shift 2 ;;
    *) echo "usage: scripts/device_bundle.sh [--reference DIR]" >&2; exit 2 ;;
  esac
done

bundle=.device_bundle
rm -rf "$bundle.tmp"
mkdir -p "$bundle.tmp/include"
for dir in /usr/include/nlohmann /usr/include/spdlog /usr/include/fmt /usr/src/googletest; do
  if [ ! -d "$dir" ]; then
    echo "device_bundle: $dir is missing: run scripts/install_deps.sh first" >&2
    rm -rf "$bundle.tmp"
    exit 1
  fi
done
cp -rL /usr/include/nlohmann /usr/include/spdlog /usr/include/fmt "$bundle.tmp/include/"
cp -rL /usr/src/googletest "$bundle.tmp/googletest"

if [ -n "$reference" ]; then
  modules=""
  for candidate in "$reference/wan/modules" "$reference"; do
    if [ -f "$candidate/model.py" ] && [ -f "$candidate/attention.py" ]; then
      modules=$candidate
      break
    fi
  done
  if [ -z "$modules" ]; then
    echo "device_bundle: no model.py and attention.py in $reference or $reference/wan/modules" >&2
    rm -rf "$bundle.tmp"
    exit 1
  fi
  mkdir -p "$bundle.tmp/reference"
  cp "$modules/model.py" "$modules/attention.py" "$bundle.tmp/reference/"
  echo "device_bundle: reference WanModel from $modules"
else
  echo "device_bundle: no --reference DIR: the check's DiT comparison (part 3) will report" \
       "'no reference' (pass a Wan2.1 checkout holding wan/modules/model.py and attention.py)"
fi
rm -rf "$bundle"
mv "$bundle.tmp" "$bundle"

bundle_bytes=$(du -sb "$bundle" | cut -f1)
tree_bytes=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total=$((bundle_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "device_bundle: $bundle is $(mib "$bundle_bytes"); with the work tree ($(mib "$tree_bytes")) $(mib "$total") travel (limit 64 MiB)"
if [ "$total" -ge $((64 * 1048576)) ]; then
  echo "device_bundle: over the 64 MiB the device tool carries" >&2
  exit 1
fi
