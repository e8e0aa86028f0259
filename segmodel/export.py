"""Export a trained run for serving: model.keras, a SavedModel with preprocessing inside, metadata.

    python -m segmodel.export --workdir out/run --export_dir out/model

Writes:
  M/model.keras      the best checkpoint (what our Beam inference loads)
  M/saved_model/     signature `serve`: images (a batch of encoded PNG/JPEG bytes, all of one
                     size) → classes int32 [B, H, W] and probabilities float32 [B, H, W, C];
                     decoding and normalisation inside, ready for TF Serving
  M/metadata.json    classes, normalisation, patch size, size multiple, validation metrics,
                     the training manifest, the config, and a model version (content hash)
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    # --help before TensorFlow loads (seconds): the flags live in segmodel/commands.py.
    from segmodel.commands import export_parser

    export_parser().print_help()
    sys.exit(0)

import hashlib
import json
import os
import shutil
import sys

import keras
import numpy as np
import tensorflow as tf

from segmodel import commands, files, runtime_forms
from segmodel.contract import ModelContract
from segmodel.manifest import load_manifest
from segmodel.preprocessing import decode_tf, model_input_tf
from segmodel.saving import load_metadata, load_model  # noqa: F401  (load_metadata: API)
from segmodel.unet import class_probabilities

HOW_TO_LOAD = (
    "import segmodel; model = segmodel.load_model(EXPORT_DIR)  # Keras 3, our layers registered"
)
EXPORT_README = """# segscale model {version}

- `model.keras`: the Keras 3 model. From Python, with segscale installed:

      import segmodel
      model = segmodel.load_model("THIS_FOLDER")      # plain keras.saving.load_model needs
      metadata = segmodel.load_metadata("THIS_FOLDER")  # `import segmodel.unet` first

  Inputs are [B, H, W, C] float32 from `segmodel.preprocessing.model_input_np` (channels, bit
  depth and normalisation from metadata.json); outputs are class probabilities.
- `saved_model/`: TF Serving; signature `serve` takes a batch of encoded PNG/JPEG bytes and
  returns `classes` and `probabilities` (decoding and normalisation inside).
- `metadata.json`: classes, normalisation, bit depth, validation scores, training config and
  manifest.
- Bulk inference: `segscale infer --model_dir THIS_FOLDER --input_pattern 'DIR/**' --output_dir OUT`
"""


def serving_function(model: keras.Model, inputs):
    """A batch of encoded PNG/JPEG/BMP/GIF bytes → {"classes", "probabilities"}, through the
    one model-input path (segmodel/preprocessing.py): any bit depth, gray, RGB(A) or palette.
    `inputs`: the model's InputContract. TensorFlow decodes no TIFF and ignores EXIF
    orientation: rasters of bands, and photos to be turned as displayed, go through bulk
    inference (`segscale infer`), whose decoder does both."""
    channels, bit_depth, bands = inputs.channels, inputs.bit_depth, inputs.bands
    mean, std = list(inputs.mean), list(inputs.std)

    def one(encoded):
        image, source_bits = decode_tf(encoded)
        return model_input_tf(image, source_bits, channels, bit_depth, mean, std, bands)

    def serve(images):
        inputs = tf.map_fn(
            one, images, fn_output_signature=tf.TensorSpec([None, None, channels], tf.float32)
        )
        probs = class_probabilities(model(inputs, training=False))
        return {"classes": tf.argmax(probs, axis=-1, output_type=tf.int32), "probabilities": probs}

    return serve


def file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


REFERENCE_IMAGES = 64


def reference_statistics(model, data_dir: str, manifest: dict) -> dict | None:
    """What the model's predictions look like on held-out training-like data (up to 64 images of
    the val split, else test): the baseline `segscale drift` compares a run's confidence and
    intensity with. Same statistics as bulk inference records (`segmodel.prediction_stats`)."""
    from segmodel.config import DataConfig
    from segmodel.input_pipeline import make_dataset
    from segmodel.prediction_stats import RunStats, image_stats, top_class

    split = next((s for s in ("val", "test") if manifest["splits"].get(s, {}).get("records")), None)
    if split is None:
        return None
    ds = make_dataset(
        data_dir, manifest, split, DataConfig(), training=False, max_images=REFERENCE_IMAGES
    )
    inputs = ModelContract.from_manifest(manifest).inputs
    channels, bit_depth = inputs.channels, inputs.bit_depth
    totals = RunStats()
    for image, _ in ds:
        x = image.numpy()
        probs = keras.ops.convert_to_numpy(class_probabilities(model(x, training=False)))[0]
        classes, confidence = top_class(probs)
        counts = np.bincount(classes.ravel(), minlength=probs.shape[-1])
        record = {
            "height": probs.shape[0],
            "width": probs.shape[1],
            "class_fractions": [float(c) / classes.size for c in counts],
            **image_stats(probs, x[0], channels, bit_depth, confidence),
        }
        totals.add(record)
    return {"split": split, **totals.summary()}


def float32_model(model: keras.Model) -> keras.Model:
    """`model` computing in float32: layers trained under a mixed policy (float16 on GPUs,
    bfloat16 on CPUs with bf16 units) are rebuilt with dtype float32 and given the same
    weights (kept in float32 during mixed-precision training anyway). An export then predicts
    the same on every machine, at full speed on CPUs without half-precision units.
    Returns `model` itself when every layer already computes in float32."""
    if all(layer.dtype_policy.compute_dtype == "float32" for layer in model.layers):
        return model

    def retyped(layer):
        config = layer.get_config()
        if layer.dtype_policy.compute_dtype != "float32":
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=retyped)
    copy.set_weights(model.get_weights())
    return copy


def export(workdir: str, export_dir: str) -> dict:
    """Exports a run folder; returns the metadata written."""
    state_path = os.path.join(workdir, "state.json")
    if not os.path.exists(state_path):
        raise FileNotFoundError(f"{workdir}: no state.json; is this a training run folder?")
    with open(state_path) as f:
        state = json.load(f)
    with open(os.path.join(workdir, "config.json")) as f:
        config = json.load(f)
    manifest = load_manifest(state["data_dir"])
    source = next(
        p
        for p in (os.path.join(workdir, n) for n in ("best.keras", "last.keras"))
        if os.path.exists(p)
    )
    trained = load_model(source)
    model = float32_model(trained)
    contract = ModelContract.from_manifest(manifest)

    staging = f"{export_dir.rstrip('/')}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    if model is trained:
        files.copy(source, os.path.join(staging, "model.keras"))
    else:
        model.save(os.path.join(staging, "model.keras"))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve",
        fn=serving_function(model, contract.inputs),
        input_signature=[tf.TensorSpec([None], tf.string, name="images")],
    )
    archive.write_out(os.path.join(staging, "saved_model"), verbose=False)
    # The OpenVINO form and the gate bulk inference chooses forms by (segmodel/runtime_forms.py).
    xml = runtime_forms.write_openvino(model, staging, contract.inputs.channels)
    runtimes = (
        runtime_forms.evaluate_forms(model, xml, state["data_dir"], manifest) if xml else None
    )
    best_epoch = state.get("best_epoch")
    validation = next((h for h in state["history"] if h["epoch"] == best_epoch), {})
    metadata = {
        "model_version": file_hash(os.path.join(staging, "model.keras")),
        **contract.to_metadata(),
        "class_names": manifest["class_names"],
        "patch_size": config["data"]["patch_size"],
        "size_multiple": 2 ** config["model"]["depth"],
        "output": "sigmoid" if manifest["num_classes"] == 2 else "softmax",
        "validation": {
            "monitor": state.get("monitor"),
            "best": state.get("best"),
            "epoch": best_epoch,
            "metrics": validation,
        },
        "reference": reference_statistics(model, state["data_dir"], manifest),
        "runtimes": runtimes,
        "source_checkpoint": os.path.abspath(source),
        "parent": state.get("init_from"),  # the model it was fine-tuned from, if any
        "dataset_version": manifest.get("version", 1),
        "config": config,
        "manifest": manifest,
        "how_to_load": HOW_TO_LOAD,
    }
    files.write_atomically(os.path.join(staging, "metadata.json"), json.dumps(metadata, indent=2))
    files.write_atomically(
        os.path.join(staging, "README.md"), EXPORT_README.format(version=metadata["model_version"])
    )
    files.replace_folder(staging, export_dir)  # a reader never sees half an export
    return metadata


def main(argv=None) -> int:
    args = commands.export_parser().parse_args(argv)
    try:
        metadata = export(args.workdir, args.export_dir)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"Exported model version {metadata['model_version']} to {args.export_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
