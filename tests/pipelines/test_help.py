"""`--help` of every command answers at once: no TensorFlow or Beam import."""

import subprocess
import sys

import pytest

from pipelines import cli

CHECK = (
    "import sys; from pipelines import cli; code = cli.main([sys.argv[1], '--help']); "
    "heavy = [m for m in ('tensorflow', 'apache_beam', 'keras') if m in sys.modules]; "
    "print('HEAVY', heavy); sys.exit(code)"
)


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_help_imports_neither_tensorflow_nor_beam(command):
    out = subprocess.run(
        [sys.executable, "-c", CHECK, command], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout and "Example:" in out.stdout
    assert "HEAVY []" in out.stdout


@pytest.mark.parametrize(
    "module",
    [
        "pipelines.ingest",
        "pipelines.infer",
        "segmodel.train",
        "segmodel.evaluate",
        "segmodel.export",
    ],
)
def test_module_help_imports_no_beam(module):
    code = (
        "import runpy, sys; sys.argv = ['x', '--help']\n"
        f"try:\n    runpy.run_module('{module}', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('tensorflow', 'apache_beam') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr[-2000:]
