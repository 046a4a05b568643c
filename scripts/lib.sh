# Shared by scripts/setup, scripts/demo and scripts/test. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${LOCKKIT_BUILD_DIR:-$ROOT/build}"

# BPF needs root: re-run through sudo when it exists, else say so.
need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      exec sudo -E "$0" "$@"
    fi
    echo "$(basename "$0"): must be run as root (and sudo is not installed)" >&2
    exit 1
  fi
}

# build [TARGET...]: configure and build (everything when no target is named).
build() {
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$BUILD" -j"$(nproc)" "${targets[@]}"
}
