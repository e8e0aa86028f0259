#!/usr/bin/env bash
# Builds the wheel, installs it into a fresh venv outside the checkout and runs a tiny
# ingest -> train -> export -> infer from there with the default launch profile: proves an
# install works without the source tree (profiles are package data, nothing reads ../runners).
#   ./scripts/wheel_check.sh        (scripts/test.sh runs it after the tests; CI runs both)
# Installing reaches the package registries (install time); the runs themselves are offline.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "wheel check: building and installing the wheel into a fresh venv in $work ..."
python3 -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$work/dist" "$root"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$work"/dist/segscale-*.whl
cd "$work"  # outside the checkout: only the installed package is importable
export HOME="$work/home" TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$HOME"
bin="$work/venv/bin"
"$bin/python" -m segmodel.sample_data --output_dir raw --count 16 --size 48 --num_classes 3 >/dev/null
"$bin/segscale" ingest --images_dir raw/images --masks_dir raw/masks --output_dir data \
  --num_classes 3 --direct_num_workers 2
"$bin/segscale" train --data_dir data --workdir run --preset smoke >/dev/null
"$bin/segscale" export --workdir run --export_dir model >/dev/null
"$bin/segscale" infer --model_dir model --input_pattern 'raw/images/**' --output_dir pred \
  --direct_num_workers 2
test "$(find pred/masks -name '*.png' | wc -l)" -eq 16
if [ -e "$HOME/.apache_beam/cache/prism" ]; then
  echo "FAIL: the installed package tried to download Beam's Prism runner." >&2
  exit 1
fi
echo "wheel check: OK (16 images ingested, trained, exported and segmented from the installed wheel)"
