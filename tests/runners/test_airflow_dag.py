"""runners/schedule/airflow_dag.py parsed by Airflow itself, with the Beam and Google providers
it imports: the DAG loads without import errors and has its three tasks in order.

Airflow is never a dependency of segscale: it lives in its own virtual environment
(scripts/airflow_venv.sh), whose python SEGSCALE_AIRFLOW_PYTHON names. Without it the test
skips; CI sets it and SEGSCALE_REQUIRE_AIRFLOW=1, so there it cannot skip.
"""

import json
import os
import subprocess

import pytest

DAG_FILE = os.path.join(
    os.path.dirname(__file__), "..", "..", "runners", "schedule", "airflow_dag.py"
)
PYTHON = os.environ.get("SEGSCALE_AIRFLOW_PYTHON", "")
if not os.path.exists(PYTHON) and os.environ.get("SEGSCALE_REQUIRE_AIRFLOW") == "1":
    raise RuntimeError(f"the Airflow DAG test is required, but SEGSCALE_AIRFLOW_PYTHON={PYTHON!r}")

PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])

def render(task, dag):  # as a worker would before running it (a .sh command is a template file)
    try:
        task.resolve_template_files()
        task.render_template_fields(context={}, jinja_env=dag.get_template_env())
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None

print(json.dumps({
    "errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()},
    "dags": {
        dag_id: {t.task_id: {"type": type(t).__name__, "downstream": sorted(t.downstream_task_ids),
                             "trigger_rule": str(t.trigger_rule),
                             "options": getattr(t, "pipeline_options", None),
                             "render_error": render(t, dag)}
                 for t in dag.tasks}
        for dag_id, dag in bag.dags.items()
    },
}, default=str))
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(PYTHON), reason="no Airflow venv (scripts/airflow_venv.sh)")
def test_the_airflow_dag_parses_with_its_four_tasks(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHON"))}
    env.update(AIRFLOW_HOME=str(tmp_path), HOME=str(tmp_path))
    done = subprocess.run(
        [PYTHON, "-c", PARSE, os.path.abspath(DAG_FILE)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = json.loads(done.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    tasks = parsed["dags"]["segscale_nightly_inference"]
    assert {name: t["type"] for name, t in tasks.items()} == {
        "segment_new_images": "BeamRunPythonPipelineOperator",
        "drift_check": "BashOperator",
        "review_queue": "BashOperator",
        "retrain": "BashOperator",
    }
    assert tasks["segment_new_images"]["downstream"] == ["drift_check"]
    assert tasks["drift_check"]["downstream"] == ["review_queue"]
    assert tasks["review_queue"]["trigger_rule"].lower().endswith("all_done")
    assert tasks["review_queue"]["downstream"] == ["retrain"]
    assert tasks["retrain"]["trigger_rule"].lower().endswith("all_done")
    assert {name: t["render_error"] for name, t in tasks.items()} == dict.fromkeys(tasks)
    options = tasks["segment_new_images"]["options"]
    assert options["sdk_container_image"].endswith("/segscale-worker:0.1.0")
    assert "setup_file" not in options  # workers start from the image, nothing installed
