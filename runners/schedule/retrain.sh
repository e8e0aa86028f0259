#!/usr/bin/env bash
# The loop's retrain step: corrected review batches → the training data → a fine-tune of the
# current model → promoted only if it is not worse on a gold set.
#
#   MODEL_DIR=/models/current OUTPUT_DIR=/data/masks TRAIN_DATA=/data/train \
#   GOLD_DATA=/data/gold runners/schedule/retrain.sh
#
# nightly.sh runs it after the review queue when RETRAIN=1; the Airflow DAG runs it as a task.
# A review folder OUTPUT_DIR/review/RUN_ID/ is ready once a person has corrected its masks and
# created a file named `corrected` in it; it is appended once (`segscale ingest --append`, then
# the file `appended`; into the split APPEND_SPLIT, default train). When the dataset has a
# version that no fine-tune has been decided on yet (RETRAIN_DIR/decided_version, default
# RETRAIN_DIR=OUTPUT_DIR/retrain; at first the current model's own dataset version), MODEL_DIR
# is fine-tuned on it (`segscale train --init_from`; TRAIN_FLAGS, e.g. "--set
# train.max_minutes=10"), exported under RETRAIN_DIR and promoted into MODEL_DIR only if not
# worse on GOLD_DATA's GOLD_SPLIT (default test). A step that fails is retried the next time:
# the version counts as decided only once promote has decided. Exit 0 also when the candidate
# is refused (the decision is in MODEL_DIR/history.jsonl); anything else: a step failed.
# Local folders only.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
segscale="${SEGSCALE:-$here/.venv/bin/segscale}"
[ -x "$segscale" ] || segscale="segscale"
: "${MODEL_DIR:?set MODEL_DIR}" "${OUTPUT_DIR:?set OUTPUT_DIR}"
: "${TRAIN_DATA:?set TRAIN_DATA}" "${GOLD_DATA:?set GOLD_DATA}"
appended=0
for ready in "$OUTPUT_DIR"/review/*/corrected; do
  [ -e "$ready" ] || continue
  batch="$(dirname "$ready")"
  [ -e "$batch/appended" ] && continue
  "$segscale" ingest --append --split "${APPEND_SPLIT:-train}" --images_dir "$batch/images" \
      --masks_dir "$batch/masks" --output_dir "$TRAIN_DATA" || exit $?
  date -u +%Y-%m-%dT%H:%M:%SZ > "$batch/appended"
  appended=$((appended + 1))
done
top_level() {  # a top-level integer field of a JSON file written with indent 2
  sed -n "s/^  \"$1\": \([0-9]*\),\{0,1\}$/\1/p" "$2" | head -n 1
}
retrain="${RETRAIN_DIR:-$OUTPUT_DIR/retrain}"
version="$(top_level version "$TRAIN_DATA/manifest.json")"
decided="$(cat "$retrain/decided_version" 2> /dev/null \
    || top_level dataset_version "$MODEL_DIR/metadata.json")"
if [ "${version:-1}" -gt "${decided:-1}" ]; then
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  echo "segscale retrain: $appended batch(es) appended; fine-tuning on dataset version $version"
  # shellcheck disable=SC2086  # TRAIN_FLAGS is a list of flags
  "$segscale" train --data_dir "$TRAIN_DATA" --workdir "$retrain/run-$stamp" \
      --init_from "$MODEL_DIR" ${TRAIN_FLAGS:-} || exit $?
  "$segscale" export --workdir "$retrain/run-$stamp" --export_dir "$retrain/model-$stamp" \
      || exit $?
  "$segscale" promote --candidate "$retrain/model-$stamp" --current "$MODEL_DIR" \
      --data_dir "$GOLD_DATA" --split "${GOLD_SPLIT:-test}"
  promote_status=$?
  if [ "$promote_status" -ne 0 ] && [ "$promote_status" -ne 1 ]; then
    exit "$promote_status"
  fi
  echo "$version" > "$retrain/decided_version"
else
  echo "segscale retrain: no corrected review batch to learn from"
fi
