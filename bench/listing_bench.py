"""Listing an S3 input: key ranges listed in parallel against Beam's single glob, in one run.

    .venv/bin/python bench/listing_bench.py --objects 20000 --workers 2

On an S3 emulator on loopback (moto's server mode) with --objects keys named as image folders
often are (img_000123.png under images/ and masks/, one shared prefix):
  glob    FileSystems.match(["s3://b/raw/**"]): what the ingest did before, on one worker
  ranges  pipelines.ingest.listing: the launcher's skip scan for boundaries, then the key
          ranges listed by --workers threads at once (as the ingest's workers do after its
          reshuffle)
Checks that both list the same objects (so the pairing, a pure function of the listing, is the
same) and prints the times and their ratio. The emulator answers from memory on this machine:
its per-request cost, not a real store's latency, sets the absolute figures.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    from object_store import flags, s3_server

    from pipelines.ingest import listing
    from runners.launch import s3_settings

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with s3_server() as (url, client):
        half = args.objects // 2
        for i in range(half):
            for role in ("images", "masks"):
                client.put_object(Bucket="seg", Key=f"raw/{role}/img_{i:06d}.png", Body=b"")
        options = PipelineOptions(flags(url))
        FileSystems.set_options(options)
        settings = s3_settings(options)
        root = "s3://seg/raw"
        for run in range(args.repeats):
            start = time.perf_counter()
            (matched,) = FileSystems.match([f"{root}/**"])
            glob = sorted(m.path for m in matched.metadata_list)
            glob_s = time.perf_counter() - start

            start = time.perf_counter()
            tasks = listing.listing_tasks(root, settings)
            plan_s = time.perf_counter() - start

            def one(task):
                return [path for path, _, _ in listing.list_task(root, task, settings)]

            with ThreadPoolExecutor(args.workers) as pool:
                ranges = sorted(p for part in pool.map(one, tasks) for p in part)
            ranges_s = time.perf_counter() - start
            assert ranges == glob and len(glob) == 2 * half, (len(ranges), len(glob))
            print(
                f"run {run + 1}: {len(glob)} objects; glob {glob_s:.2f} s; ranges {ranges_s:.2f} s"
                f" ({len(tasks)} ranges, boundaries {plan_s:.2f} s, {args.workers} workers);"
                f" ratio glob / ranges {glob_s / ranges_s:.2f}; same objects: yes"
            )


if __name__ == "__main__":
    main()
