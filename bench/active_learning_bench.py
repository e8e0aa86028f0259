"""Active learning: does the review queue pick images that teach the model more than random picks?

    .venv/bin/python bench/active_learning_bench.py --datasets synthetic_small,tissue_slices \
        --seeds 0,1,2 --rounds 3

For each dataset (bench/small_datasets.py) and seed: a model is trained on a labelled part of
the training split (--start, 20 % by default, drawn by the seed; val and test as they are). Then
two chains run from that same model, each with its own dataset copy and pool of unlabelled
training images, for --rounds rounds: each round K images are "labelled" (their ground-truth
masks play the person's corrections), appended to the chain's dataset (`ingest --append
--split train`), the chain's current model is fine-tuned on it (`train --init_from`), exported,
and evaluated on the test split (segmodel.evaluate, native resolution).
  queue   K = the review queue's picks: bulk inference over the pool (pipelines.infer), ranked
          by the queue's score (pipelines.monitor.review.least_sure: the uncertain-pixel share)
  random  K drawn at random from the pool (seeded)
Training is counted in steps, not minutes (--initial_steps, --finetune_steps), so that a busy
machine changes the wall time and not the result. Prints test mean IoU per round, mean ± sd
over seeds, for both chains and their difference; --json writes every number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from small_datasets import BUILDERS  # noqa: E402

INPROCESS = ["--profile=inprocess"]


def steps(steps: int, per_epoch: int = 20) -> list[str]:
    return [
        f"train.epochs={max(1, steps // per_epoch)}",
        f"train.steps_per_epoch={per_epoch}",
        "train.max_minutes=0",
    ]


def copy_pair(raw: dict, split_key: str, target: str, split: str | None) -> None:
    """raw images/<split_key>.png and its mask → target/{images,masks}/[split/]name.png."""
    name = os.path.basename(split_key)
    for kind, root in (("images", raw["images_dir"]), ("masks", raw["masks_dir"])):
        folder = os.path.join(target, kind, split) if split else os.path.join(target, kind)
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(os.path.join(root, f"{split_key}.png"), os.path.join(folder, f"{name}.png"))


def ingest(args: list[str]) -> dict:
    from pipelines.ingest import pipeline as ingest

    return ingest.run(args + INPROCESS)


def train_export(data: str, work: str, overrides: list[str], init_from: str | None) -> str:
    from segmodel import export, train

    train.train(data, f"{work}/run", "default", overrides, verbose=0, init_from=init_from)
    export.export(f"{work}/run", f"{work}/model")
    return f"{work}/model"


def test_iou(model: str, data: str) -> float:
    from segmodel import evaluate

    return float(evaluate.evaluate(model, data, "test", max_overlays=0)["mean_iou"])


def queue_picks(model: str, pool: list[str], raw: dict, work: str, k: int, classes: int):
    """The review queue's K picks from the pool: bulk inference, then its ranking."""
    from pipelines.infer import pipeline as infer
    from pipelines.monitor import review

    folder = f"{work}/pool"
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for key in pool:
        shutil.copyfile(
            os.path.join(raw["images_dir"], f"{key}.png"),
            os.path.join(folder, f"{os.path.basename(key)}.png"),
        )
    out = f"{work}/pred"
    infer.run(
        [f"--model_dir={model}", f"--input_pattern={folder}/*.png", f"--output_dir={out}"]
        + INPROCESS
    )
    picked = review.least_sure(review.prediction_records(out), k, classes, False)
    by_name = {os.path.basename(key): key for key in pool}
    return [by_name[r["path"][: -len(".png")]] for r in picked]


def run_seed(name: str, raw: dict, seed: int, args, work: str) -> dict:
    rng = np.random.default_rng(seed)
    train_keys = sorted(
        f"train/{f[:-4]}" for f in os.listdir(os.path.join(raw["images_dir"], "train"))
    )
    start = max(2, round(args.start * len(train_keys)))
    labelled = set(rng.choice(train_keys, start, replace=False).tolist())
    pool0 = [k for k in train_keys if k not in labelled]
    k = args.k or max(2, round(0.1 * len(train_keys)))
    first = f"{work}/labelled"
    for key in labelled:
        copy_pair(raw, key, first, "train")
    for split in ("val", "test"):
        for f in os.listdir(os.path.join(raw["images_dir"], split)):
            copy_pair(raw, f"{split}/{f[:-4]}", first, split)
    data0 = f"{work}/data0"
    ingest(
        [
            f"--images_dir={first}/images",
            f"--masks_dir={first}/masks",
            f"--output_dir={data0}",
            f"--num_classes={raw['num_classes']}",
            "--splits=folders",
        ]
    )
    model0 = train_export(data0, f"{work}/initial", steps(args.initial_steps), None)
    base = test_iou(model0, data0)
    result = {"start_images": start, "k": k, "initial": base, "queue": [], "random": []}
    print(f"{name} seed {seed}: {start} labelled, pool {len(pool0)}, K {k}: test {base:.4f}")
    for chain in ("queue", "random"):
        data, model, pool = f"{work}/{chain}/data", model0, list(pool0)
        shutil.copytree(data0, data)
        pick_rng = np.random.default_rng(1000 + seed)
        for round_ in range(1, args.rounds + 1):
            step = f"{work}/{chain}/r{round_}"
            if chain == "queue":
                picks = queue_picks(model, pool, raw, step, k, raw["num_classes"])
            else:
                picks = pick_rng.choice(pool, min(k, len(pool)), replace=False).tolist()
            pool = [key for key in pool if key not in set(picks)]
            for key in picks:
                copy_pair(raw, key, f"{step}/batch", None)
            ingest(
                [
                    f"--images_dir={step}/batch/images",
                    f"--masks_dir={step}/batch/masks",
                    f"--output_dir={data}",
                    "--append",
                    "--split=train",
                ]
            )
            model = train_export(data, step, steps(args.finetune_steps), model)
            iou = test_iou(model, data)
            result[chain].append(iou)
            print(f"  {chain:<6} round {round_}: +{len(picks)} images, test {iou:.4f}", flush=True)
    return result


def table(results: dict, rounds: int) -> list[str]:
    lines = ["dataset          round  queue            random           queue - random"]
    for name, seeds in results.items():
        runs = list(seeds.values())
        initial = np.array([r["initial"] for r in runs])
        lines.append(
            f"{name:<16} 0      {initial.mean():.4f}±{initial.std(ddof=1) if len(runs) > 1 else 0:.4f}"
            "   (the same start)"
        )
        for i in range(rounds):
            q = np.array([r["queue"][i] for r in runs])
            r_ = np.array([r["random"][i] for r in runs])
            d = q - r_
            sd = lambda a: a.std(ddof=1) if len(a) > 1 else 0.0  # noqa: E731
            lines.append(
                f"{name:<16} {i + 1}      {q.mean():.4f}±{sd(q):.4f}    {r_.mean():.4f}±{sd(r_):.4f}"
                f"    {d.mean():+.4f}±{sd(d):.4f}"
            )
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="synthetic_small,tissue_slices")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--start", type=float, default=0.2, help="Labelled share of train.")
    parser.add_argument("--k", type=int, default=0, help="Images per round (0: 10 % of train).")
    parser.add_argument("--initial_steps", type=int, default=300)
    parser.add_argument("--finetune_steps", type=int, default=100)
    parser.add_argument("--workdir", default="")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="al-bench-")
    results: dict = {}
    started = time.time()
    for name in args.datasets.split(","):
        raw = BUILDERS[name](f"{work}/{name}/raw")
        results[name] = {}
        for seed in (int(s) for s in args.seeds.split(",")):
            results[name][seed] = run_seed(name, raw, seed, args, f"{work}/{name}/s{seed}")
            if args.json:
                with open(args.json, "w") as f:
                    json.dump({"args": vars(args), "results": results}, f, indent=2)
    print("\n".join(table(results, args.rounds)))
    print(f"({time.time() - started:.0f} s; work folder {work})")


if __name__ == "__main__":
    main()
