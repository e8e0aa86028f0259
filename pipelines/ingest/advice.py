"""What to tell a user whose ingest accepted nothing, found nothing, or was mostly rejected.

    python -m pipelines.ingest ... --num_classes 2     # on 3-class masks: "did you mean ...?"

Pure functions over the manifest and the first rejects records: the usual flag behind the
dominant reject reason, and the checks that turn "0 accepted" into a non-zero exit with one
line a new user can act on.
"""

from __future__ import annotations

import json
import os
import re

from pipelines.fileio import is_remote

_VALUES = re.compile(r"mask values ([\d, ]+) are outside")


def largest_mask_value(reject_lines) -> int | None:
    """The largest out-of-range mask value named in rejects records (JSON lines), if any."""
    largest = None
    for line in reject_lines:
        match = _VALUES.search(json.loads(line).get("detail", ""))
        if match:
            value = max(int(v) for v in match.group(1).split(",") if v.strip())
            largest = value if largest is None else max(largest, value)
    return largest


def hint(reason: str, num_classes: int, mask_mode: str, largest: int | None) -> str | None:
    """The usual cause of a reject reason, as advice naming the flag; None when there is none."""
    if reason == "mask_values_out_of_range" and largest is not None:
        if largest == 255 and num_classes == 2 and mask_mode == "index":
            return "masks hold 0/255: did you mean --mask_mode binary?"
        return f"masks hold classes up to {largest}; did you mean --num_classes {largest + 1}?"
    pairing = (
        "images pair with masks by relative path without the extension; masks named like "
        "x_mask.png need --mask_suffix _mask"
    )
    return {
        "unpaired_image": pairing,
        "orphan_mask": pairing,
        "mask_not_single_channel": "colour-coded masks need --mask_mode rgb --palette FILE",
        "unknown_mask_colour": "add the missing colours to the --palette file",
        "outside_split_folders": "--splits folders takes the split from the first folder: "
        "images/train/..., images/val/..., images/test/...",
        "size_mismatch": "each mask must have its image's width and height",
        "unsupported_extension": "images and masks must be PNG, JPEG, TIFF, BMP or WebP",
        "mask_lossy": "save the masks as PNG: JPEG changes class values at every edge "
        "(0/255 masks: --mask_mode binary thresholds them)",
    }.get(reason)


def dominant_reason(by_reason: dict[str, int]) -> str | None:
    """The reason behind more than half of the rejects, if one is."""
    total = sum(by_reason.values())
    for reason, count in by_reason.items():
        if total and count * 2 > total:
            return reason
    return None


def nested(a: str, b: str) -> bool:
    """True when folder `a` is `b` or lies inside it (local paths resolved, others by prefix)."""
    if is_remote(a) or is_remote(b):
        a, b = a.rstrip("/") + "/", b.rstrip("/") + "/"
        return a.startswith(b)
    a, b = os.path.realpath(a), os.path.realpath(b)
    return a == b or a.startswith(b.rstrip(os.sep) + os.sep)
