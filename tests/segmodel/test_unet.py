import dataclasses

import numpy as np
import pytest

from segmodel import config, unet
from segmodel.saving import load_model

SMALL = dataclasses.replace(config.smoke().model, base_filters=4, depth=2)


@pytest.mark.parametrize("size", [(16, 16), (37, 23), (5, 9)])
def test_any_input_size_comes_back_at_that_size(size):
    model = unet.build_unet(SMALL, num_classes=3, channels=1)
    out = model.predict(np.zeros((2, *size, 1), np.float32), verbose=0)
    assert out.shape == (2, *size, 3)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)  # softmax


def test_binary_model_has_one_sigmoid_channel():
    model = unet.build_unet(SMALL, num_classes=2, channels=3)
    out = model.predict(np.zeros((1, 8, 8, 3), np.float32), verbose=0)
    assert out.shape == (1, 8, 8, 1)
    probs = unet.class_probabilities(out)
    np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(
    "variant", [{"residual": True}, {"norm": "group", "groups": 2}, {"upsample": "resize"}]
)
def test_variants_save_and_reload_identically(tmp_path, variant):
    model = unet.build_unet(dataclasses.replace(SMALL, **variant), num_classes=4, channels=3)
    x = np.random.default_rng(0).normal(size=(1, 12, 20, 3)).astype(np.float32)
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = load_model(path)
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )


def test_head_is_float32_for_mixed_precision():
    model = unet.build_unet(SMALL, num_classes=3, channels=3)
    assert model.get_layer("head").dtype_policy.compute_dtype == "float32"


@pytest.mark.parametrize("size", [(5, 7), (1, 1), (2, 3), (16, 9)])
def test_bilinear_upsample_matches_tf_image_resize(size):
    import tensorflow as tf

    x = np.random.default_rng(1).normal(size=(2, *size, 3)).astype(np.float32)
    expected = tf.image.resize(x, (2 * size[0], 2 * size[1]), method="bilinear").numpy()
    got = np.asarray(unet.BilinearUpsample2x()(x))
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("upsample", ["transpose", "resize"])
def test_trains_in_a_graph_on_images_of_unknown_size(upsample):
    # model.fit over whole images of any size traces with height and width unknown; Keras'
    # bilinear UpSampling2D failed there ("symbolic tf.Tensor as a Python bool").
    import tensorflow as tf

    model = unet.build_unet(dataclasses.replace(SMALL, upsample=upsample), 3, channels=1)
    step = tf.function(
        lambda x: model(x, training=True),
        input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)],
    )
    assert tuple(step(np.zeros((2, 13, 22, 1), np.float32)).shape) == (2, 13, 22, 3)
