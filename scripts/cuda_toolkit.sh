#!/usr/bin/env bash
# Lays the pip CUDA wheels of .venv out as the toolkit folder CMake's FindCUDA expects
# (.venv/cuda/{bin,include,lib,nvvm}), so the torch CMake package configures and our CUDA paths
# compile on a machine with no GPU and no system CUDA. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
nv=$(.venv/bin/python -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
root=.venv/cuda
if [ ! -x "$nv/bin/nvcc" ]; then
  echo "cuda_toolkit: no nvcc under $nv (is nvidia-cuda-nvcc in scripts/requirements.txt?)" >&2
  exit 1
fi
rm -rf "$root"
mkdir -p "$root/lib"
ln -s "$nv/bin" "$root/bin"
ln -s "$nv/include" "$root/include"
ln -s "$nv/nvvm" "$root/nvvm"
ln -s lib "$root/lib64"
for f in "$nv"/lib/*; do ln -s "$f" "$root/lib/"; done
# The wheels ship only versioned sonames; the linker wants the bare names.
for f in "$nv"/lib/lib*.so.*; do
  base=$(basename "$f"); bare=${base%%.so.*}.so
  [ -e "$root/lib/$bare" ] || ln -s "$f" "$root/lib/$bare"
done
echo "cuda_toolkit: $root -> $nv ($("$root/bin/nvcc" --version | tail -2 | head -1))"
