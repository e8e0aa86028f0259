import numpy as np

from segmodel.config import DataConfig
from segmodel.input_pipeline import make_dataset
from segmodel.manifest import load_manifest


def test_training_batches_are_patches_with_normalised_images(ingested_dir):
    manifest = load_manifest(str(ingested_dir))
    cfg = DataConfig(patch_size=32, batch_size=4, shuffle_buffer=8)
    ds = make_dataset(str(ingested_dir), manifest, "train", cfg, training=True, seed=1)
    images, masks = next(iter(ds))
    assert images.shape == (4, 32, 32, 3) and masks.shape == (4, 32, 32)
    assert abs(float(np.mean(images))) < 1.0  # standardised with the manifest's mean/std
    assert set(np.unique(masks.numpy())) <= {0, 1, 2, 255}
    again = next(
        iter(make_dataset(str(ingested_dir), manifest, "train", cfg, training=True, seed=1))
    )
    np.testing.assert_array_equal(images.numpy(), again[0].numpy())  # a seed makes it deterministic


def test_evaluation_streams_whole_images_at_native_size(ingested_dir):
    manifest = load_manifest(str(ingested_dir))
    ds = make_dataset(str(ingested_dir), manifest, "val", DataConfig(), training=False)
    sizes = {tuple(image.shape[1:3]) for image, mask in ds}
    assert len(list(ds)) == manifest["splits"]["val"]["records"]
    assert len(sizes) > 1  # the synthetic set has varied sizes; none was cropped


def test_evaluation_streams_do_not_autotune(ingested_dir):
    # Keras deletes the validation iterator before each evaluate(); with autotuning on, that
    # deletion stalled for up to 20 s in later epochs (segmodel/input_pipeline.py).
    manifest = load_manifest(str(ingested_dir))
    config = DataConfig(cache_decoded=True)
    val = make_dataset(str(ingested_dir), manifest, "val", config, training=False)
    train = make_dataset(str(ingested_dir), manifest, "train", config, training=True)
    assert val.options().autotune.enabled is False
    assert train.options().autotune.enabled is not False  # training keeps tf.data's tuning
