"""An exported model folder on any Beam filesystem, brought to local disk once per process.

TensorFlow's file layer reads local paths and gs:// (s3:// only with tensorflow-io, which we do
not install), while Beam's filesystems read local, gs://, s3:// (apache-beam[aws]), hdfs:// and
azfs://. So the pipelines copy `model.keras` and `metadata.json` (a few MB) through Beam and
hand Keras (and OpenVINO, for `openvino/`) a local folder: a model on any bucket Beam
reaches works.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading

from apache_beam.io.filesystems import FileSystems

from pipelines.fileio import copy_to_local, is_remote

FILES = ("model.keras", "metadata.json")
OPTIONAL = ("openvino/model.xml", "openvino/model.bin")  # the runtime form, when exported
_copies: dict[str, tuple] = {}  # model_dir -> (the files' stamp, the local copy)
_lock = threading.Lock()


def local_model_dir(model_dir: str) -> str:
    """`model_dir` itself when local; else a local copy of its model files, cached while their
    sizes and modification times stay the same: a long-lived worker (Flink, Dataflow) that ran
    an earlier job copies the model again once `segscale promote` has replaced it in place."""
    if not is_remote(model_dir):
        return model_dir
    names = FILES + tuple(
        name for name in OPTIONAL if FileSystems.exists(FileSystems.join(model_dir, name))
    )
    paths = [FileSystems.join(model_dir.rstrip("/"), name) for name in names]
    stamp = tuple(
        (m.path, m.size_in_bytes, m.last_updated_in_seconds)
        for result in FileSystems.match(paths)
        for m in result.metadata_list
    )
    with _lock:
        if _copies.get(model_dir, (None, None))[0] != stamp:
            target = tempfile.mkdtemp(prefix="segscale-model-")
            atexit.register(shutil.rmtree, target, ignore_errors=True)
            for path, name in zip(paths, names, strict=True):
                os.makedirs(os.path.dirname(os.path.join(target, name)), exist_ok=True)
                copy_to_local(path, os.path.join(target, name))
            _copies[model_dir] = (stamp, target)
        return _copies[model_dir][1]
