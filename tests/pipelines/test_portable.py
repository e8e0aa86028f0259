"""Both pipelines through the PortableRunner: Beam's embedded job server, a loopback worker.

This is the path Flink and Dataflow take (pipeline → runner API proto → job service → SDK
harness), run entirely on this machine.
"""

import pytest

from pipelines.infer import pipeline as infer
from pipelines.ingest import pipeline as ingest

PORTABLE = ["--profile=portable", "--job_endpoint=embed", "--environment_type=LOOPBACK"]


@pytest.mark.slow
def test_ingest_then_infer_on_the_portable_runner(synthetic_dir, exported_model, tmp_path):
    manifest = ingest.run(
        [
            f"--images_dir={synthetic_dir / 'images'}",
            f"--masks_dir={synthetic_dir / 'masks'}",
            f"--output_dir={tmp_path / 'data'}",
            "--num_classes=3",
            *PORTABLE,
        ]
    )
    assert manifest["options"]["runner"] == "PortableRunner"
    assert manifest["counts"] == {"found": 40, "accepted": 40, "rejected": 0}
    summary = infer.run(
        [
            f"--model_dir={exported_model}",
            f"--input_tfrecords={tmp_path / 'data'}/val-*",
            f"--output_dir={tmp_path / 'pred'}",
            *PORTABLE,
        ]
    )
    assert summary["inputs"] == summary["predictions"] == manifest["splits"]["val"]["records"] > 0
    assert len(list((tmp_path / "pred" / "masks").rglob("*.png"))) == summary["predictions"]
