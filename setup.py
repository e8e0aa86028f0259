"""Shim so Beam workers can stage this package with --setup_file=./setup.py.

All metadata lives in pyproject.toml.
"""

import setuptools

setuptools.setup()
