"""Runs a command and reports its wall time and the peak RSS of its whole process tree.

    python bench/proc_stats.py -- python -m pipelines.ingest ...

Beam's FnApiRunner starts worker processes, so the peak of the launcher alone would miss most
of the memory; we sample every process descended from the command through /proc (Linux).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def _children(pid: int) -> list[int]:
    """Children of every thread of pid (Beam starts workers from non-main threads)."""
    children = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return children


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def tree_rss(pid: int) -> int:
    return sum(_rss_bytes(p) for p in _tree(pid))


def _tree(pid: int) -> list[int]:
    pids, stack = [], [pid]
    while stack:
        p = stack.pop()
        pids.append(p)
        stack.extend(_children(p))
    return pids


def run_measured(
    cmd: list[str], *, env=None, interval: float = 0.1, per_process: dict | None = None
) -> tuple[float, int, str]:
    """Runs cmd; returns (seconds, peak tree RSS in bytes, combined output).

    per_process: if given, filled with {pid: peak RSS in bytes} for every process of the tree,
    the command's own process under key 0 (for Beam: the launcher; the others are workers)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    peak = 0
    output: list[str] = []
    import threading

    reader = threading.Thread(target=lambda: output.append(proc.stdout.read()), daemon=True)
    reader.start()
    while proc.poll() is None:
        if per_process is None:
            peak = max(peak, tree_rss(proc.pid))
        else:
            sizes = {p: _rss_bytes(p) for p in _tree(proc.pid)}
            peak = max(peak, sum(sizes.values()))
            for p, size in sizes.items():
                key = 0 if p == proc.pid else p
                per_process[key] = max(per_process.get(key, 0), size)
        time.sleep(interval)
    reader.join()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{''.join(output)[-4000:]}")
    return seconds, peak, "".join(output)


def run_timed(cmd: list[str], *, env=None) -> float:
    """Runs cmd without sampling anything; returns its wall time in seconds."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    return seconds


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--":
        args = args[1:]
    seconds, peak, out = run_measured(args)
    print(out)
    print(f"wall {seconds:.1f}s, peak RSS (process tree) {peak / 2**20:.0f} MiB")
