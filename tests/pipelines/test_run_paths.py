"""pipelines/run_paths.py: where a run's masks go, and names that must not leave the output."""

import pytest

from pipelines import run_paths


@pytest.mark.parametrize(
    "path,root,expected",
    [
        ("/d/in/a/b.png", "/d/in/", "a/b.png"),
        ("/d/in/../x.png", "/d/in/", None),
        ("gs://b/in/x.png", "gs://b/in/", "x.png"),
    ],
)
def test_output_paths_never_escape(path, root, expected):
    assert run_paths.safe_relative(path, root) == expected


@pytest.mark.parametrize(
    "pattern,root",
    [
        ("/d/in/**/*.jpg", "/d/in/"),
        ("/d/in/*.png", "/d/in/"),
        ("gs://b/in/**", "gs://b/in/"),
        ("s3://b/x/y/img_*.png", "s3://b/x/y/"),
    ],
)
def test_pattern_root_is_the_folder_before_the_first_wildcard(pattern, root):
    assert run_paths.pattern_root(pattern) == root


def test_a_mask_lies_under_masks_with_png_appended():
    assert run_paths.mask_path("s3://b/out/", "a/b.tif") == "s3://b/out/masks/a/b.tif.png"
