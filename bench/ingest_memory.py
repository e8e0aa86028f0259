"""Ingest memory against the number of pairs: peak RSS of the launcher and of each worker.

    .venv/bin/python bench/ingest_memory.py --pairs 10000,300000,1000000 --workdir /tmp/mem

Data: one 16² RGB PNG and its 4-class mask, written again under N keys in folders of 1,000
(images/fNNNN/pNNNN.png, the mask at the same path under masks/), so disk and decode costs stay
small and what grows is what the pipeline keeps per pair. Runs `python -m pipelines.ingest`
(local profile, 2 workers) and samples every process of its tree every 0.2 s
(bench/proc_stats.py). Baseline: the smallest count in the same run; each row prints the
growth per pair against it. docs/scaling.md has the latest table and where the growth comes
from (the FnApiRunner's in-memory pairing shuffle).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proc_stats import run_measured  # noqa: E402

FOLDER = 1000


def generate(root: str, pairs: int) -> None:
    rng = np.random.default_rng(0)
    files = {}
    for kind, array in (
        ("images", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)),
        ("masks", rng.integers(0, 4, (16, 16), dtype=np.uint8)),
    ):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        files[kind] = buffer.getvalue()
    for i in range(pairs):
        for kind, data in files.items():
            folder = os.path.join(root, kind, f"f{i // FOLDER:04d}")
            if i % FOLDER == 0:
                os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"p{i % FOLDER:04d}.png"), "wb") as f:
                f.write(data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default="10000,300000", help="Comma-separated pair counts.")
    parser.add_argument("--workdir", default="", help="Data and outputs here (default: temp).")
    args = parser.parse_args(argv)
    work = args.workdir or tempfile.mkdtemp(prefix="ingest-memory-")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    base = None
    print(f"{'pairs':>10} {'launcher MiB':>13} {'workers MiB (peak each)':>24} {'wall s':>7}")
    for count in (int(c) for c in args.pairs.split(",")):
        data, out = os.path.join(work, f"data{count}"), os.path.join(work, f"out{count}")
        if not os.path.isdir(data):
            generate(data, count)
        shutil.rmtree(out, ignore_errors=True)
        cmd = [
            *(sys.executable, "-m", "pipelines.ingest", "--num_classes=4", "--profile=local"),
            *(f"--images_dir={data}/images", f"--masks_dir={data}/masks", f"--output_dir={out}"),
            "--direct_num_workers=2",
        ]
        peaks: dict[int, int] = {}
        seconds, _, _ = run_measured(cmd, env=env, interval=0.2, per_process=peaks)
        launcher = peaks.pop(0) / 2**20
        workers = sorted((v / 2**20 for v in peaks.values() if v > 50 * 2**20), reverse=True)
        line = f"{count:>10,} {launcher:>13.0f} {' / '.join(f'{w:.0f}' for w in workers):>24}"
        line += f" {seconds:>7.1f}"
        if base is None:
            base = (count, launcher)
        else:
            line += f"  launcher +{(launcher - base[1]) * 2**10 / (count - base[0]):.2f} KiB a pair"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
