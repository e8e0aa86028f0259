"""The data contract: what a dataset's images are and what a model takes, as typed objects
read from a manifest (ingest) or an export's metadata.json, with one `compatible()` check.

    python -c "from segmodel.contract import ModelContract; from segmodel.manifest import load_manifest; print(ModelContract.from_manifest(load_manifest('out/data')))"

Every stage that asks "does this model fit this data?" asks it here: fine-tuning (the dataset
must fit the parent model), promote (the candidate must take the current model's inputs),
evaluation with an export's inputs, bulk inference (each file against the model's inputs).
The facts:
- channels: the model's input channels. For pictures 1 (gray) or 3 (RGB; gray files are
  repeated, alpha dropped, RGB files turned gray by luma for a gray model). For rasters of
  bands (`bands`), the band count, which every file must have as it is.
- bit_depth: the value range the input is brought to: 8 (0..255), 16 (0..65535), or 32 for
  float pixels, which are taken as they are.
- mean, std: per input channel, of the training images on that range.
"""

from __future__ import annotations

import dataclasses
import math

from segmodel.preprocessing import (
    bands_from_manifest,
    bit_depth_from_manifest,
    normalization_from_manifest,
)


@dataclasses.dataclass(frozen=True)
class InputContract:
    """What a model's input is made from (segmodel/preprocessing.py applies it)."""

    channels: int
    bit_depth: int = 8
    bands: bool = False
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    def describe(self) -> str:
        kind = f"{self.channels} bands" if self.bands else {1: "gray", 3: "RGB"}[self.channels]
        depth = "float" if self.bit_depth == 32 else f"{self.bit_depth}-bit"
        return f"{kind}, {depth}"

    def accepts(self, channels: int, bit_depth: int, bands: bool) -> str | None:
        """Why a decoded file cannot be this input (None: it can). Pictures of any depth and
        of 1-4 channels convert to a picture model's input; a raster must match exactly."""
        if self.bands or bands:
            if not (self.bands and bands and channels == self.channels):
                theirs = f"{channels} bands" if bands else f"a picture of {channels} channel(s)"
                return f"the image is {theirs}; the model takes {self.describe()}"
            if (bit_depth == 32) != (self.bit_depth == 32):
                return (
                    f"the image's pixels are {'float' if bit_depth == 32 else 'integers'}; "
                    f"the model takes {self.describe()}"
                )
        return None


@dataclasses.dataclass(frozen=True)
class ModelContract:
    """What a model predicts and what it takes."""

    num_classes: int
    inputs: InputContract
    class_names: tuple[str, ...] | None = None
    ignore_label: int = 255

    @classmethod
    def from_manifest(cls, manifest: dict) -> ModelContract:
        """The contract a model trained on this dataset has."""
        mean, std = normalization_from_manifest(manifest)
        return cls(
            num_classes=manifest["num_classes"],
            class_names=tuple(manifest.get("class_names") or ()) or None,
            ignore_label=manifest.get("ignore_label", 255),
            inputs=InputContract(
                channels=manifest["stats"]["channels"],
                bit_depth=bit_depth_from_manifest(manifest),
                bands=bands_from_manifest(manifest),
                mean=tuple(mean),
                std=tuple(std),
            ),
        )

    @classmethod
    def from_metadata(cls, metadata: dict) -> ModelContract:
        """An export's contract (metadata.json; exports made before a field existed: 8-bit
        pictures)."""
        norm = metadata["normalization"]
        return cls(
            num_classes=metadata["num_classes"],
            class_names=tuple(metadata.get("class_names") or ()) or None,
            ignore_label=metadata.get("ignore_label", 255),
            inputs=InputContract(
                channels=metadata["channels"],
                bit_depth=metadata.get("bit_depth", 8),
                bands=metadata.get("bands", False),
                mean=tuple(norm["mean"]),
                std=tuple(norm["std"]),
            ),
        )

    def to_metadata(self) -> dict:
        """The fields metadata.json holds (read back by from_metadata)."""
        i = self.inputs
        return {
            "num_classes": self.num_classes,
            "class_names": list(self.class_names) if self.class_names else None,
            "ignore_label": self.ignore_label,
            "channels": i.channels,
            "bit_depth": i.bit_depth,
            "bands": i.bands,
            "normalization": {"mean": list(i.mean), "std": list(i.std)},
        }

    def compatible(self, other: ModelContract, normalization: bool = True) -> list[str]:
        """What differs between two contracts (empty: the same classes, and inputs made the
        same way). `normalization`: also compare mean and std (a fine-tune must keep them;
        two models each bring their own)."""
        problems = []
        if self.num_classes != other.num_classes:
            problems.append(f"{self.num_classes} classes vs {other.num_classes}")
        if self.class_names and other.class_names and self.class_names != other.class_names:
            problems.append(f"classes {list(self.class_names)} vs {list(other.class_names)}")
        a, b = self.inputs, other.inputs
        if (a.channels, a.bands) != (b.channels, b.bands):
            problems.append(f"inputs {a.describe()} vs {b.describe()}")
        if a.bit_depth != b.bit_depth:
            problems.append(f"bit depth {a.bit_depth} vs {b.bit_depth}")
        if normalization and not all(
            math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6)
            for x, y in zip([*a.mean, *a.std], [*b.mean, *b.std], strict=False)
        ):
            problems.append(
                f"normalisation mean {list(a.mean)} std {list(a.std)} vs mean {list(b.mean)} "
                f"std {list(b.std)}"
            )
        elif normalization and len(a.mean) != len(b.mean):
            problems.append(f"{len(a.mean)} vs {len(b.mean)} normalised channels")
        return problems
