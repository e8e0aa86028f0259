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
    parser.add_argument(
        "--split_above",
        type=int,
        default=1000,
        help="listing.SPLIT_ABOVE for this run (the product splits above 50,000 objects)",
    )
    parser.add_argument(
        "--request_ms",
        type=float,
        default=50.0,
        help="a real store's time per list request, for the modelled figures",
    )
    args = parser.parse_args()

    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
    from object_store import flags, s3_server

    from pipelines.ingest import listing
    from runners.launch import s3_settings

    class Count(logging.Handler):  # the emulator logs one line per request it answers
        requests = 0

        def emit(self, record):
            if "GET /seg" in record.getMessage():
                Count.requests += 1

    werkzeug = logging.getLogger("werkzeug")
    werkzeug.setLevel(logging.INFO)
    werkzeug.propagate = False
    werkzeug.addHandler(Count())
    listing.SPLIT_ABOVE = args.split_above
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
            Count.requests = 0
            start = time.perf_counter()
            (matched,) = FileSystems.match([f"{root}/**"])
            glob = sorted(m.path for m in matched.metadata_list)
            glob_s = time.perf_counter() - start
            glob_requests = Count.requests

            Count.requests = 0
            start = time.perf_counter()
            tasks = listing.listing_tasks(root, settings)
            plan_s = time.perf_counter() - start
            plan_requests = Count.requests

            def one(task):
                return [path for path, _, _ in listing.list_task(root, task, settings)]

            with ThreadPoolExecutor(args.workers) as pool:
                ranges = sorted(p for part in pool.map(one, tasks) for p in part)
            ranges_s = time.perf_counter() - start
            range_requests = Count.requests - plan_requests
            assert ranges == glob and len(glob) == 2 * half, (len(ranges), len(glob))
            print(
                f"run {run + 1}: {len(glob)} objects, same objects listed both ways: yes\n"
                f"  emulator: glob {glob_s:.2f} s; ranges {ranges_s:.2f} s ({len(tasks)} ranges,"
                f" boundaries {plan_s:.2f} s, {args.workers} workers); ratio glob / ranges"
                f" {glob_s / ranges_s:.2f}\n"
                f"  requests: glob {glob_requests} in a row; ranges {plan_requests} in a row at"
                f" the launcher (count check and skip scan) + {range_requests} over the workers"
            )
        # A real store answers a list request in about the same time wherever it starts; the
        # emulator scans its whole bucket for each. Model: requests in a row x request time.
        ms = args.request_ms / 1000
        glob_model = glob_requests * ms
        ranges_model = (plan_requests + range_requests / args.workers) * ms
        print(
            f"model at {args.request_ms:.0f} ms a request: glob {glob_model:.1f} s, ranges"
            f" {ranges_model:.1f} s with {args.workers} workers (ratio {glob_model / ranges_model:.2f})"
        )
        pages = 20_000_000 / 1000
        # The product's count check reads 50 pages before it splits, not this run's few. A
        # range is read one page after another, so a worker's share is whole ranges: with R
        # ranges of equal size (the best case: boundaries follow the names, not the counts),
        # ceil(R / workers) of them, each pages / R + 1 requests.
        launcher = plan_requests + (50_000 - args.split_above) / 1000
        ranges_count = len(tasks)
        for workers in (args.workers, 25, 200):
            per_worker = -(-ranges_count // workers) * (pages / ranges_count + 1)
            split = (launcher + per_worker) * ms
            print(
                f"  at 20 M objects: glob {pages * ms / 60:.0f} min; ranges {split / 60:.1f} min"
                f" with {workers} workers (ratio {pages * ms / split:.0f})"
            )


if __name__ == "__main__":
    main()
