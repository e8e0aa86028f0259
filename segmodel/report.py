"""Pictures and tables people look at: coloured masks, image | truth | prediction overlays.

    python -m segmodel.evaluate ...   # writes overlays.png through here

Pure numpy + Pillow: no plotting library needed to see what a model does.
"""

from __future__ import annotations

import html

import numpy as np
from PIL import Image, ImageDraw

from segmodel import files
from segmodel.palette import colorize


def to_display(image: np.ndarray) -> np.ndarray:
    """Any image (float, 16-bit, 1/3/4 channels) → uint8 RGB, stretched to its own range."""
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[..., None]
    image = image[..., :3]  # of a raster of bands: its first three
    if image.shape[-1] < 3:
        image = np.repeat(image[..., :1], 3, axis=-1)
    lo, hi = np.percentile(image, 1), np.percentile(image, 99)
    scaled = (image - lo) / max(hi - lo, 1e-6)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def blend(image_rgb: np.ndarray, mask_rgb: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    return (image_rgb * (1 - alpha) + mask_rgb * alpha).astype(np.uint8)


def overlay_grid(rows, num_classes: int, ignore_label: int, path: str, cell: int = 192) -> None:
    """Writes a PNG grid: one row per (name, image, truth, prediction).

    Columns: image | truth | prediction; when no row has a truth (bulk inference), the truth
    column is left out rather than drawn empty.
    """
    with_truth = any(truth is not None for _, _, truth, _ in rows)
    titles = ("image", "truth", "prediction") if with_truth else ("image", "prediction")
    header = 22
    width, height = len(titles) * cell, header + len(rows) * (cell + header)
    canvas = Image.new("RGB", (width, max(height, header + 1)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for col, title in enumerate(titles):
        draw.text((col * cell + 6, 4), title, fill=(0, 0, 0))
    for r, (name, image, truth, pred) in enumerate(rows):
        top = header + r * (cell + header)
        draw.text((6, top + 3), str(name)[:80], fill=(60, 60, 60))
        shown = to_display(image)
        tiles = [shown]
        for mask in (truth, pred) if with_truth else (pred,):
            tiles.append(
                None if mask is None else blend(shown, colorize(mask, num_classes, ignore_label))
            )
        for col, tile in enumerate(tiles):
            if tile is None:
                continue
            h, w = tile.shape[:2]
            scale = cell / max(h, w)
            size = (max(1, int(w * scale)), max(1, int(h * scale)))
            canvas.paste(
                Image.fromarray(tile).resize(size, Image.NEAREST), (col * cell, top + header)
            )
    with files.atomic_path(path) as temp:
        canvas.save(temp, format="PNG")


def metrics_table(metrics: dict) -> str:
    """A per-class console table plus the headline numbers."""
    lines = [f"{'class':<20} {'IoU':>7} {'Dice':>7} {'pixels':>12}"]
    for name, iou in metrics["per_class_iou"].items():
        dice = metrics["per_class_dice"][name]
        fmt = lambda v: "   n/a" if v is None else f"{v:7.4f}"  # noqa: E731
        lines.append(f"{name:<20} {fmt(iou)} {fmt(dice)} {metrics['class_pixels'][name]:>12,}")
    lines.append(
        f"mean IoU {metrics['mean_iou']:.4f} | mean Dice {metrics['mean_dice']:.4f} | "
        f"pixel accuracy {metrics['pixel_accuracy']:.4f}"
    )
    return "\n".join(lines)


def plot_history(history: list[dict], path: str, size=(720, 300)) -> None:
    """Training curves as a PNG: loss (left) and mean IoU (right) per epoch, train and val."""
    width, height = size
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    panels = [("loss", ("loss", "val_loss")), ("mean IoU", ("mean_iou", "val_mean_iou"))]
    colours = {"train": (31, 119, 180), "val": (214, 39, 40)}
    panel_w = width // 2
    for p, (title, keys) in enumerate(panels):
        left, top, right, bottom = p * panel_w + 45, 25, (p + 1) * panel_w - 15, height - 30
        draw.rectangle([left, top, right, bottom], outline=(160, 160, 160))
        draw.text((left, 6), title, fill=(0, 0, 0))
        series = {
            label: [(h["epoch"], h[k]) for h in history if h.get(k) is not None]
            for label, k in zip(("train", "val"), keys, strict=True)
        }
        values = [v for pts in series.values() for _, v in pts]
        if not values:
            continue
        lo, hi = min(values), max(values)
        hi = hi if hi > lo else lo + 1e-6
        epochs = [e for pts in series.values() for e, _ in pts]
        e0, e1 = min(epochs), max(max(epochs), min(epochs) + 1)
        draw.text((p * panel_w + 4, top - 4), f"{hi:.3g}", fill=(80, 80, 80))
        draw.text((p * panel_w + 4, bottom - 8), f"{lo:.3g}", fill=(80, 80, 80))
        draw.text((left, bottom + 6), f"epoch {e0}", fill=(80, 80, 80))
        draw.text((right - 50, bottom + 6), f"epoch {e1}", fill=(80, 80, 80))
        for label, points in series.items():
            xy = [
                (
                    left + (e - e0) / (e1 - e0) * (right - left),
                    bottom - (v - lo) / (hi - lo) * (bottom - top),
                )
                for e, v in points
            ]
            if len(xy) > 1:
                draw.line(xy, fill=colours[label], width=2)
            for x, y in xy:
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colours[label])
        draw.text((right - 60, top + 4), "- train", fill=colours["train"])
        draw.text((right - 60, top + 16), "- val", fill=colours["val"])
    with files.atomic_path(path) as temp:
        canvas.save(temp, format="PNG")


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header) if any(header) else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def write_html_report(
    path: str,
    *,
    title: str,
    facts: dict,
    metrics: dict,
    images: list[tuple[str, str]],
    sections: list[tuple[str, str]] = (),
) -> None:
    """A static page: facts, metric tables, confusion matrix, the given (caption, file) images
    (paths relative to the page), then (heading, trusted HTML) sections."""
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    names = list(metrics["per_class_iou"])
    per_class = [
        [
            n,
            fmt(metrics["per_class_iou"][n]),
            fmt(metrics["per_class_dice"][n]),
            f"{metrics['class_pixels'][n]:,}",
        ]
        for n in names
    ]
    confusion = [[names[i], *row] for i, row in enumerate(metrics["confusion_matrix"])]
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        _table(["", ""], [[k, v] for k, v in facts.items()]),
        "<h2>Test metrics</h2>",
        _table(
            ["mean IoU", "mean Dice", "pixel accuracy", "images"],
            [
                [
                    fmt(metrics["mean_iou"]),
                    fmt(metrics["mean_dice"]),
                    fmt(metrics["pixel_accuracy"]),
                    metrics.get("images", ""),
                ]
            ],
        ),
        "<h2>Per class</h2>",
        _table(["class", "IoU", "Dice", "pixels (truth)"], per_class),
        "<h2>Confusion matrix (rows: truth, columns: prediction; pixels)</h2>",
        _table(["", *names], confusion),
    ]
    for caption, src in images:
        parts.append(
            f'<h2>{html.escape(caption)}</h2><img src="{html.escape(src)}" alt="{html.escape(caption)}">'
        )
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:.25em .6em;text-align:right}img{max-width:100%;border:1px solid #ddd}"
    )
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
