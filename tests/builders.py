"""Helpers that build small inputs for tests (imported by tests; pytest puts tests/ on the path)."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from segmodel import sample_data


def encode(array: np.ndarray, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def write(path: str, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def random_pair(seed: int, height: int = 32, width: int = 40, num_classes: int = 3):
    return sample_data.synthetic_pair(np.random.default_rng(seed), height, width, num_classes)


def huge_png_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny file whose PNG header claims width x height pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def bad_corpus(root) -> dict:
    """The hostile/bad input corpus shared by every stage's tests.

    Writes root/images and root/masks; returns {relative image name: expected outcome}, where
    the outcome is "ok" or the ingest reject reason.
    """
    import pathlib

    root = pathlib.Path(root)
    images, masks = root / "images", root / "masks"
    outcome = {}

    def pair(name, image_bytes, mask_bytes, expected):
        write(str(images / name), image_bytes)
        if mask_bytes is not None:
            mask_name = name.rsplit(".", 1)[0] + ".png"
            write(str(masks / mask_name), mask_bytes)
        outcome[name] = expected

    rgb, mask = random_pair(0, 24, 32)
    pair("good/plain.png", encode(rgb), encode(mask), "ok")
    pair("good/photo.jpg", encode(rgb, "JPEG"), encode(mask), "ok")
    pair("good/gray16.png", encode(rgb[..., 0].astype(np.uint16) * 250), encode(mask), "ok")
    pair("good/rgba.png", encode(np.dstack([rgb, rgb[..., :1]])), encode(mask), "ok")
    palette_image = Image.fromarray(mask, mode="P")
    palette_image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    buffer = io.BytesIO()
    palette_image.save(buffer, format="PNG")
    pair("good/palette.png", buffer.getvalue(), buffer.getvalue(), "ok")
    pair("good/gray.png", encode(rgb[..., 0]), encode(mask), "ok")
    pair("names/with space é ü 名前.png", encode(rgb), encode(mask), "ok")
    pair("bad/zero.png", b"", encode(mask), "image_empty_file")
    pair("bad/text.png", b"I am a text file, not a PNG", encode(mask), "image_not_an_image")
    pair("bad/trunc_jpeg.jpg", encode(rgb, "JPEG")[:200], encode(mask), "image_corrupt")
    pair("bad/trunc.png", encode(rgb)[:120], encode(mask), "image_corrupt")
    pair("bad/corrupt_mask.png", encode(rgb), encode(mask)[:70], "mask_corrupt")
    pair("bad/size.png", encode(rgb), encode(mask[:10]), "size_mismatch")
    pair("bad/range.png", encode(rgb), encode(mask + 9), "mask_values_out_of_range")
    pair("bad/bomb.png", huge_png_header(), encode(mask), "image_too_many_pixels")
    pair("bad/lonely.png", encode(rgb), None, "unpaired_image")
    write(str(masks / "bad" / "orphan.png"), encode(mask))
    outcome["<orphan mask>"] = "orphan_mask"
    pair("bad/dup.png", encode(rgb), encode(mask), "ambiguous_key")
    write(str(images / "bad" / "dup.jpg"), encode(rgb, "JPEG"))
    # symlinks: one to a file outside the input folder, one directory loop
    outside = root / "outside.png"
    write(str(outside), encode(rgb))
    os.symlink(outside, images / "bad" / "escape.png")
    write(str(masks / "bad" / "escape.png"), encode(mask))
    outcome["bad/escape.png"] = "symlink_outside_input"
    outcome["<escape mask: its image rejected>"] = "image_rejected"
    os.symlink(images, images / "good" / "loop")  # never followed: no loop
    outcome["good/loop"] = "symlink_to_folder"
    return outcome


def fingerprint_manifest(
    height=256, width=256, channels=1, frequencies=(0.7, 0.2, 0.1), train=150, val=30, bits="8"
):
    """A manifest with just what segmodel.plan reads (the dataset's fingerprint)."""
    return {
        "num_classes": len(frequencies),
        "splits": {"train": {"records": train}, "val": {"records": val}},
        "stats": {
            "image_height": {"min": height, "median": height, "max": height},
            "image_width": {"min": width, "median": width, "max": width},
            "channels": channels,
            "bit_depths": {bits: train + val},
            "class_frequencies": list(frequencies),
        },
    }


def nightly(model_dir, incoming, out, **env):
    """A function that runs runners/schedule/nightly.sh once as cron would (the in-process
    profile), checks that it exited 0 or 3 (quiet or drift), and returns the finished process."""
    import shutil
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "..", "runners", "schedule", "nightly.sh")
    env = dict(
        os.environ,
        SEGSCALE=os.path.join(os.path.dirname(sys.executable), "segscale"),
        MODEL_DIR=str(model_dir),
        INPUT_PATTERN=f"{incoming}/**",
        OUTPUT_DIR=str(out),
        TF_CPP_MIN_LOG_LEVEL="2",
        **env,
    )

    def night():
        done = subprocess.run(
            [shutil.which("bash"), script, "--profile=inprocess"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode in (0, 3), done.stdout[-2000:] + done.stderr[-3000:]
        return done

    return night
