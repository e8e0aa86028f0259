"""What the demo (pipelines/demo.py) does after bulk inference: the scheduled run's monitoring
(ledger, drift, review queue) and the loop (corrections appended, fine-tune, promote), with
the report's section on them.

    segscale demo --output_dir out/demo     # steps 7 and 8
"""

from __future__ import annotations

import os
import shutil


def monitor(pred: str) -> dict:
    """What a scheduled run does after inference: ledger, drift check, review queue."""
    from pipelines.monitor import drift, drift_checks, review
    from pipelines.monitor.ledger import read_runs, run_line

    record = read_runs(pred)[-1]
    print(f"  ledger {pred}/runs.jsonl: {run_line(record)}")
    result = drift.drift(drift.parser().parse_args(["--run", pred]))
    print("\n".join(f"  {line}" for line in drift_checks.summary_lines(result)))
    queue = review.review(review.parser().parse_args(["--run", pred, "--top", "8"]))
    print(f"  review queue: {len(queue['queued'])} images in {queue['review_dir']}")
    return {"record": record, "drift": result, **queue}


def close_the_loop(out: str, sample: str, monitoring: dict, split: str, runner, minutes) -> dict:
    """The loop on the demo's own data: the review queue's images that are training slices get
    their true masks (standing in for a person's corrections; a test slice would leak into
    training), are appended to the dataset, the model is fine-tuned from the exported one and
    promoted into models/current only if it is not worse on the test split."""
    from pipelines.ingest import pipeline as ingest
    from segmodel import export, promote, train

    loop = f"{out}/loop"
    shutil.rmtree(loop, ignore_errors=True)
    added = 0
    for row in monitoring["queued"]:
        name = os.path.basename(row["image"])
        truth = os.path.join(sample, "masks", "train", name)
        if not os.path.exists(truth):
            continue
        for kind, source in (
            ("images", os.path.join(monitoring["review_dir"], row["review_image"])),
            ("masks", truth),
        ):
            os.makedirs(f"{loop}/batch/{kind}", exist_ok=True)
            shutil.copyfile(source, f"{loop}/batch/{kind}/{name}")
        added += 1
    if not added:
        print("  none of the queued images is a training slice: nothing to learn from")
        return {}
    grown = ingest.run(
        [
            f"--images_dir={loop}/batch/images",
            f"--masks_dir={loop}/batch/masks",
            f"--output_dir={out}/data",
            "--append",
            "--split=train",
            *runner,
        ]
    )
    train.train(
        f"{out}/data",
        f"{loop}/run",
        overrides=[f"train.max_minutes={minutes}"],
        init_from=f"{out}/model",
    )
    export.export(f"{loop}/run", f"{loop}/model")
    current = f"{out}/models/current"
    shutil.rmtree(current, ignore_errors=True)  # the demo's current model: the one it exported
    shutil.copytree(f"{out}/model", current)
    decision = promote.promote(f"{loop}/model", current, f"{out}/data", split)
    print("\n".join(f"  {line}" for line in promote.describe(decision)))
    print(f"  {decision['decision']}: {decision['reason']}")
    batch = grown["batches"][-1]
    return {
        "appended": added,
        "version": grown["version"],
        "superseded": batch["superseded"],
        "decision": decision,
    }


def drift_fact(result: dict) -> str:
    """The report's one line on drift."""
    if result.get("nothing_new"):
        return "nothing new to compare (" + result["note"] + ")"
    if result["drift"]:
        return "DRIFT: " + ", ".join(result["drifted"])
    return "none against the training data"


def monitoring_sections(monitoring: dict, report: str) -> list[tuple[str, str]]:
    import html

    from pipelines.monitor import drift_checks
    from pipelines.monitor.ledger import run_line

    link = lambda path, text: (  # noqa: E731
        f'<a href="{html.escape(os.path.relpath(path, report))}">{html.escape(text)}</a>'
    )
    result = monitoring["drift"]
    drift_page = (  # none for a run that segmented nothing new
        f"{link(os.path.join(result['report_dir'], 'index.html'), 'drift report')} · "
        if result.get("report_dir")
        else ""
    )
    return [
        (
            "Bulk inference: the run ledger, drift, the review queue",
            f"<p>Ledger record (runs.jsonl): {html.escape(run_line(monitoring['record']))}</p>"
            f"<pre>{html.escape(chr(10).join(drift_checks.summary_lines(result)))}</pre>"
            f"<p>{drift_page}"
            f"{link(os.path.join(monitoring['review_dir'], 'index.html'), 'review queue')} "
            f"(the {len(monitoring['queued'])} images the model was least sure about; first "
            f"four below: image | predicted mask)</p>"
            + ('<img src="review_queue.png" alt="review queue">' if monitoring["queued"] else ""),
        )
    ]
