"""Loading a trained model and its metadata, from a local folder or any filesystem TensorFlow's
`tf.io.gfile` reads (gs://, s3:// with tensorflow-io, hdfs://, ...).

    python -c "from segmodel.saving import load_model; print(load_model('out/model').summary())"

`load_model` takes a .keras file, a run folder (best.keras, else last.keras) or an export folder
(model.keras). It registers our custom layers, losses and metrics first, so a model exported by
segmodel.export loads in plain user code with this one call. Keras safe mode is on: a model with
Lambda layers or other embedded Python is refused unless `unsafe=True`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

MODEL_NAMES = ("model.keras", "best.keras", "last.keras")
METADATA_NAME = "metadata.json"
_METADATA_FIELDS = ("model_version", "num_classes", "normalization", "channels")


def _is_local(path: str) -> bool:
    return "://" not in path


def _gfile():
    import tensorflow as tf  # remote paths only: local reads never need it

    return tf.io.gfile


def _exists(path: str) -> bool:
    return os.path.exists(path) if _is_local(path) else _gfile().exists(path)


def _isdir(path: str) -> bool:
    return os.path.isdir(path) if _is_local(path) else _gfile().isdir(path)


def _join(folder: str, name: str) -> str:
    return os.path.join(folder, name) if _is_local(folder) else f"{folder.rstrip('/')}/{name}"


def read_text(path: str) -> str:
    """A small text file's content, local or remote; FileNotFoundError when it is missing."""
    if _is_local(path):
        with open(path) as f:
            return f.read()
    gfile = _gfile()
    if not gfile.exists(path):
        raise FileNotFoundError(path)
    with gfile.GFile(path, "r") as f:
        return f.read()


def resolve_model_path(path: str) -> str:
    """The .keras file a model argument names (a file, a run folder or an export folder)."""
    if _isdir(path):
        for name in MODEL_NAMES:
            if _exists(_join(path, name)):
                return _join(path, name)
        raise FileNotFoundError(f"{path}: no {', '.join(MODEL_NAMES)} inside")
    if not _exists(path):
        raise FileNotFoundError(f"{path}: no such model file")
    return path


def load_model(path: str, unsafe: bool = False):
    """Loads a .keras model (a file, a run folder or an export folder; local or remote).

    Raises:
      FileNotFoundError: nothing loadable at `path`.
      ValueError: naming the file, when Keras refuses or cannot read it.
    """
    import keras

    from segmodel import losses, metrics, unet  # noqa: F401  registers the custom objects

    path = resolve_model_path(path)
    with tempfile.TemporaryDirectory() as scratch:
        local = path
        if not _is_local(path):  # Keras reads local files; copy a remote model once
            local = os.path.join(scratch, os.path.basename(path))
            with _gfile().GFile(path, "rb") as source, open(local, "wb") as target:
                shutil.copyfileobj(source, target)
        try:
            return keras.models.load_model(local, compile=False, safe_mode=not unsafe)
        except Exception as e:
            raise ValueError(f"{path}: cannot load model: {e}") from None


def load_metadata(export_dir: str) -> dict:
    """Reads EXPORT/metadata.json (local or remote), naming the file when it is missing or
    malformed."""
    path = _join(export_dir, METADATA_NAME)
    try:
        metadata = json.loads(read_text(path))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing; export the model with segmodel.export") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    missing = [k for k in _METADATA_FIELDS if k not in metadata]
    if missing:
        raise ValueError(f"{path}: missing fields {missing}")
    return metadata
