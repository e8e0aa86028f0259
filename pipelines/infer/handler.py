"""A small Beam ModelHandler for our exported Keras models (`M/model.keras` + `M/metadata.json`).

    python -m pipelines.infer --model_dir out/model ...   # RunInference uses this handler

Why our own: Beam's TensorFlow handler pulls in tensorflow-hub and a second TensorFlow, and Keras 3
cannot load legacy SavedModels. This one loads `model.keras` (Keras safe mode: no embedded code
unless `unsafe=True`), once per worker process — RunInference keeps it in a shared handle that
every thread of the process uses — and runs `segmodel.predict.predict_images`, so images of any
size work: same-size images are batched, large ones are tiled; with `tta` each batch is
predicted in every flipped/rotated view and the probabilities averaged (`segmodel.tta`). Beam batches elements between
`min_batch_size` and `max_batch_size`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipelines.infer.options import TILE_OVERLAP, TILE_SIZE


class KerasSegmentationHandler(ModelHandler[np.ndarray, PredictionResult, object]):
    """Normalised images [H, W, C] float32 → PredictionResult(image, probabilities [H, W, K])."""

    def __init__(
        self,
        model_dir: str,
        *,
        tile_size: int = TILE_SIZE,
        tile_overlap: int = TILE_OVERLAP,
        min_batch_size: int = 1,
        max_batch_size: int = 8,
        unsafe: bool = False,
        tta: str = "none",
        preloaded_by: str | None = None,
        form=None,
    ):
        """`preloaded_by`: the run id whose `warm_start.WarmWorkers` may have loaded the model
        on this worker already (then it is taken from there)."""
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self._model_dir = model_dir
        self._tile_size = tile_size
        self._tile_overlap = tile_overlap
        self._batch_size = max_batch_size
        self._unsafe = unsafe
        self._tta = tta
        self._preloaded_by = preloaded_by
        self._form = form  # pipelines/infer/forms.FormRequest; None: the Keras model

    @classmethod
    def for_run(cls, model_dir: str, run: dict, unsafe: bool = False, batch_size: int = 8):
        """The handler a finished run used, from its ledger record: the same tiling, TTA and
        runtime form (what `segscale review` predicts again with)."""
        from pipelines.infer.forms import FormRequest

        tiling = run.get("tiling") or {"tile_size": TILE_SIZE, "tile_overlap": TILE_OVERLAP}
        form = run.get("form") or {}
        return cls(
            model_dir,
            tile_size=tiling["tile_size"],
            tile_overlap=tiling["tile_overlap"],
            max_batch_size=batch_size,
            unsafe=unsafe,
            tta=run.get("tta") or "none",
            form=FormRequest(form.get("runtime", "keras"), form.get("precision", "float32")),
        )

    def load_model(self):
        from pipelines.infer import forms, warm_start

        if self._preloaded_by:
            model = warm_start.take(self._preloaded_by, self._model_dir, self._unsafe, self._form)
            if model is not None:
                return model
        # On the worker, not the launcher: TensorFlow (or OpenVINO) loads there.
        return forms.load(self._model_dir, self._unsafe, self._form)

    def run_inference(
        self, batch: Sequence[np.ndarray], model, inference_args=None
    ) -> Iterable[PredictionResult]:
        from segmodel.predict import predict_images

        probabilities = predict_images(
            model,
            list(batch),
            tile_size=self._tile_size,
            tile_overlap=self._tile_overlap,
            batch_size=self._batch_size,
            tta=self._tta,
        )
        return [PredictionResult(x, p) for x, p in zip(batch, probabilities, strict=True)]

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(x.nbytes for x in batch)

    def get_metrics_namespace(self) -> str:
        return "segscale_inference"


def check_model_is_safe(model_dir: str, unsafe: bool) -> None:
    """Refuses, in the launcher, a model.keras whose config holds Lambda layers or other
    embedded Python, unless --unsafe_model. (Workers load with Keras safe mode anyway; this
    gives one clear message instead of a worker traceback.)"""
    import zipfile

    path = f"{model_dir.rstrip('/')}/model.keras"
    try:
        with FileSystems.open(path) as f, zipfile.ZipFile(io.BytesIO(f.read())) as archive:
            config = archive.read("config.json").decode("utf-8")
    except Exception as e:
        raise ValueError(f"{path}: not a readable .keras model ({e})") from None
    if unsafe:
        return
    try:
        found = executable_code_in(json.loads(config))
    except ValueError as e:
        raise ValueError(f"{path}: the model's config.json is not valid JSON ({e})") from None
    if found:
        raise ValueError(
            f"{path}: the model holds executable code ({found}); refusing to load it. "
            "Pass --unsafe_model only for a model you trust."
        )


def executable_code_in(config) -> str | None:
    """Names the first Lambda layer or serialized Python function in a Keras model config (the
    parsed config.json of a .keras archive), or None. A walk of the parsed tree, not a text
    search: names and strings that merely contain "Lambda" do not count."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") in ("Lambda", "function", "__lambda__"):
                return f"{node['class_name']} {node.get('config', {}).get('name', '')}".strip()
            if "__lambda__" in node:
                return "a serialized lambda"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None
