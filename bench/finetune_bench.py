"""Fine-tuning schedule: which peak learning rate should `train --init_from` use?

    .venv/bin/python bench/finetune_bench.py --datasets synthetic_small --seeds 0,1 \
        --scales 0.1,0.3,1.0

For each dataset (bench/small_datasets.py) and seed: a model trained on 20 % of the training
split (as in bench/active_learning_bench.py), then 10 % more training images appended at random
(`ingest --append --split train`). From there, with the same number of steps each:
  scale S   fine-tune from the model (`train --init_from`) with a peak learning rate of S × the
            parent's (segmodel.finetune.FINETUNE: the default scale and warm-up)
  scratch   the baseline: a new model trained from scratch on the grown dataset
Prints test mean IoU (segmodel.evaluate) per setting, mean over seeds, and each setting's
difference to the scratch baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

import active_learning_bench as al  # noqa: E402
from small_datasets import BUILDERS  # noqa: E402


def run_seed(raw: dict, seed: int, args, work: str) -> dict:
    from segmodel import config as config_lib
    from segmodel.saving import load_metadata

    rng = np.random.default_rng(seed)
    keys = sorted(f"train/{f[:-4]}" for f in os.listdir(os.path.join(raw["images_dir"], "train")))
    start = max(2, round(0.2 * len(keys)))
    labelled = set(rng.choice(keys, start, replace=False).tolist())
    pool = [k for k in keys if k not in labelled]
    first = f"{work}/labelled"
    for key in labelled:
        al.copy_pair(raw, key, first, "train")
    for split in ("val", "test"):
        for f in os.listdir(os.path.join(raw["images_dir"], split)):
            al.copy_pair(raw, f"{split}/{f[:-4]}", first, split)
    data = f"{work}/data"
    al.ingest(
        [
            f"--images_dir={first}/images",
            f"--masks_dir={first}/masks",
            f"--output_dir={data}",
            f"--num_classes={raw['num_classes']}",
            "--splits=folders",
        ]
    )
    model0 = al.train_export(data, f"{work}/initial", al.steps(args.initial_steps), None)
    for key in rng.choice(pool, max(2, round(0.1 * len(keys))), replace=False):
        al.copy_pair(raw, key, f"{work}/batch", None)
    al.ingest(
        [
            f"--images_dir={work}/batch/images",
            f"--masks_dir={work}/batch/masks",
            f"--output_dir={data}",
            "--append",
            "--split=train",
        ]
    )
    parent_lr = config_lib.from_dict(load_metadata(model0)["config"]).train.learning_rate
    result = {"initial": al.test_iou(model0, data)}
    steps = al.steps(args.finetune_steps)
    for scale in args.scales.split(","):
        lr = [f"train.learning_rate={parent_lr * float(scale)}"]
        model = al.train_export(data, f"{work}/scale{scale}", steps + lr, model0)
        result[f"scale {scale}"] = al.test_iou(model, data)
    model = al.train_export(data, f"{work}/scratch", steps, None)
    result["scratch"] = al.test_iou(model, data)
    shutil.rmtree(f"{work}/batch", ignore_errors=True)
    print(seed, {k: round(v, 4) for k, v in result.items()}, flush=True)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="synthetic_small")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--scales", default="0.1,0.3,1.0")
    parser.add_argument("--initial_steps", type=int, default=300)
    parser.add_argument("--finetune_steps", type=int, default=100)
    parser.add_argument("--workdir", default="")
    args = parser.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="finetune-bench-")
    for name in args.datasets.split(","):
        raw = BUILDERS[name](f"{work}/{name}/raw")
        runs = [
            run_seed(raw, int(seed), args, f"{work}/{name}/s{seed}")
            for seed in args.seeds.split(",")
        ]
        print(f"{name}: test mean IoU over {len(runs)} seeds ({args.finetune_steps} steps each)")
        scratch = np.mean([r["scratch"] for r in runs])
        for setting in runs[0]:
            mean = np.mean([r[setting] for r in runs])
            print(f"  {setting:<12} {mean:.4f}   vs scratch {mean - scratch:+.4f}")
    print(f"(work folder {work})")


if __name__ == "__main__":
    main()
