"""Training benchmarks on the synthetic data: quality in a time budget, and input throughput.

    .venv/bin/python bench/train_bench.py quality --minutes 10      # default preset, val mean IoU
    .venv/bin/python bench/train_bench.py throughput                # tf.data vs train step; fit stream vs memory

quality: generates 800 synthetic 4-class pairs (sides 96..192 px), ingests them, trains the
`default` preset (the plan for this dataset) for --minutes on this machine, prints the best validation mean IoU
(target >= 0.90 within 10 minutes on 2 cores) and evaluates the test split.

throughput, in one run on the same shards: (a) tf.data images/s of the training stream alone,
(b) images/s the train step consumes on one batch held in memory (the ceiling), (c) `fit` from
the stream vs `fit` on the same batches materialised in memory first (target: within 10 %).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np


def prepare(work: str, count: int) -> str:
    from pipelines.ingest import pipeline as ingest
    from segmodel import sample_data

    data = os.path.join(work, "data")
    if not os.path.exists(os.path.join(data, "manifest.json")):
        sample_data.write_dataset(
            os.path.join(work, "sample"),
            count,
            num_classes=4,
            size=(128, 128),
            vary_size=True,
            seed=3,
        )
        ingest.run(
            [
                f"--images_dir={work}/sample/images",
                f"--masks_dir={work}/sample/masks",
                f"--output_dir={data}",
                "--num_classes=4",
                "--profile=local",
                "--direct_num_workers=2",
                "--class_names=background,disc,box,triangle",
            ]
        )
    return data


def quality(work: str, minutes: float) -> None:
    from segmodel import evaluate, train

    data = prepare(work, 800)
    run = os.path.join(work, "run")
    start = time.time()
    state = train.train(data, run, "default", [f"train.max_minutes={minutes}"])
    seconds = time.time() - start
    test = evaluate.evaluate(
        os.path.join(run, "best.keras"), data, "test", os.path.join(work, "eval")
    )
    print(
        f"default preset: {state['epochs_done']} epochs in {seconds / 60:.1f} min; best val mean "
        f"IoU {state['best']:.4f} (epoch {state['best_epoch']}); test mean IoU "
        f"{test['mean_iou']:.4f}, pixel accuracy {test['pixel_accuracy']:.4f}  (target >= 0.90)"
    )


def throughput(work: str, batches: int) -> None:
    import tensorflow as tf

    from segmodel import config, unet
    from segmodel.input_pipeline import make_dataset
    from segmodel.manifest import load_manifest
    from segmodel.objective import compile_model

    data = prepare(work, 800)
    manifest = load_manifest(data)
    cfg, _ = config.resolve("default", [], manifest)
    bs = cfg.data.batch_size
    ds = make_dataset(data, manifest, "train", cfg.data, training=True, seed=0)
    it = iter(ds)
    next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    stream_ips = batches * bs / (time.perf_counter() - start)

    def fresh_model():
        model = unet.build_unet(cfg.model, manifest["num_classes"], manifest["stats"]["channels"])
        return compile_model(model, cfg, manifest)

    model = fresh_model()
    x, y = next(iter(ds))
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(batches // 2):
        model.train_on_batch(x, y)
    step_ips = (batches // 2) * bs / (time.perf_counter() - start)

    held = list(ds.take(batches))
    memory_ds = tf.data.Dataset.from_tensor_slices(
        (tf.stack([b[0] for b in held]), tf.stack([b[1] for b in held]))
    ).repeat()
    timings = {}
    for name, source in (("stream", ds), ("memory", memory_ds)):
        model = fresh_model()
        model.fit(source, steps_per_epoch=3, epochs=1, verbose=0)  # warm-up: tracing
        start = time.perf_counter()
        model.fit(source, steps_per_epoch=batches, epochs=1, verbose=0)
        timings[name] = batches * bs / (time.perf_counter() - start)
    print(f"tf.data stream alone: {stream_ips:8.1f} images/s")
    print(
        f"train step (memory):  {step_ips:8.1f} images/s  -> input headroom {stream_ips / step_ips:.1f}x"
    )
    print(f"fit from stream:      {timings['stream']:8.1f} images/s")
    print(
        f"fit from memory:      {timings['memory']:8.1f} images/s  -> stream/memory "
        f"{timings['stream'] / timings['memory']:.3f} (target >= 0.90)"
    )
    print(
        f"default preset training throughput: {timings['stream']:.1f} images/s "
        f"({cfg.data.patch_size}² patches, batch {bs})"
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("quality", "throughput"))
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--workdir", default="", help="Reuse data across runs (default: temp dir).")
    args = parser.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="train-bench-")
    os.makedirs(work, exist_ok=True)
    if args.mode == "quality":
        quality(work, args.minutes)
    else:
        throughput(work, args.batches)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    np.set_printoptions(precision=4)
    main()
