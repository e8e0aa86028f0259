"""Example Airflow DAG: nightly incremental bulk inference on Dataflow, then the run's drift
check and review queue.

Copy into your Airflow dags/ folder (Airflow 3 with apache-airflow-providers-apache-beam and,
for Dataflow, apache-airflow-providers-google; none of them a dependency of this project, and
never imported by it; tests/runners/test_airflow_dag.py parses this file with the versions
scripts/airflow_venv.sh pins). The job itself is the same `python -m pipelines.infer` that runs
locally; its Dataflow workers start from the segscale worker image (runners/container/build.sh,
pushed to your registry: WORKER_IMAGE below), so nothing is installed when they start.
--skip_existing makes each night do only new work and appends one record to OUTPUT/runs.jsonl. `segscale drift` exits 3 when the night's images
drifted from the training data: that task fails and Airflow's alerting (email_on_failure,
on_failure_callback) tells someone. The review queue runs either way (trigger_rule all_done).
Then the loop's retrain step (runners/schedule/retrain.sh): review batches a person corrected
are appended to the training data, the current model is fine-tuned on it and promoted only if
it is not worse on a gold set. It needs the model, the training and gold data and the review
folders on a disk the Airflow worker reads (RETRAIN = False drops the task).
"""

from datetime import datetime

from airflow import DAG
from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
from airflow.providers.standard.operators.bash import BashOperator

OUTPUT = "gs://my-bucket/masks"
SEGSCALE = "/opt/segscale/.venv/bin/segscale"  # where the wheel below is installed
WORKER_IMAGE = "europe-west4-docker.pkg.dev/my-project/segscale/segscale-worker:0.1.0"
RETRAIN = True
LOCAL = "/mnt/segscale"  # the retrain step's folders (a disk or a bucket mounted there)

with DAG(
    dag_id="segscale_nightly_inference",
    schedule="30 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["segscale"],
    default_args={"email_on_failure": True, "email": ["ml-oncall@example.com"]},
) as dag:
    segment = BeamRunPythonPipelineOperator(
        task_id="segment_new_images",
        py_file="pipelines/infer/__main__.py",  # from a checkout; the wheel below provides the packages
        runner="DataflowRunner",
        pipeline_options={
            "model_dir": "gs://my-bucket/models/current",
            "input_pattern": "gs://my-bucket/incoming/**/*.png",
            "output_dir": OUTPUT,
            "skip_existing": True,
            "sdk_container_image": WORKER_IMAGE,  # Runner v2 workers start from the image
            "temp_location": "gs://my-bucket/tmp",
            "project": "my-project",
            "region": "europe-west4",
        },
        # The project is not on PyPI: build its wheel once (`python -m pip wheel --no-deps -w dist
        # .` in a checkout) and install it from a path the Airflow workers can read.
        py_requirements=["/opt/airflow/wheels/segscale-0.1.0-py3-none-any.whl"],
        py_system_site_packages=False,
    )
    drift = BashOperator(
        task_id="drift_check",
        bash_command=f"{SEGSCALE} drift --run {OUTPUT} --baseline manifest",
    )
    review = BashOperator(
        task_id="review_queue",
        bash_command=f"{SEGSCALE} review --run {OUTPUT} --top 20",
        trigger_rule="all_done",  # also after a drift alert: that is when a person should look
    )
    segment >> drift >> review
    if RETRAIN:
        retrain = BashOperator(
            task_id="retrain",
            # The trailing space matters: a command ending in ".sh" is read by Airflow as the
            # path of a Jinja template file, not run.
            bash_command="/opt/segscale/runners/schedule/retrain.sh ",
            env={
                "SEGSCALE": SEGSCALE,
                "MODEL_DIR": f"{LOCAL}/models/current",
                "OUTPUT_DIR": f"{LOCAL}/masks",
                "TRAIN_DATA": f"{LOCAL}/train",
                "GOLD_DATA": f"{LOCAL}/gold",
                "TRAIN_FLAGS": "--set train.max_minutes=30",
            },
            append_env=True,
            trigger_rule="all_done",  # after the review queue, drift or not
        )
        review >> retrain
