"""Pairing images with masks, and the deterministic split (pure functions, no Beam).

    python -m pipelines.ingest --images_dir data/images --masks_dir data/masks ...

An image and its mask pair by their path relative to their folder without the extension,
through nested folders and across extensions: `a/b/x.jpg` pairs with `a/b/x.png`. A key with
no mask, no image, or several files on one side is a reject, never a silent drop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath

from pipelines.image_io import IMAGE_EXTENSIONS
from pipelines.rejects import Reject

IMAGE = "image"
MASK = "mask"


@dataclasses.dataclass(frozen=True)
class Pair:
    """An image and its mask, with the split the key hashes to.

    `nbytes` (both files' sizes) sizes the shards before anything is decoded.
    """

    key: str
    image: str
    mask: str
    split: str
    nbytes: int


def relative_path(path: str, root: str) -> str:
    """`path` relative to `root`, with "/" separators (local and gs:// inputs pair alike)."""
    root = root.rstrip("/\\")
    relative = path[len(root) :].lstrip("/\\") if path.startswith(root) else path
    return relative.replace("\\", "/")


def join(root: str, relative: str) -> str:
    return f"{root.rstrip('/')}/{relative}"


def relative_key(path: str, root: str, suffix: str = "") -> tuple[str, str]:
    """(key, extension) of `path` under `root`: the relative path without its extension.

    `suffix` is removed from the end of the stem, for datasets that name masks `x_mask.png`.
    """
    stem, ext = posixpath.splitext(relative_path(path, root))
    if suffix and stem.endswith(suffix):
        stem = stem[: -len(suffix)]
    return stem, ext.lower()


def is_supported(extension: str) -> bool:
    return extension in IMAGE_EXTENSIONS


def is_hidden(path: str, root: str) -> bool:
    """Dot-files and dot-folders (.DS_Store, .ipynb_checkpoints) under root are skipped."""
    root = root.rstrip("/\\")
    relative = path[len(root) :] if path.startswith(root) else path
    return any(part.startswith(".") for part in relative.replace("\\", "/").split("/") if part)


def split_fraction(key: str) -> float:
    """A number in [0, 1) fixed by the key alone: adding files never moves an existing key."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_sample(key: str, rate: float) -> bool:
    """Whether a key is in a deterministic sample of about `rate` of all keys (digest bytes
    that neither the split nor the shard uses)."""
    if rate >= 1:
        return True
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[16:24], "big") / 2**64 < rate


def shard_index(key: str, num_shards: int) -> int:
    """The shard a key lands in; independent of its split (other digest bytes)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[8:16], "big") % num_shards


def by_folder(splits: tuple[tuple[str, float | None], ...]) -> bool:
    """True for `--splits folders`: the first folder of a key names its split."""
    return all(fraction is None for _, fraction in splits)


def assign_split(key: str, splits: tuple[tuple[str, float | None], ...]) -> str | None:
    """Picks the split for a key from (name, fraction) pairs whose fractions sum to 1.

    With folder splits (fractions None) the key's first folder is its split: `val/a/x` is in
    `val`. None when that folder is not one of the splits (the pair is then rejected).
    """
    if by_folder(splits):
        top, sep, _ = key.partition("/")
        return top if sep and top in {name for name, _ in splits} else None
    x = split_fraction(key)
    cumulative = 0.0
    for name, fraction in splits:
        cumulative += fraction
        if x < cumulative:
            return name
    return splits[-1][0]  # x within float rounding of 1.0


FOLDER_SPLITS = (("train", None), ("val", None), ("test", None))


def parse_splits(text: str) -> tuple[tuple[str, float | None], ...]:
    """Parses "train=0.8,val=0.1,test=0.1", or "folders" / "folders:train,val,test" for data
    that comes already split into top-level folders (a common layout of public datasets, and
    the honest one for slices of a volume: neighbours must not straddle splits).

    Raises:
      ValueError: on a malformed entry, a negative fraction or a sum other than 1.
    """
    text = text.strip()
    if text == "folders":
        return FOLDER_SPLITS
    if text.startswith("folders:"):
        names = tuple(n.strip() for n in text[len("folders:") :].split(",") if n.strip())
        if not names or len(set(names)) != len(names) or any("/" in n for n in names):
            raise ValueError(f"--splits {text!r}: expected folders:NAME,NAME,... (unique names)")
        return tuple((name, None) for name in names)
    splits = []
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or not name:
            raise ValueError(f"--splits entry {item!r} is not name=fraction")
        fraction = float(value)
        if fraction < 0:
            raise ValueError(f"--splits fraction for {name!r} is negative")
        splits.append((name.strip(), fraction))
    total = sum(f for _, f in splits)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"--splits fractions sum to {total:g}, not 1")
    if len({n for n, _ in splits}) != len(splits):
        raise ValueError("--splits names must be unique")
    return tuple(splits)


def classify(
    key: str,
    entries: list[tuple[str, str, int]],
    splits: tuple[tuple[str, float | None], ...],
    rejected: list[tuple[str, str, str]] = (),
) -> Pair | Reject | None:
    """Decides what a key is, given every (role, path, size) found for it.

    `rejected` holds the (role, path, reason) of files with this key that were already
    rejected when listed (a symlink out of the folder, a FIFO, ...): their partner is then
    rejected for what it is, the partner of a rejected file, not as an orphan.

    Returns:
      A Pair when exactly one image and one mask share the key; None when every file of the
      key was rejected when listed (each is reported already); otherwise a Reject with
      reason unpaired_image, orphan_mask, image_rejected, mask_rejected or ambiguous_key.
    """
    images = sorted((p, s) for role, p, s in entries if role == IMAGE)
    masks = sorted((p, s) for role, p, s in entries if role == MASK)
    if not images and not masks:
        return None
    if bool(images) != bool(masks) and len(images) + len(masks) == 1:
        missing = MASK if images else IMAGE
        gone = sorted((p, why) for role, p, why in rejected if role == missing)
        if gone:
            path, why = gone[0]
            present = images or masks
            return Reject(
                f"{missing}_rejected",
                f"its {missing} {path} was rejected: {why}",
                key,
                image=present[0][0] if images else path,
                mask=present[0][0] if masks else path,
            )
    if len(images) > 1 or len(masks) > 1:
        return Reject(
            reason="ambiguous_key",
            detail=f"several files share key {key!r}: " + ", ".join(p for p, _ in images + masks),
            key=key,
            image=images[0][0] if images else None,
            mask=masks[0][0] if masks else None,
        )
    if not masks:
        return Reject("unpaired_image", "no mask with the same relative name", key, images[0][0])
    if not images:
        return Reject("orphan_mask", "no image with the same relative name", key, mask=masks[0][0])
    (image, image_size), (mask, mask_size) = images[0], masks[0]
    split = assign_split(key, splits)
    if split is None:
        return Reject(
            "outside_split_folders",
            f"--splits folders: the pair is not under one of the split folders "
            f"{', '.join(n + '/' for n, _ in splits)}",
            key,
            image,
            mask,
        )
    return Pair(key, image, mask, split, image_size + mask_size)
