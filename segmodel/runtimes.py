"""Runtime forms at inference: an export's OpenVINO IR run in the precision the CPU offers,
without TensorFlow in the worker.

    segscale infer --model_dir out/model --precision auto ...   # picks the form (choose())

`choose()` is read per worker, on the CPU where the worker runs: the fastest form that passed
the export's gate (segmodel/runtime_forms.py), among those this worker can run. Speed order,
measured on this project's CPU (docs/benchmarks.md): OpenVINO bfloat16 (only where the CPU has
bf16 units; elsewhere OpenVINO would run it in float32), OpenVINO float32, Keras float32.
`OpenVinoModel.predict_on_batch` returns class probabilities like the Keras path
(segmodel/predict.py), so tiling, TTA, statistics and the probabilities written are the same
with every form.
"""

from __future__ import annotations

import os
import threading

import numpy as np

PRECISIONS = ("auto", "float32", "bfloat16")
RUNTIMES = ("auto", "keras", "openvino")


def cpu_has_bf16_units() -> bool:
    from segmodel.plan import cpu_has_bf16

    return cpu_has_bf16()


class OpenVinoModel:
    """An OpenVINO IR compiled for the CPU in one precision; `threads` 0 lets OpenVINO choose."""

    gives_probabilities = True

    def __init__(self, xml_path: str, precision: str = "float32", threads: int = 0):
        import openvino as ov

        hint = {"float32": "f32", "bfloat16": "bf16"}[precision]
        config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        core = ov.Core()
        self.precision = precision
        self._compiled = core.compile_model(core.read_model(xml_path), "CPU", config)
        self._output = self._compiled.output(0)  # the probabilities (others: Keras' extras)
        self._request = self._compiled.create_infer_request()
        # RunInference shares one model among a worker's threads; a request runs one at a time.
        self._lock = threading.Lock()

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            result = self._request.infer([np.ascontiguousarray(batch, np.float32)])
        probs = np.asarray(result[self._output], np.float32)
        if probs.shape[-1] == 1:  # the binary sigmoid, as segmodel.unet.class_probabilities
            probs = np.concatenate([1.0 - probs, probs], axis=-1)
        return probs


def openvino_xml(model_dir: str) -> str:
    return os.path.join(model_dir, "openvino", "model.xml")


def choose(metadata: dict, model_dir: str, runtime: str = "auto", precision: str = "auto"):
    """(runtime, precision, why) for this worker. A forced form that failed the gate is used
    all the same, with `why` naming the measured loss (the launcher prints it once)."""
    figures = metadata.get("runtimes") or {}
    has_ir = os.path.exists(openvino_xml(model_dir)) and openvino_importable()
    if runtime == "keras" or (runtime == "auto" and not has_ir):
        if precision not in ("auto", "float32"):
            raise ValueError(f"--precision {precision} needs the OpenVINO form of the export")
        return "keras", "float32", "the Keras model" + ("" if has_ir else " (no OpenVINO form)")
    if not has_ir:
        raise ValueError(
            f"--runtime openvino: {model_dir} has no openvino/model.xml (export it again with "
            "openvino installed)"
        )
    if precision != "auto":
        measured = figures.get(f"openvino_{precision}", {})
        if measured and not measured.get("passed"):
            return (
                "openvino",
                precision,
                (
                    f"forced: OpenVINO {precision} failed the export's gate (pixels equal "
                    f"{measured['pixel_agreement']:.2%}, mean IoU change {measured['miou_change']:+.4f})"
                ),
            )
        return "openvino", precision, f"OpenVINO {precision}, as asked"
    candidates = ["bfloat16"] if cpu_has_bf16_units() else []
    candidates.append("float32")
    for p in candidates:
        if figures.get(f"openvino_{p}", {}).get("passed"):
            return "openvino", p, "the fastest form that passed the export's gate on this CPU"
    if runtime == "openvino":
        return "openvino", "float32", "OpenVINO float32, as asked (no form passed the gate)"
    return "keras", "float32", "no OpenVINO form passed the export's gate"


def openvino_importable() -> bool:
    """Installed, without importing it (the launcher forks Beam's workers after this: an
    imported OpenVINO's threads would make gRPC skip its fork handlers)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None
