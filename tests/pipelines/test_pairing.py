import pytest

from pipelines.ingest import pairing

SPLITS = (("train", 0.8), ("val", 0.1), ("test", 0.1))


def test_relative_key_strips_root_and_extension_through_folders():
    assert pairing.relative_key("/d/images/a/b/x.JPG", "/d/images") == ("a/b/x", ".jpg")
    assert pairing.relative_key("gs://b/masks/a/x_mask.png", "gs://b/masks/", "_mask") == (
        "a/x",
        ".png",
    )


def test_pairs_across_extensions():
    pair = pairing.classify("a/x", [("image", "i/a/x.jpg", 10), ("mask", "m/a/x.png", 5)], SPLITS)
    assert isinstance(pair, pairing.Pair)
    assert (pair.image, pair.mask, pair.nbytes) == ("i/a/x.jpg", "m/a/x.png", 15)


@pytest.mark.parametrize(
    "entries,reason",
    [
        ([("image", "x.png", 1)], "unpaired_image"),
        ([("mask", "x.png", 1)], "orphan_mask"),
        ([("image", "x.png", 1), ("image", "x.jpg", 1), ("mask", "x.png", 1)], "ambiguous_key"),
    ],
)
def test_unpairable_keys_are_rejects(entries, reason):
    result = pairing.classify("x", entries, SPLITS)
    assert isinstance(result, pairing.Reject) and result.reason == reason


def test_the_partner_of_a_file_rejected_when_listed_is_told_why():
    rejected = [("image", "i/x.png", "symlink_outside_input")]
    result = pairing.classify("x", [("mask", "m/x.png", 1)], SPLITS, rejected)
    assert result.reason == "image_rejected" and (result.image, result.mask) == (
        "i/x.png",
        "m/x.png",
    )
    assert "i/x.png was rejected: symlink_outside_input" in result.detail
    gone_mask = [("mask", "m/x.png", "not_a_regular_file")]
    assert pairing.classify("x", [("image", "i/x.png", 1)], SPLITS, gone_mask).reason == (
        "mask_rejected"
    )
    # every file of the key rejected when listed: nothing more to report
    assert pairing.classify("x", [], SPLITS, rejected) is None
    # a rejected file beside a good pair changes nothing
    both = [("image", "i/x.jpg", 1), ("mask", "m/x.png", 1)]
    assert isinstance(pairing.classify("x", both, SPLITS, rejected), pairing.Pair)


def test_split_is_stable_and_close_to_fractions():
    keys = [f"k{i}" for i in range(20000)]
    first = [pairing.assign_split(k, SPLITS) for k in keys]
    assert first == [pairing.assign_split(k, SPLITS) for k in keys]
    share = first.count("train") / len(keys)
    assert 0.78 < share < 0.82
    # Adding keys never moves existing ones: the split depends on the key alone.
    assert [pairing.assign_split(k, SPLITS) for k in keys[:100]] == first[:100]


def test_parse_splits_checks_sum_and_form():
    assert pairing.parse_splits("train=0.9,val=0.1") == (("train", 0.9), ("val", 0.1))
    with pytest.raises(ValueError, match="sum"):
        pairing.parse_splits("train=0.9,val=0.2")
    with pytest.raises(ValueError, match="name=fraction"):
        pairing.parse_splits("train")


def test_hidden_files_are_skipped():
    assert pairing.is_hidden("/d/images/.DS_Store", "/d/images")
    assert pairing.is_hidden("/d/images/.ipynb_checkpoints/x.png", "/d/images")
    assert not pairing.is_hidden("/d/.images/x.png", "/d/.images")


def test_folder_splits_take_the_first_folder_and_reject_the_rest():
    splits = pairing.parse_splits("folders")
    assert splits == (("train", None), ("val", None), ("test", None))
    assert pairing.assign_split("val/a/x", splits) == "val"
    assert pairing.assign_split("test/x", splits) == "test"
    assert pairing.assign_split("x", splits) is None  # no folder
    assert pairing.assign_split("other/x", splits) is None
    pair = pairing.classify(
        "train/x", [("image", "i/train/x.png", 1), ("mask", "m/train/x.png", 1)], splits
    )
    assert isinstance(pair, pairing.Pair) and pair.split == "train"
    stray = pairing.classify(
        "misc/x", [("image", "i/misc/x.png", 1), ("mask", "m/misc/x.png", 1)], splits
    )
    assert isinstance(stray, pairing.Reject) and stray.reason == "outside_split_folders"
    assert pairing.parse_splits("folders:fit,holdout") == (("fit", None), ("holdout", None))
    with pytest.raises(ValueError, match="unique"):
        pairing.parse_splits("folders:a,a")
