"""The tree passes ruff (format and lint, security rules included) as configured in pyproject.toml."""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _ruff():
    found = shutil.which("ruff", path=str(pathlib.Path(sys.executable).parent))
    if found is None:
        pytest.skip("ruff is not installed (pip install -e .[test])")
    return found


def test_lint_including_security_rules():
    result = subprocess.run(
        [_ruff(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:]


def test_format():
    result = subprocess.run(
        [_ruff(), "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-4000:]
