#!/usr/bin/env bash
# One scheduled night: segment what arrived, record it, check drift, queue images for review.
#
#   MODEL_DIR=/models/current INPUT_PATTERN='/data/incoming/**/*.png' OUTPUT_DIR=/data/masks \
#       runners/schedule/nightly.sh [extra flags for segscale infer, e.g. --profile=flink ...]
#
# Exit status: 0 all quiet; 3 drift crossed a threshold (look at OUTPUT_DIR/drift/RUN_ID/);
# anything else: a step failed (its message is on stderr). The review queue is written in both
# the quiet and the drift case: a drifting night is exactly when a person should look.
# SEGSCALE: the segscale command (default: the one next to this checkout's .venv, else PATH).
# REVIEW_TOP: how many images to queue (default 20). DRIFT_FLAGS: extra flags for the drift
# check, e.g. "--baseline previous --max_class_shift 0.2".
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
segscale="${SEGSCALE:-$here/.venv/bin/segscale}"
[ -x "$segscale" ] || segscale="segscale"
: "${MODEL_DIR:?set MODEL_DIR}" "${INPUT_PATTERN:?set INPUT_PATTERN}" "${OUTPUT_DIR:?set OUTPUT_DIR}"

"$segscale" infer --model_dir "$MODEL_DIR" --input_pattern "$INPUT_PATTERN" \
    --output_dir "$OUTPUT_DIR" --skip_existing "$@" || exit $?
"$segscale" runs "$OUTPUT_DIR" --last 1 || exit $?
# shellcheck disable=SC2086  # DRIFT_FLAGS is a list of flags
"$segscale" drift --run "$OUTPUT_DIR" ${DRIFT_FLAGS:-}
drift_status=$?
if [ "$drift_status" -ne 0 ] && [ "$drift_status" -ne 3 ]; then
  exit "$drift_status"
fi
"$segscale" review --run "$OUTPUT_DIR" --top "${REVIEW_TOP:-20}" || exit $?
exit "$drift_status"
