#!/usr/bin/env bash
# A separate virtual environment with Airflow and the providers runners/schedule/airflow_dag.py
# uses, for tests/runners/test_airflow_dag.py (never a dependency of segscale). Installs once
# (a stamp of these pins), from the package registry; prints the environment's python.
#   SEGSCALE_AIRFLOW_PYTHON=$(./scripts/airflow_venv.sh) ./scripts/test.sh tests/runners
set -euo pipefail
pins=(apache-airflow==3.3.2 apache-airflow-providers-apache-beam==6.3.1
  apache-airflow-providers-google==22.8.0)
venv="${SEGSCALE_CACHE:-$HOME/.cache/segscale}/airflow-venv"
stamp="$venv/.installed-$(echo "${pins[*]}" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "airflow_venv.sh: installing ${pins[*]} into $venv (first run only; about 2 minutes)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" >&2
  touch "$stamp"
fi
echo "$venv/bin/python"
