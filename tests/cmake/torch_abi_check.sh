#!/usr/bin/env bash
# Configuring against a torch of the other C++ ABI (or a torch 1.x) stops at configure time with a
# message that says so, instead of failing to link or crashing later. A stand-in Python reports
# the torch facts CMake asks for.
set -euo pipefail
source_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fake_python() {  # version abi
  cat > "$work/python" <<PY
#!/usr/bin/env bash
printf '%s\n' "$1" "$work/prefix" "$2" ""
PY
  chmod +x "$work/python"
}

expect_refusal() {  # version abi pattern
  fake_python "$1" "$2"
  rm -rf "$work/build"
  if cmake -S "$source_dir" -B "$work/build" -G Ninja -DWAN_PYTHON="$work/python" \
      >"$work/log" 2>&1; then
    echo "FAIL: configure accepted torch $1 with ABI $2"; exit 1
  fi
  if ! grep -q "$3" "$work/log"; then
    echo "FAIL: torch $1 ABI $2: the message lacks '$3':"; cat "$work/log"; exit 1
  fi
  echo "ok: torch $1 with _GLIBCXX_USE_CXX11_ABI=$2 refused ($3)"
}

expect_refusal 2.15.0 0 "_GLIBCXX_USE_CXX11_ABI=0"
expect_refusal 1.13.1 1 "needs torch 2.x"
