"""The README's demo (`segscale demo`, pipelines.demo.main) end to end with a tiny training
budget: every step runs on the real nuclei sample and the report says what happened."""

import json

import pytest


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_demo_runs_end_to_end_and_writes_its_report(tmp_path, capsys):
    from pipelines import demo

    out = tmp_path / "demo"
    assert demo.main(["--output_dir", str(out), "--workers", "1", "--train_minutes", "0.1"]) == 0
    facts = json.loads((out / "report" / "facts.json").read_text())
    # The sample's broken files are reported, not lost: 2 rejects beside the accepted pairs.
    assert facts["data"].split(" = ")[0] == f"{int(facts['data'].split()[0])} inputs"
    assert "rejected" in facts["data"] and "orphan_mask: 1" in facts["data"]
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
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    assert manifest["version"] == 2 and manifest["batches"][1]["split"] == "train"
    assert "appended" in facts["loop"] and (
        "promoted" in facts["loop"] or "refused" in facts["loop"]
    )
    history = (out / "models" / "current" / "history.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["decision"] in ("promoted", "refused")
    printed = capsys.readouterr().out
    assert "[9/9] Report" in printed and "mean IoU" in printed
