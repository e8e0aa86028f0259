import io

from pipelines.progress import Progress


def test_one_line_at_most_every_interval():
    now = [0.0]
    progress = Progress("ingest", "pairs", every=10, clock=lambda: now[0])
    progress.total = 5000
    out = io.StringIO()
    for i in range(3000):
        now[0] = (i + 1) / 100  # 100 pairs a second for 30 s
        progress.add(out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("ingest: 1,000 pairs done by worker ")
    assert lines[0].endswith("(100/s) of 5,000 in the input")


def test_a_slow_worker_is_not_shown_as_doing_nothing():
    now = [0.0]
    progress = Progress("infer", "images", every=10, clock=lambda: now[0])
    out = io.StringIO()
    now[0] = 12.0  # one image in 12 s: "(0/s)" would say nothing was done
    progress.add(out=out)
    assert out.getvalue().startswith("infer: 1 image done by worker ")
    assert out.getvalue().rstrip().endswith("(12.0 s each)")
    now[0] = 24.0
    progress.add(60, out=out)  # 61 in 24 s
    assert out.getvalue().splitlines()[-1].endswith("(2.5/s)")
