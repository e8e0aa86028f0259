"""Small side-by-side distribution plots as PNG bytes (matplotlib, without pyplot's global state).

python -c "from pipelines.monitor.plots import bars; open('x.png','wb').write(bars('t', ['a'], {'run': [1]}))"
"""

from __future__ import annotations

import base64
import io

import numpy as np

COLOURS = ("#1f77b4", "#ff7f0e")


def bars(title: str, labels: list[str], series: dict[str, list[float]], xlabel: str = "") -> bytes:
    """Grouped bars: one group per label, one bar per series (e.g. run vs baseline)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 2.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        axes.bar(positions + i * width, values, width, label=name, color=COLOURS[i % 2])
    step = max(1, len(labels) // 10)
    axes.set_xticks(positions[::step] + width * (len(series) - 1) / 2)
    axes.set_xticklabels(labels[::step], fontsize=8)
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel, fontsize=9)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def shares(counts) -> list[float]:
    total = float(sum(counts)) or 1.0
    return [c / total for c in counts]


def inline_png(data: bytes, alt: str) -> str:
    return f'<img alt="{alt}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
