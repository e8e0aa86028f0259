"""The mistakes a new user makes in the first hour end in a non-zero exit and one line to act on."""

import numpy as np
from builders import encode, random_pair, write

from pipelines.infer import pipeline as infer
from pipelines.ingest import pipeline as ingest

INPROCESS = ["--profile=inprocess"]


def _folders(root, count=4, num_classes=3):
    for i in range(count):
        image, mask = random_pair(i, 16, 16, num_classes)
        mask[0, 0] = num_classes - 1  # every mask holds the top class
        write(str(root / "images" / f"x{i}.png"), encode(image))
        write(str(root / "masks" / f"x{i}.png"), encode(mask))
    return root / "images", root / "masks"


def _ingest(images, masks, out, *extra):
    return ingest.main(
        [
            f"--images_dir={images}",
            f"--masks_dir={masks}",
            f"--output_dir={out}",
            *INPROCESS,
            *extra,
        ]
    )


def test_wrong_num_classes_says_which_flag(tmp_path, capsys):
    images, masks = _folders(tmp_path / "in", num_classes=3)
    assert _ingest(images, masks, tmp_path / "out", "--num_classes=2") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: all 4 inputs were rejected, 4 of them mask_values_out_of_range; masks hold "
        "classes up to 2; did you mean --num_classes 3?"
    ]


def test_binary_masks_without_binary_mode_say_so(tmp_path, capsys):
    for i in range(3):
        write(str(tmp_path / "images" / f"x{i}.png"), encode(random_pair(i, 8, 8)[0]))
        mask = np.zeros((8, 8), np.uint8)
        mask[:4] = 255
        write(str(tmp_path / "masks" / f"x{i}.png"), encode(mask))
    assert (
        _ingest(tmp_path / "images", tmp_path / "masks", tmp_path / "out", "--num_classes=2") == 2
    )
    # 255 is the default ignore label: without binary mode every foreground pixel is ignored
    assert "for 0/255 masks use --mask_mode binary" in capsys.readouterr().err


def test_nothing_found_is_an_error(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    assert (
        _ingest(tmp_path / "images", tmp_path / "masks", tmp_path / "out", "--num_classes=2") == 2
    )
    assert "found no files under --images_dir" in capsys.readouterr().err


def test_output_inside_an_input_folder_is_refused(tmp_path, capsys):
    images, masks = _folders(tmp_path / "in")
    assert _ingest(images, masks, images / "out", "--num_classes=3") == 2
    err = capsys.readouterr().err
    assert f"--output_dir {images / 'out'} is inside --images_dir {images}" in err
    assert not (images / "out").exists()


def test_inference_over_nothing_fails_and_nothing_new_is_said(
    tmp_path, exported_model, capsys, monkeypatch
):
    args = [f"--model_dir={exported_model}", f"--output_dir={tmp_path / 'pred'}", *INPROCESS]

    def no_runner(*_):
        raise AssertionError("a pattern that matches nothing must fail before the runner starts")

    with monkeypatch.context() as patched:
        patched.setattr(infer, "execute", no_runner)
        assert infer.main([*args, f"--input_pattern={tmp_path}/nope/*.png"]) == 2
        assert infer.main([*args, f"--input_tfrecords={tmp_path}/none-*.tfrecord"]) == 2
    err = capsys.readouterr().err
    assert f"--input_pattern {tmp_path}/nope/*.png matches no file" in err
    assert f"--input_tfrecords {tmp_path}/none-*.tfrecord matches no file" in err
    assert not (tmp_path / "pred" / "runs.jsonl").exists()  # no run recorded
    images, _ = _folders(tmp_path / "in", count=3)
    pattern = f"--input_pattern={images}/*.png"
    assert infer.main([*args, pattern, "--skip_existing"]) == 0
    capsys.readouterr()
    assert infer.main([*args, pattern, "--skip_existing"]) == 0
    assert "Nothing new: 3 skipped" in capsys.readouterr().out
