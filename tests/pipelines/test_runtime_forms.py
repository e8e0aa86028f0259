"""Runtime forms (issue 34): the export's OpenVINO form, the gate, --runtime/--precision, and
every form through infer.run with tiled images, against the Keras float32 masks."""

import json

import numpy as np
import pytest
from builders import encode, random_pair, write
from PIL import Image

from pipelines.infer import pipeline as infer
from segmodel import runtime_forms, runtimes

INPROCESS = ["--profile", "inprocess"]


def _metadata(passed: dict) -> dict:
    return {
        "runtimes": {
            f"openvino_{p}": {"passed": ok, "pixel_agreement": 0.98, "miou_change": -0.0125}
            for p, ok in passed.items()
        }
    }


@pytest.fixture
def model_with_ir(tmp_path):
    (tmp_path / "openvino").mkdir()
    (tmp_path / "openvino" / "model.xml").write_text("<net/>")
    return str(tmp_path)


def test_auto_takes_only_a_form_that_passed_the_gate(model_with_ir, monkeypatch):
    both = _metadata({"float32": True, "bfloat16": True})
    monkeypatch.setattr(runtimes, "cpu_has_bf16_units", lambda: True)
    assert runtimes.choose(both, model_with_ir)[:2] == ("openvino", "bfloat16")
    failed_bf16 = _metadata({"float32": True, "bfloat16": False})
    assert runtimes.choose(failed_bf16, model_with_ir)[:2] == ("openvino", "float32")
    monkeypatch.setattr(runtimes, "cpu_has_bf16_units", lambda: False)  # emulated: not faster
    assert runtimes.choose(both, model_with_ir)[:2] == ("openvino", "float32")
    none = _metadata({"float32": False, "bfloat16": False})
    assert runtimes.choose(none, model_with_ir)[:2] == ("keras", "float32")
    assert runtimes.choose({}, model_with_ir)[:2] == ("keras", "float32")  # never measured
    # forced: it runs, and says what it loses
    runtime, precision, why = runtimes.choose(failed_bf16, model_with_ir, precision="bfloat16")
    assert (runtime, precision) == ("openvino", "bfloat16")
    assert "failed the export's gate" in why and "98.00%" in why and "-0.0125" in why


def test_without_the_openvino_form_the_keras_model_runs(tmp_path):
    assert runtimes.choose(_metadata({"float32": True}), str(tmp_path))[:2] == ("keras", "float32")
    with pytest.raises(ValueError, match="no openvino/model.xml"):
        runtimes.choose({}, str(tmp_path), runtime="openvino")


def test_the_gate_figures_by_hand():
    truth = np.array([[0, 0, 1, 1]], np.int64)
    one_hot = lambda classes: np.eye(2, dtype=np.float32)[classes][None]  # noqa: E731
    reference = lambda batch: one_hot(np.array([[0, 0, 1, 1]]))  # noqa: E731
    off_by_one = lambda batch: one_hot(np.array([[0, 1, 1, 1]]))  # noqa: E731
    figures = runtime_forms.measure(
        reference, {"f": off_by_one}, [(np.zeros((1, 4, 1)), truth)], 2, 255
    )
    assert figures["float32_keras"]["mean_iou"] == 1.0
    f = figures["f"]
    assert f["pixel_agreement"] == 0.75 and f["worst_image_agreement"] == 0.75
    # IoU background 1/2, foreground 2/3: mean 7/12
    assert f["mean_iou"] == pytest.approx(7 / 12, abs=1e-6)
    assert f["miou_change"] == pytest.approx(7 / 12 - 1, abs=1e-6) and not f["passed"]


def test_the_export_holds_the_openvino_form_and_its_gate(exported_model):
    metadata = json.loads((exported_model / "metadata.json").read_text())
    assert (exported_model / "openvino" / "model.xml").exists()
    figures = metadata["runtimes"]
    assert figures["gate"] == runtime_forms.GATE
    assert figures["openvino_float32"]["pixel_agreement"] >= 0.995, figures
    assert figures["openvino_float32"]["passed"], figures
    # bf16 passes or not on its own figures; measured without bf16 units it never passes
    assert figures["openvino_bfloat16"].get("emulated") != figures["openvino_bfloat16"]["passed"]


def test_every_form_runs_through_infer_with_tiled_images(tmp_path, exported_model):
    for i, (h, w) in enumerate([(24, 30), (24, 30), (150, 140), (40, 70)]):
        image, _ = random_pair(80 + i, h, w)
        write(str(tmp_path / f"in/im{i}.png"), encode(image))
    masks = {}
    for runtime, precision in (("keras", "auto"), ("openvino", "float32"), ("auto", "bfloat16")):
        out = tmp_path / f"out-{runtime}-{precision}"
        summary = infer.run(
            [
                f"--model_dir={exported_model}",
                f"--input_pattern={tmp_path}/in/*.png",
                f"--output_dir={out}",
                "--tile_size=64",
                "--tile_overlap=16",
                f"--runtime={runtime}",
                f"--precision={precision}",
                "--save_probabilities",
                *INPROCESS,
            ]
        )
        assert summary["predictions"] == 4 and summary["rejects"] == 0
        form = summary["form"]
        assert form["asked"] == {"runtime": runtime, "precision": precision}
        assert form["runtime"] == ("keras" if runtime == "keras" else "openvino")
        masks[form["runtime"], form["precision"]] = {
            p.name: np.asarray(Image.open(p)) for p in sorted((out / "masks").iterdir())
        }
        probs = np.load(out / "probabilities" / "im2.png.npy")
        assert probs.shape == (150, 140, 3)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-2)
    reference = masks.pop(("keras", "float32"))
    assert set(masks) == {("openvino", "float32"), ("openvino", "bfloat16")}
    for form, got in masks.items():
        # Forced bf16 runs in real bf16 on CPUs with the units (in float32 elsewhere); on this
        # barely trained model many pixels are near-ties, so only a loose bound holds for it:
        # whether auto may use bf16 is the export's gate's call, not this test's.
        bound = 0.995 if form[1] == "float32" else 0.9
        for name, mask in reference.items():
            assert (got[name] == mask).mean() >= bound, (form, name)


def test_the_conversion_sends_no_telemetry(tmp_path, monkeypatch):
    """Canary of runtime_forms.no_telemetry: ovc's telemetry asks openvino_telemetry whether to
    send, with the arguments below (openvino/tools/ovc/telemetry_utils.py); with no consent file
    that is a yes, inside our scope a no. Fails the day either side changes."""
    import inspect

    from openvino.tools.ovc import telemetry_utils
    from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker

    source = inspect.getsource(telemetry_utils.init_ovc_telemetry)
    assert "enable_opt_in_dialog=False" in source and "disable_in_ci=True" in source

    monkeypatch.setenv("HOME", str(tmp_path))  # no consent file
    monkeypatch.delenv("CI", raising=False)
    checker = OptInChecker()
    assert checker.check(False, disable_in_ci=True) == ConsentCheckResult.NO_FILE  # would send
    with runtime_forms.no_telemetry():
        assert checker.check(False, disable_in_ci=True) == ConsentCheckResult.DECLINED
    assert "CI" not in __import__("os").environ
