"""Where a bulk-inference run puts each image's mask, shared by the run that writes it
(pipelines/infer/) and the stages that read it back (pipelines/monitor/: review, drift).

An input's relative path is taken from its pattern's folder (`pattern_root`); its mask lies at
OUTPUT_DIR/masks/<relative path>.png (`mask_path`), and a name that would leave the output folder
is refused (`safe_relative`).
"""

from __future__ import annotations

import posixpath
import re


def pattern_root(pattern: str) -> str:
    """The folder part of a glob pattern: relative paths of matches are taken from here."""
    prefix = re.match(r"^[^*?\[]*", pattern).group(0)
    return prefix if prefix.endswith("/") else posixpath.dirname(prefix) + "/"


def safe_relative(path: str, root: str) -> str | None:
    """`path` relative to root, or None if it would leave the output folder (.., absolute)."""
    relative = path[len(root) :] if path.startswith(root) else posixpath.basename(path)
    relative = posixpath.normpath(relative.replace("\\", "/"))
    if relative.startswith(("/", "../")) or relative in ("..", ".", ""):
        return None
    return relative


def mask_path(output_dir: str, relative: str) -> str:
    return f"{output_dir.rstrip('/')}/masks/{relative}.png"


def geo_mask_path(output_dir: str, relative: str) -> str:
    """The GeoTIFF beside the mask PNG of a georeferenced input (same transform and CRS)."""
    return f"{output_dir.rstrip('/')}/masks/{relative}.tif"
