"""Every file path that README.md, runners/README.md and docs/*.md name exists, and every test
they cite (`tests/x.py::test_name`, `::test_name...` for a prefix) is defined in that file."""

import glob
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "runners/README.md", *sorted(glob.glob("docs/*.md", root_dir=ROOT))]
# A path into the tree: a top-level folder of ours, then path characters; an optional
# ::test_name (or ::test_prefix...) after a test file.
PATH = re.compile(
    r"(?<![\w./-])((?:pipelines|segmodel|runners|tests|bench|docs|scripts)/[\w./*-]*[\w*])"
    r"(?:::(\w+)(\.\.\.)?)?"
)


def _cited():
    for doc in DOCS:
        with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                for match in PATH.finditer(line):
                    yield doc, number, match.group(1), match.group(2), bool(match.group(3))


def test_every_path_and_test_the_docs_name_exists():
    missing = []
    for doc, number, path, test, prefix in _cited():
        if "*" in path:
            if not glob.glob(path, root_dir=ROOT):
                missing.append(f"{doc}:{number}: {path} (matches nothing)")
            continue
        full = os.path.join(ROOT, path)
        if not os.path.exists(full):
            missing.append(f"{doc}:{number}: {path}")
            continue
        if test and path.endswith(".py"):
            source = open(full, encoding="utf-8").read()
            name = re.escape(test) + ("" if prefix else r"\b")
            if not re.search(rf"def {name}", source):
                missing.append(f"{doc}:{number}: {path}::{test}")
    assert not missing, "named in the docs but not in the tree:\n" + "\n".join(missing)
