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
# check, e.g. "--baseline previous --max_class_shift 0.2". FS_FLAGS: storage flags every step
# needs for a bucket, e.g. "--s3_endpoint_url https://minio:9000 --s3_access_key_id ...".
# WORKER_IMAGE: the segscale worker image (runners/container/build.sh) for a run whose workers
# are containers (--profile container, flink or dataflow): passed as --environment_config
# (portable runners) and --sdk_container_image (Dataflow); each runner reads its own.
# One night at a time: a night that is still running makes the next one exit 75 (flock).
# RESEGMENT=1: segment again the images whose mask an earlier model made (after a promotion).
#
# RETRAIN=1 (with TRAIN_DATA and GOLD_DATA; local folders) closes the loop after the review
# queue with runners/schedule/retrain.sh: review batches a person has corrected are appended to
# TRAIN_DATA, MODEL_DIR is fine-tuned on it and promoted only if not worse on GOLD_DATA.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
segscale="${SEGSCALE:-$here/.venv/bin/segscale}"
[ -x "$segscale" ] || segscale="segscale"
: "${MODEL_DIR:?set MODEL_DIR}" "${INPUT_PATTERN:?set INPUT_PATTERN}" "${OUTPUT_DIR:?set OUTPUT_DIR}"

if command -v flock > /dev/null; then
  exec 9> "${LOCK_FILE:-${TMPDIR:-/tmp}/segscale-nightly.lock}"
  flock -n 9 || { echo "segscale nightly: the previous night is still running" >&2; exit 75; }
fi
image_flags=()
if [ -n "${WORKER_IMAGE:-}" ]; then
  image_flags=(--environment_config "$WORKER_IMAGE" --sdk_container_image "$WORKER_IMAGE")
fi
# shellcheck disable=SC2086  # FS_FLAGS and DRIFT_FLAGS are lists of flags
"$segscale" infer --model_dir "$MODEL_DIR" --input_pattern "$INPUT_PATTERN" \
    --output_dir "$OUTPUT_DIR" --skip_existing ${RESEGMENT:+--resegment_older_than current} \
    ${FS_FLAGS:-} "${image_flags[@]}" "$@" || exit $?
# shellcheck disable=SC2086
"$segscale" runs "$OUTPUT_DIR" --last 1 ${FS_FLAGS:-} || exit $?
# shellcheck disable=SC2086
"$segscale" drift --run "$OUTPUT_DIR" ${FS_FLAGS:-} ${DRIFT_FLAGS:-}
drift_status=$?
if [ "$drift_status" -ne 0 ] && [ "$drift_status" -ne 3 ]; then
  exit "$drift_status"
fi
# shellcheck disable=SC2086
"$segscale" review --run "$OUTPUT_DIR" --top "${REVIEW_TOP:-20}" ${FS_FLAGS:-} || exit $?

if [ "${RETRAIN:-0}" = "1" ]; then
  SEGSCALE="$segscale" "$here/runners/schedule/retrain.sh" || exit $?
fi
exit "$drift_status"
