"""A dataset that grows: `segscale ingest --append` adds a batch of pairs (typically the review
queue's images and corrected masks) to an existing dataset folder.

    segscale ingest --append --images_dir out/pred/review/RUN/images \
        --masks_dir out/pred/review/RUN/masks --output_dir out/data

What an append does, and why:
- New shards are written beside the old ones under names of their own
  (`train-b002-00000-of-00001.tfrecord`); no earlier shard is rewritten, so a model trained on
  version N can always be traced to bytes that still exist.
- Every batch writes a key index, `keys-bNNN.jsonl` (one line per accepted record: key, split,
  shard). It is what finds the records a batch replaces without reading old shards.
- A pair whose key (relative path without extension) is already in the dataset replaces the
  earlier label: the earlier record is listed in the manifest's `superseded` map
  ({shard: [keys]}), and every reader of the dataset (segmodel.input_pipeline) skips it. Chosen
  over rewriting the shards concerned: an append then costs the batch's size, not the size of
  the shards its keys happen to fall in, and nothing already written changes.
- The manifest gets a new `version` and a `batches` entry (when, from where, counts, its own
  rejects file and key index). Splits follow the dataset's policy (the same hash of the key, so
  a pair lands where it always would have), unless `--split NAME` puts the whole batch there.
- The statistics (`stats`: mean, std, class frequencies) are kept from the dataset as it was:
  a model fine-tuned on the grown dataset must normalise its inputs as its parent did, and a
  batch of a few corrected images would move the mean for no gain. Record counts per split are
  updated.

Memory: the batch's keys are held (bounded by the batch), the old key indexes are streamed.
"""

from __future__ import annotations

import json
import time

from apache_beam.io.filesystems import FileSystems

from segmodel.manifest import REJECTS_NAME


def keys_name(batch: int) -> str:
    return f"keys-b{batch:03d}.jsonl"


def rejects_name(batch: int) -> str:
    # batch 1: the name every dataset has
    return REJECTS_NAME if batch == 1 else f"rejects-b{batch:03d}.jsonl"


def shard_infix(batch: int) -> str:
    """What a batch's shard names carry after the split: nothing for the first (names as
    before appends existed), `b002-` and so on after."""
    return "" if batch == 1 else f"b{batch:03d}-"


def _lines(path: str):
    with FileSystems.open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def superseded_by(output_dir: str, batch: int, previous: dict) -> dict[str, dict[str, list]]:
    """The live records of earlier batches whose key this batch brings again: {split: {shard:
    [keys]}} (a record already superseded by an earlier append is not counted twice). Reads
    this batch's key index into memory and streams the earlier ones."""
    new = {entry["key"] for entry in _lines(FileSystems.join(output_dir, keys_name(batch)))}
    found: dict[str, dict[str, list]] = {}
    if not new:
        return found
    gone = {shard: set(keys) for shard, keys in (previous.get("superseded") or {}).items()}
    for earlier in previous.get("batches", []):
        for entry in _lines(FileSystems.join(output_dir, earlier["keys_file"])):
            if entry["key"] in new and entry["key"] not in gone.get(entry["shard"], ()):
                found.setdefault(entry["split"], {}).setdefault(entry["shard"], []).append(
                    entry["key"]
                )
    return found


def batch_entry(
    batch: int, config, counts: dict, by_reason: dict, records: dict, superseded: int
) -> dict:
    """The manifest's record of one batch: its lineage and its own counts."""
    return {
        "batch": batch,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "images_dir": config.images_dir,
        "masks_dir": config.masks_dir,
        "split": config.forced_split,
        "counts": counts,
        "rejects_by_reason": by_reason,
        "records": records,
        "superseded": superseded,
        "rejects_file": rejects_name(batch),
        "keys_file": keys_name(batch),
    }


def first_version(manifest: dict, config) -> dict:
    """Batch 1's manifest: the dataset as ingest builds it, plus version and lineage."""
    records = {name: split["records"] for name, split in manifest["splits"].items()}
    manifest["version"] = 1
    manifest["batches"] = [
        batch_entry(1, config, manifest["counts"], manifest["rejects"]["by_reason"], records, 0)
    ]
    manifest["superseded"] = {}
    return manifest


def next_version(previous: dict, batch_manifest: dict, config, superseded: dict) -> dict:
    """The grown dataset's manifest: `previous` with this batch's shards, counts and lineage
    added and the records it replaces listed in `superseded`."""
    batch = config.batch
    grown = json.loads(json.dumps(previous))  # a deep copy
    replaced = {
        split: sum(len(keys) for keys in shards.values()) for split, shards in superseded.items()
    }
    records = {}
    for name, split in batch_manifest["splits"].items():
        records[name] = split["records"]
        target = grown["splits"].setdefault(
            name, {"fraction": split["fraction"], "records": 0, "bytes": 0, "shards": []}
        )
        target["shards"] = target["shards"] + split["shards"]
        target["num_shards"] = len(target["shards"])
        target["bytes"] += split["bytes"]
        target["records"] += split["records"]
    for name, n in replaced.items():  # also in a split the batch did not write (--split)
        grown["splits"][name]["records"] -= n
    for shards in superseded.values():
        for shard, keys in shards.items():
            grown["superseded"].setdefault(shard, [])
            grown["superseded"][shard] = sorted(set(grown["superseded"][shard]) | set(keys))
    counts = batch_manifest["counts"]
    grown["counts"] = {k: grown["counts"][k] + counts[k] for k in counts}
    by_reason = dict(grown["rejects"]["by_reason"])
    for reason, n in batch_manifest["rejects"]["by_reason"].items():
        by_reason[reason] = by_reason.get(reason, 0) + n
    grown["rejects"]["by_reason"] = dict(sorted(by_reason.items()))
    grown["version"] = batch
    grown["created"] = batch_manifest["created"]
    grown["batches"].append(
        batch_entry(
            batch,
            config,
            counts,
            batch_manifest["rejects"]["by_reason"],
            records,
            sum(replaced.values()),
        )
    )
    # The statistics stay those of the dataset before the batch (see the module docstring),
    # except the record counts per split, which follow the live records.
    grown["stats"]["records"] = {name: s["records"] for name, s in grown["splits"].items()}
    return grown


def check_appended(manifest: dict, config) -> None:
    """After an --append: ValueError (exit 2) when the batch added nothing, so the dataset kept
    its version; a scheduler must not take that for a grown dataset."""
    if manifest.get("version", 1) >= config.batch:
        return
    rejects = FileSystems.join(config.output_dir, rejects_name(config.batch))
    rejected = sum(1 for _ in _lines(rejects)) if FileSystems.exists(rejects) else 0
    what = (
        f"all {rejected} inputs were rejected (see {rejects})"
        if rejected
        else f"found no pairs under --images_dir {config.images_dir} and --masks_dir "
        f"{config.masks_dir}"
    )
    raise ValueError(
        f"--append: {what}; the dataset in {config.output_dir} is unchanged (version "
        f"{manifest.get('version', 1)})"
    )
