import re

import numpy as np
from PIL import Image

from segmodel import palette, report
from segmodel.metrics import summarize


def test_html_report_links_only_images_that_exist(tmp_path):
    history = [
        {
            "epoch": e,
            "loss": 1 / e,
            "val_loss": 1.2 / e,
            "mean_iou": 0.5 + e / 20,
            "val_mean_iou": 0.4 + e / 20,
        }
        for e in range(1, 6)
    ]
    report.plot_history(history, str(tmp_path / "curves.png"))
    rows = [
        (
            "a",
            np.random.default_rng(0).integers(0, 65535, (20, 30), dtype=np.uint16),
            np.zeros((20, 30), np.uint8),
            np.ones((20, 30), np.uint8),
        ),
        ("b", np.zeros((10, 10, 3), np.uint8), None, np.zeros((10, 10), np.uint8)),
    ]
    report.overlay_grid(rows, 2, 255, str(tmp_path / "overlays.png"))
    metrics = summarize(np.array([[5, 1], [2, 8]]), ["background", "nucleus"])
    report.write_html_report(
        str(tmp_path / "index.html"),
        title="t",
        facts={"data": "16 pixels"},
        metrics=metrics,
        images=[("curves", "curves.png"), ("overlays", "overlays.png")],
    )
    page = (tmp_path / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources == ["curves.png", "overlays.png"]
    for src in sources:
        assert Image.open(tmp_path / src).size[0] > 100
    assert "nucleus" in page and "0.6250" in page and "0.7273" in page  # 5/(5+1+2), 8/(8+2+1)
    assert f"{metrics['per_class_iou']['nucleus']:.4f}" in page


def test_colorize_marks_ignored_pixels_grey():
    rgb = report.colorize(np.array([[0, 1, 255]]), 2, 255)
    assert rgb[0, 2].tolist() == palette.IGNORE_COLOUR.tolist()
    assert rgb[0, 0].tolist() != rgb[0, 1].tolist()


def test_to_display_handles_16_bit_and_gray():
    out = report.to_display(np.arange(100, dtype=np.uint16).reshape(10, 10) * 600)
    assert out.dtype == np.uint8 and out.shape == (10, 10, 3) and out.max() == 255


def test_overlay_grid_drops_the_truth_column_when_no_row_has_one(tmp_path):
    rows = [("x", np.zeros((10, 10, 3), np.uint8), None, np.ones((10, 10), np.uint8))]
    report.overlay_grid(rows, 2, 255, str(tmp_path / "two.png"), cell=50)
    assert Image.open(tmp_path / "two.png").size[0] == 100  # image | prediction
    rows.append(("y", np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10), np.uint8), None))
    report.overlay_grid(rows, 2, 255, str(tmp_path / "three.png"), cell=50)
    assert Image.open(tmp_path / "three.png").size[0] == 150
