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
import tempfile

from segmodel import files

MODEL_NAMES = ("model.keras", "best.keras", "last.keras")
METADATA_NAME = "metadata.json"
_METADATA_FIELDS = ("model_version", "num_classes", "normalization", "channels")


def resolve_model_path(path: str) -> str:
    """The .keras file a model argument names (a file, a run folder or an export folder)."""
    if files.isdir(path):
        for name in MODEL_NAMES:
            if files.exists(files.join(path, name)):
                return files.join(path, name)
        raise FileNotFoundError(f"{path}: no {', '.join(MODEL_NAMES)} inside")
    if not files.exists(path):
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
        if files.is_remote(path):  # Keras reads local files; copy a remote model once
            local = os.path.join(scratch, os.path.basename(path))
            files.copy(path, local)
        try:
            return keras.models.load_model(local, compile=False, safe_mode=not unsafe)
        except Exception as e:
            raise ValueError(f"{path}: cannot load model: {e}") from None


def load_metadata(export_dir: str) -> dict:
    """Reads EXPORT/metadata.json (local or remote), naming the file when it is missing or
    malformed."""
    path = files.join(export_dir, METADATA_NAME)
    try:
        metadata = json.loads(files.read_text(path))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing; export the model with segmodel.export") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    missing = [k for k in _METADATA_FIELDS if k not in metadata]
    if missing:
        raise ValueError(f"{path}: missing fields {missing}")
    return metadata
