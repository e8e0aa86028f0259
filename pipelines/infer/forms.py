"""Which form of an export a worker runs (segmodel/runtimes.py), loaded once per worker.

    segscale infer ... --precision auto        # the fastest form that passed the export's gate

A worker that runs the OpenVINO form imports neither TensorFlow nor Keras here: the form is
chosen from metadata.json and the CPU's flags, and the IR is compiled by OpenVINO.
"""

from __future__ import annotations

import dataclasses
import json
import os


@dataclasses.dataclass(frozen=True)
class FormRequest:
    """What the run asked for: --runtime, --precision, and the threads each worker's OpenVINO
    may use (0: OpenVINO's choice)."""

    runtime: str = "auto"
    precision: str = "auto"
    threads: int = 0


def as_request(form) -> FormRequest:
    """The one default: no request is the Keras model (handlers built without a run)."""
    return form if form is not None else FormRequest("keras", "auto")


def chosen(model_dir: str, request: FormRequest) -> tuple[str, str, str]:
    """(runtime, precision, why) on this machine, for a local model folder."""
    from segmodel.runtimes import choose

    with open(os.path.join(model_dir, "metadata.json")) as f:
        metadata = json.load(f)
    return choose(metadata, model_dir, request.runtime, request.precision)


def load(model_dir: str, unsafe: bool, request: FormRequest):
    """The model this worker runs: an OpenVinoModel or the Keras model."""
    from pipelines.model_files import local_model_dir

    local = local_model_dir(model_dir)
    request = as_request(request)
    runtime, precision, _ = chosen(local, request)
    if runtime == "openvino":
        from segmodel.runtimes import OpenVinoModel, openvino_xml

        return OpenVinoModel(openvino_xml(local), precision, request.threads)
    from segmodel.saving import load_model  # imports TensorFlow and Keras

    return load_model(local, unsafe=unsafe)
