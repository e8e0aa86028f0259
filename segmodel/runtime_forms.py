"""The runtime forms of an export, and the gate that says which ones bulk inference may use.

    segscale export --workdir out/run --output_dir out/model     # writes openvino/ and the gate

Beside `model.keras`, an export holds `openvino/model.xml` + `.bin`: the same network as an
OpenVINO IR with float32 weights (OpenVINO's converter over the traced forward pass). OpenVINO runs it
in float32, or in bfloat16 on CPUs with bf16 units (AVX512_BF16, AMX): a run-time precision
hint, no other file. Each form is measured here, at export, against the float32 Keras model on
the validation split (up to `GATE_IMAGES` images, else test): the share of pixels whose class
is the same, the worst image's share, and mean IoU against the truth. Those figures go into
metadata.json ("runtimes"), and `segscale infer --precision auto` uses only a form that passed:

    GATE: mean IoU within 0.005 of float32 and at least 99.5 % of pixels equal.

Why these bounds: 0.005 mean IoU is below the spread of one training run to the next on our
small benchmark sets (docs/benchmarks.md: ± 0.01 to 0.02), so a form inside it changes no
decision a user makes from the scores; 99.5 % of pixels equal keeps the masks a person reviews
the same but for a few boundary pixels. A form measured on a CPU without bf16 units ran in
float32 (OpenVINO falls back), and is recorded as such (`emulated`).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

GATE = {"max_miou_drop": 0.005, "min_pixel_agreement": 0.995}
GATE_IMAGES = 64
OPENVINO_DIR = "openvino"
OPENVINO_PRECISIONS = ("float32", "bfloat16")


@contextlib.contextmanager
def no_telemetry():
    """openvino.convert_model (ovc, OpenVINO 2026.4) sends usage telemetry to Google Analytics
    unless a consent file in the user's home declines it (openvino_telemetry's OptInChecker:
    no file counts as yes when ovc asks without a dialog). Nothing here reaches the network,
    and a user's home is not ours to write: ovc skips telemetry in CI (`disable_in_ci=True`,
    read from CI=true), so CI=true is set for the conversion and restored after. Canary:
    tests/pipelines/test_runtime_forms.py."""
    before = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = before


def write_openvino(model, export_dir: str, channels: int) -> str | None:
    """Writes EXPORT/openvino/model.xml (+ .bin); its path, or None without OpenVINO."""
    from segmodel.runtimes import openvino_importable

    if not openvino_importable():
        return None
    import openvino as ov
    import tensorflow as tf

    # Keras 3.15's model.export(format="openvino") imports Keras' OpenVINO backend, which needs
    # scipy (not a dependency of ours): OpenVINO's own converter takes the traced forward pass.
    forward = tf.function(lambda x: model(x, training=False))
    traced = forward.get_concrete_function(tf.TensorSpec([None, None, None, channels], tf.float32))
    path = os.path.join(export_dir, OPENVINO_DIR, "model.xml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with no_telemetry():
        converted = ov.convert_model(traced)
    ov.save_model(converted, path, compress_to_fp16=False)  # float32 weights
    return path


def _confusion(truth: np.ndarray, predicted: np.ndarray, k: int, ignore: int) -> np.ndarray:
    keep = truth != ignore
    return np.bincount(truth[keep] * k + predicted[keep], minlength=k * k).reshape(k, k)


def _mean_iou(cm: np.ndarray) -> float:
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean()) if present.any() else 0.0


def measure(reference, forms: dict, examples, num_classes: int, ignore_label: int) -> dict:
    """Each form against the reference (float32 Keras) on `examples` [(input [H, W, C], truth
    [H, W])]: {name: {pixel_agreement, worst_image_agreement, mean_iou, miou_change, passed}}
    and the reference's own mean IoU under "float32_keras"."""
    k = max(num_classes, 2)
    ref_cm = np.zeros((k, k), np.int64)
    cms = {name: np.zeros((k, k), np.int64) for name in forms}
    equal = dict.fromkeys(forms, 0)
    worst = dict.fromkeys(forms, 1.0)
    pixels = 0
    for x, truth in examples:
        batch = x[None]
        ref = reference(batch)[0].argmax(-1)
        ref_cm += _confusion(truth.astype(np.int64), ref, k, ignore_label)
        pixels += ref.size
        for name, predict in forms.items():
            got = predict(batch)[0].argmax(-1)
            same = int((got == ref).sum())
            equal[name] += same
            worst[name] = min(worst[name], same / ref.size)
            cms[name] += _confusion(truth.astype(np.int64), got, k, ignore_label)
    base = _mean_iou(ref_cm)
    out = {"float32_keras": {"mean_iou": round(base, 6), "images": len(examples)}}
    for name in forms:
        miou = _mean_iou(cms[name])
        agreement = equal[name] / max(pixels, 1)
        out[name] = {
            "pixel_agreement": round(agreement, 6),
            "worst_image_agreement": round(worst[name], 6),
            "mean_iou": round(miou, 6),
            "miou_change": round(miou - base, 6),
            "passed": bool(
                agreement >= GATE["min_pixel_agreement"] and base - miou <= GATE["max_miou_drop"]
            ),
        }
    return out


def gate_examples(data_dir: str, manifest: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to GATE_IMAGES (model input, truth) of the validation split, else test."""
    from segmodel.config import DataConfig
    from segmodel.input_pipeline import make_dataset

    split = next((s for s in ("val", "test") if manifest["splits"].get(s, {}).get("records")), None)
    if split is None:
        return []
    ds = make_dataset(
        data_dir, manifest, split, DataConfig(), training=False, max_images=GATE_IMAGES
    )
    return [(x.numpy()[0], y.numpy()[0]) for x, y in ds]


def evaluate_forms(model, xml_path: str, data_dir: str, manifest: dict) -> dict:
    """The gate's figures for every OpenVINO precision, for metadata.json ("runtimes")."""
    from segmodel.predict import keras_predictor
    from segmodel.runtimes import OpenVinoModel, cpu_has_bf16_units

    examples = gate_examples(data_dir, manifest)
    if not examples:
        return {"gate": GATE, "note": "no validation or test split to measure the forms on"}
    forms = {
        f"openvino_{p}": OpenVinoModel(xml_path, p, threads=0).predict_on_batch
        for p in OPENVINO_PRECISIONS
    }
    figures = measure(
        keras_predictor(model), forms, examples, manifest["num_classes"], manifest["ignore_label"]
    )
    if not cpu_has_bf16_units():
        # Measured in float32 on this CPU: says nothing of bf16 on a CPU that has the units,
        # so it does not pass (export on such a CPU to measure it).
        figures["openvino_bfloat16"].update(emulated=True, passed=False)
    return {"gate": GATE, **figures}
