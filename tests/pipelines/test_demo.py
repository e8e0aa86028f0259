"""The README's demo (`segscale demo`, pipelines.demo.main) end to end with a tiny training
budget: every step runs on the real nuclei sample and the report says what happened; run twice
in one folder (what a newcomer does after reading the report), the second report is all of
the model the second run trained."""

import json

import pytest


def _count(text: str, what: str) -> int:
    """`12` from "... 12 what ..."."""
    words = text.replace(",", " ").replace("(", " ").split()
    return int(words[words.index(what) - 1])


def _check_report(out, printed):
    facts = json.loads((out / "report" / "facts.json").read_text())
    # The sample's broken files are reported, not lost: found = accepted + rejected.
    data = facts["data"]
    assert _count(data, "inputs") == _count(data, "accepted") + _count(data, "rejected")
    assert _count(data, "rejected") == 2 and "orphan_mask: 1" in data
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    inputs, rest = facts["bulk inference"].split(" inputs = ")
    predictions = int(rest.split(" predictions")[0])
    slices = len(list((out / "sample" / "images").rglob("slice_*.png")))
    assert slices > 40
    # every slice of the sample and 2 mosaics that need tiling, all segmented, no rejects
    assert int(inputs) == predictions == slices + 2
    assert len(list((out / "pred" / "masks").rglob("*.png"))) == slices + 2
    for name in ("index.html", "training_curves.png", "test_overlays.png", "inference_samples.png"):
        assert (out / "report" / name).stat().st_size > 0, name
    # the loop on the demo data: queued training slices appended, a fine-tune, a decision
    assert manifest["version"] == 2 and manifest["batches"][1]["split"] == "train"
    assert "appended" in facts["loop"] and (
        "promoted" in facts["loop"] or "refused" in facts["loop"]
    )
    history = (out / "models" / "current" / "history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["decision"] in ("promoted", "refused")
    assert "[9/9] Report" in printed and "mean IoU" in printed
    # Every mask and every figure is of the model this run exported.
    version = json.loads((out / "model" / "metadata.json").read_text())["model_version"]
    assert facts["model"].startswith(f"version {version},")
    (record,) = [
        json.loads(line) for line in (out / "pred" / "runs.jsonl").read_text().splitlines()
    ]
    assert record["model_version"] == version
    assert record["masks_by_model_version"] == {version: slices + 2}
    assert record["segmented"] == slices + 2
    assert "drift report" in (out / "report" / "index.html").read_text()
    return version


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_demo_runs_end_to_end_twice_in_one_folder(tmp_path, capsys):
    from pipelines import demo

    out = tmp_path / "demo"
    argv = ["--output_dir", str(out), "--workers", "1", "--train_minutes", "0.1"]
    assert demo.main(argv) == 0
    _check_report(out, capsys.readouterr().out)
    incoming = sorted(p.name for p in (out / "incoming").rglob("*"))
    assert demo.main(argv) == 0
    printed = capsys.readouterr().out
    assert "holds an earlier demo run" in printed and "starts afresh" in printed
    _check_report(out, printed)
    assert sorted(p.name for p in (out / "incoming").rglob("*")) == incoming


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    from pipelines import demo

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.txt").write_text("a user's file")
    with pytest.raises(ValueError, match="no folder the demo made"):
        demo.start_afresh(str(tmp_path))
    assert (tmp_path / "data" / "mine.txt").exists()
