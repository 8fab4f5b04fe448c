# Shared helpers for the tests/vm scripts (sourced, not executed).
# shellcheck shell=bash

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$VM_DIR/../.." && pwd)
VM_CACHE=${PCIPASS_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pcipass-vm}
# Debian's python, stdlib only (pyenv shims may shadow python3 in PATH).
PY=${PCIPASS_VM_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3

vm_log() { printf 'vm: %s\n' "$*" >&2; }
vm_die() { printf 'vm: error: %s\n' "$*" >&2; exit 2; }

# Prints the pcipass binary to put into the guest, or nothing.
# $PCIPASS_BIN wins; then build/pcipass (kept up to date by the lead);
# then build-vm/pcipass.
vm_find_pcipass() {
  local c
  for c in "${PCIPASS_BIN:-}" "$REPO_DIR/build/pcipass" "$REPO_DIR/build-vm/pcipass"; do
    [ -n "$c" ] && [ -x "$c" ] && [ -f "$c" ] && { printf '%s\n' "$c"; return 0; }
  done
  return 1
}

# Path of the built image directory (runs build-image if needed; quiet).
vm_image_dir() {
  "$VM_DIR/build-image" --print-dir
}
