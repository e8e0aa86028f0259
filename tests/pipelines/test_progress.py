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
