"""drift.json and a self-contained index.html with the run's distributions beside the baseline's.

segscale drift --run out/pred        # writes out/pred/drift/RUN_ID/{drift.json,index.html}
"""

from __future__ import annotations

import html
import json

from apache_beam.io.filesystems import FileSystems

from pipelines.fileio import write_atomically
from pipelines.monitor.plots import bars, inline_png, shares
from segmodel.prediction_stats import CONFIDENCE_BINS


def figures(run: dict, baseline: dict, class_names: list[str] | None) -> list[tuple[str, bytes]]:
    pair = ("run", "baseline")
    names = class_names or [f"class {i}" for i in range(len(run["class_fractions"]))]
    out = [
        (
            "Class pixel fractions (run: predicted)",
            bars(
                "Class pixel fractions",
                names,
                dict(zip(pair, (run["class_fractions"], baseline["class_fractions"]), strict=True)),
            ),
        )
    ]
    edges = [f"{i / CONFIDENCE_BINS:.2f}" for i in range(CONFIDENCE_BINS)]
    series = {"run": shares(run["confidence"]["histogram"])}
    if (baseline.get("confidence") or {}).get("histogram"):
        series["baseline"] = shares(baseline["confidence"]["histogram"])
    out.append(
        (
            "Pixel confidence (top-class probability), share of pixels",
            bars("Pixel confidence", edges, series, "top-class probability (bin start)"),
        )
    )
    histogram = run["image_mean_histogram"]
    low, high = histogram["range"]
    n = len(histogram["counts"])
    edges = [f"{low + (high - low) * i / n:.1f}" for i in range(n)]
    series = {"run": shares(histogram["counts"])}
    if baseline.get("image_mean_histogram"):
        series["baseline"] = shares(baseline["image_mean_histogram"]["counts"])
    out.append(
        (
            "Per-image mean intensity, in training standard deviations (0 = training mean)",
            bars("Per-image mean intensity", edges, series, "training std units"),
        )
    )
    return out


def page(result: dict, run: dict, baseline: dict, class_names) -> str:
    rows = "".join(
        f"<tr class='{'drift' if c['drift'] else ''}'><td>{html.escape(name)}</td>"
        f"<td>{'n/a' if c['value'] is None else c['value']}</td><td>{c['threshold']}</td>"
        f"<td>{'DRIFT' if c['drift'] else 'ok'}</td><td>{html.escape(c['detail'])}</td></tr>"
        for name, c in result["checks"].items()
    )
    plots = "".join(
        f"<h2>{html.escape(title)}</h2>{inline_png(png, title)}"
        for title, png in figures(run, baseline, class_names)
    )
    verdict = f"DRIFT: {', '.join(result['drifted'])}" if result["drift"] else "no drift"
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Drift of run {html.escape(result["run_id"])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
tr.drift td{{background:#fdd}}</style></head><body>
<h1>Run {html.escape(result["run_id"])}: {html.escape(verdict)}</h1>
<p>{result["images"]} images segmented in the run, compared with {html.escape(result["baseline"])}
({result["baseline_images"]} images). {html.escape(result["note"])}</p>
<table><tr><th>check</th><th>value</th><th>threshold</th><th></th><th>detail</th></tr>{rows}</table>
{plots}
</body></html>"""


def write_report(out_dir: str, result: dict, run: dict, baseline: dict, class_names=None) -> None:
    write_atomically(FileSystems.join(out_dir, "drift.json"), json.dumps(result, indent=2).encode())
    write_atomically(
        FileSystems.join(out_dir, "index.html"),
        page(result, run, baseline, class_names).encode("utf-8"),
    )
