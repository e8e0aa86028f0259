"""The review queue: the images of a run a person should look at (and label) next.

    segscale review --run out/pred --top 20
    # then correct the masks in out/pred/review/RUN_ID/masks/ and feed them back:
    segscale ingest --append --images_dir out/pred/review/RUN_ID/images \
        --masks_dir out/pred/review/RUN_ID/masks --output_dir out/data   # the training dataset

Ranks the images segmented in the latest run by how unsure the model was and writes, under
RUN/review/RUN_ID/ (one folder per run, so corrections made in an earlier queue are never
overwritten):
  queue.csv       rank, image, score, mean confidence, class fractions, where the copies are
  index.html      contact sheet: image | predicted overlay | confidence heat map
  images/, masks/ the images and their predicted masks in the layout `segscale ingest` pairs
                  (same relative path; masks as palette PNGs of class indices)

The score is the share of *uncertain* pixels (top-class probability below the midpoint between
chance and certainty, see `segmodel.prediction_stats`), ties broken by lower mean confidence.
Why this and not the mean confidence or entropy: a person corrects regions, and this share is
the area there is to look at; an image's mean confidence is dominated by its easy background, so
a photo with a badly segmented object on a clean background scores as confidently as a good
one. The ranking streams over the run's prediction records keeping only the top K (memory does
not grow with the run); only those K images are read and predicted again for the heat maps.
"""

from __future__ import annotations

import argparse
import csv
import heapq
import html
import io
import json
import posixpath
import sys

from runners.flags import BUCKET_FLAGS_HELP
from segmodel.commands import CommandParser


def score(record: dict, num_classes: int) -> float:
    """Higher is less sure. Masks written before uncertain pixels were recorded fall back on
    the mean confidence on the same chance-to-certain scale."""
    from segmodel.prediction_stats import certainty

    if record.get("uncertain_fraction") is not None:
        return float(record["uncertain_fraction"])
    return 1.0 - certainty(record["mean_confidence"], num_classes)


def prediction_records(output_dir: str):
    """Streams the records of OUTPUT_DIR/predictions-*.jsonl (the latest run's)."""
    from apache_beam.io.filesystems import FileSystems

    pattern = FileSystems.join(output_dir.rstrip("/"), "predictions-*.jsonl")
    for match in FileSystems.match([pattern])[0].metadata_list:
        with FileSystems.open(match.path) as f:
            for line in io.TextIOWrapper(f, encoding="utf-8"):
                if line.strip():
                    yield json.loads(line)


def least_sure(records, top: int, num_classes: int, include_skipped: bool) -> list[dict]:
    """The `top` records with the highest score, highest first (a bounded heap)."""
    chosen = (r for r in records if include_skipped or not r.get("skipped"))
    return heapq.nlargest(
        top, chosen, key=lambda r: (score(r, num_classes), -r["mean_confidence"], r["path"])
    )


def mask_name(relative: str) -> str:
    """Where ingest looks for an image's mask: same relative path, .png."""
    return posixpath.splitext(relative)[0] + ".png"


def thumbnails(pixels, mask_bytes: bytes, probs, num_classes: int, cell: int = 192):
    """(image, overlay, heat map) as PNG bytes, `cell` pixels on the long side, from the
    decoded image's pixels, the mask file and the probabilities."""
    import numpy as np
    from PIL import Image

    from segmodel.palette import colorize
    from segmodel.report import blend, to_display

    shown = to_display(pixels)
    classes = np.asarray(Image.open(io.BytesIO(mask_bytes)))
    overlay = blend(shown, colorize(classes, num_classes))
    from segmodel.prediction_stats import certainty

    sure = np.clip(certainty(probs.max(-1), num_classes), 0, 1)
    # Heat map: white where the model is sure, red where it is not.
    heat = np.stack([np.full_like(sure, 1.0), sure, sure], -1)
    heat = (heat * 255).astype(np.uint8)
    out = []
    for tile in (shown, overlay, heat):
        h, w = tile.shape[:2]
        scale = cell / max(h, w)
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        buffer = io.BytesIO()
        Image.fromarray(tile).resize(size, Image.NEAREST).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def parser() -> argparse.ArgumentParser:
    p = CommandParser(
        prog="segscale review",
        description="Write the review queue of the latest inference run: the K images the model "
        "was least sure about, as queue.csv, an HTML contact sheet, and image/mask folders that "
        "segscale ingest reads once the masks are corrected.",
        epilog=f"{BUCKET_FLAGS_HELP} Example: segscale review --run out/pred --top 20",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--run", required=True, help="Inference output folder (holds runs.jsonl).")
    p.add_argument("--top", type=int, default=20, help="How many images to queue.")
    p.add_argument(
        "--include_skipped",
        action="store_true",
        help="Also rank images segmented by earlier runs (still in this run's records).",
    )
    p.add_argument("--model_dir", default=None, help="Export folder (default: the run's model).")
    p.add_argument(
        "--review_dir", default=None, help="Where the queue goes (default: RUN/review/RUN_ID)."
    )
    return p


def review(args) -> dict:
    from apache_beam.io.filesystems import FileSystems

    from pipelines.fileio import read_bytes, write_atomically
    from pipelines.infer.handler import KerasSegmentationHandler
    from pipelines.infer.steps import decode_for_model
    from pipelines.model_files import local_model_dir
    from pipelines.monitor.drift import check_same_model
    from pipelines.monitor.ledger import find_run, read_runs
    from pipelines.monitor.plots import inline_png
    from pipelines.run_paths import mask_path, pattern_root, safe_relative
    from segmodel.saving import load_metadata

    if args.top < 1:
        raise ValueError("--top must be at least 1")
    record = find_run(read_runs(args.run), "latest", args.run)
    summary = json.loads(read_bytes(FileSystems.join(args.run.rstrip("/"), "run_summary.json")))
    if summary.get("run_id") != record["run_id"]:
        raise ValueError(
            f"{args.run}: run_summary.json is not the latest ledger run's; the predictions "
            "there belong to a run that did not finish. Rerun inference first."
        )
    if record.get("input_kind") != "files":
        raise ValueError(
            "the review queue copies the source images, and this run read TFRecord shards; "
            "run inference over the image files (--input_pattern) to review them"
        )
    model_dir = args.model_dir or record["model_dir"]
    metadata = load_metadata(local_model_dir(model_dir))
    check_same_model(metadata, record, model_dir)
    num_classes = metadata["num_classes"]
    records = (
        r for r in prediction_records(args.run) if safe_relative(r["path"], "") == r["path"]
    )  # a record whose path would leave the folders (edited by hand?) is not queued
    queue = least_sure(records, args.top, num_classes, args.include_skipped)
    out = args.review_dir or FileSystems.join(args.run.rstrip("/"), "review", record["run_id"])
    root = pattern_root(record["input"])
    # The run's own inference path: its handler (tiling and TTA as recorded), its decoding.
    handler = KerasSegmentationHandler.for_run(model_dir, record)
    model = handler.load_model() if queue else None
    rows, cells = [], []
    used_masks, kept = set(), 0
    for item in queue:
        relative = item["path"]
        if mask_name(relative) in used_masks:  # a.jpg and a.tif: ingest could pair only one
            continue
        used_masks.add(mask_name(relative))
        rank = len(rows) + 1
        image_bytes = read_bytes(root + relative)
        mask_bytes = read_bytes(mask_path(args.run, relative))
        # Never over a file already there: a person may be correcting that mask.
        for target, data in (
            (FileSystems.join(out, "images", relative), image_bytes),
            (FileSystems.join(out, "masks", mask_name(relative)), mask_bytes),
        ):
            if FileSystems.exists(target):
                kept += 1
            else:
                write_atomically(target, data)
        decoded, model_input = decode_for_model(image_bytes, metadata)
        (result,) = handler.run_inference([model_input], model)
        pictures = thumbnails(decoded.array, mask_bytes, result.inference, num_classes)
        rows.append(
            {
                "rank": rank,
                "image": relative,
                "score_uncertain_fraction": round(score(item, num_classes), 6),
                "mean_confidence": item["mean_confidence"],
                "class_fractions": " ".join(f"{f:.4f}" for f in item["class_fractions"]),
                "review_image": f"images/{relative}",
                "review_mask": f"masks/{mask_name(relative)}",
            }
        )
        cells.append(
            f"<tr><td>{rank}</td><td>{html.escape(relative)}<br>uncertain "
            f"{rows[-1]['score_uncertain_fraction']:.1%}, confidence "
            f"{item['mean_confidence']:.3f}</td>"
            + "".join(
                f"<td>{inline_png(p, t)}</td>"
                for p, t in zip(pictures, ("image", "overlay", "heat"), strict=True)
            )
            + "</tr>"
        )
    text = io.StringIO()
    fields = list(rows[0]) if rows else ["rank", "image", "score_uncertain_fraction"]
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(FileSystems.join(out, "queue.csv"), text.getvalue().encode("utf-8"))
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Review queue of run {html.escape(record["run_id"])}</title>
<style>body{{font-family:sans-serif;margin:2em}}td{{border-bottom:1px solid #ddd;padding:4px;
vertical-align:top}}</style></head><body>
<h1>Review queue: run {html.escape(record["run_id"])}</h1>
<p>The {len(rows)} images the model was least sure about (share of uncertain pixels). Heat map:
red where the model was unsure. Correct the masks in <code>masks/</code>, then
<code>segscale ingest --append --images_dir {html.escape(out)}/images --masks_dir
{html.escape(out)}/masks --output_dir YOUR_DATASET</code></p>
<table><tr><th>#</th><th>image</th><th>image</th><th>prediction</th><th>uncertainty</th></tr>
{"".join(cells)}</table></body></html>"""
    write_atomically(FileSystems.join(out, "index.html"), page.encode("utf-8"))
    return {"review_dir": out, "queued": rows, "run_id": record["run_id"], "kept": kept}


def main(argv=None) -> int:
    from runners.launch import cli_main

    return cli_main(_main, argv)


def _main(argv) -> int:
    from runners.launch import filesystem_flags

    with filesystem_flags(parser(), argv) as args:  # + --s3_endpoint_url etc. for buckets
        result = review(args)
        for row in result["queued"][:10]:
            print(
                f"  {row['rank']:>3}. {row['image']}: uncertain {row['score_uncertain_fraction']:.1%}"
                f", confidence {row['mean_confidence']:.3f}"
            )
        print(
            f"Queued {len(result['queued'])} images of run {result['run_id']} in "
            f"{result['review_dir']} (queue.csv, index.html, images/, masks/)"
        )
        if result["kept"]:
            print(
                f"  kept {result['kept']} files already there (corrections are never overwritten)"
            )
        return 0


if __name__ == "__main__":
    sys.exit(main())
