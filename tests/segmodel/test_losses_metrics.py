import math

import numpy as np
import pytest

from segmodel.losses import SegmentationLoss, class_weights_from_manifest
from segmodel.metrics import SegmentationMetric, confusion_matrix, summarize

# Two pixels of interest and one ignored: truth [0, 1, 255].
Y = np.array([[[0, 1, 255]]])
P = np.array([[[[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]]]], np.float32)


def test_cross_entropy_golden_and_ignore():
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert float(SegmentationLoss("ce", 2)(Y, P)) == pytest.approx(expected, rel=1e-5)


def test_class_weighted_cross_entropy_golden():
    loss = SegmentationLoss("ce", 2, class_weights=[1.0, 3.0])
    expected = -(1 * math.log(0.8) + 3 * math.log(0.6)) / 4
    assert float(loss(Y, P)) == pytest.approx(expected, rel=1e-5)


def test_focal_golden():
    expected = -((0.2**2) * math.log(0.8) + (0.4**2) * math.log(0.6)) / 2
    assert float(SegmentationLoss("focal", 2)(Y, P)) == pytest.approx(expected, rel=1e-5)


def test_dice_golden():
    # class 0: I=0.8, sums p=0.8+0.4, truth=1 → (1.6+1)/(2.2+1); class 1: I=0.6, p=0.8 → (1.2+1)/(1.8+1)
    d0, d1 = 2.6 / 3.2, 2.2 / 2.8
    assert float(SegmentationLoss("dice", 2)(Y, P)) == pytest.approx(1 - (d0 + d1) / 2, rel=1e-5)
    combined = SegmentationLoss("ce_dice", 2)(Y, P)
    assert float(combined) == pytest.approx(
        -(math.log(0.8) + math.log(0.6)) / 2 + 1 - (d0 + d1) / 2, rel=1e-5
    )


def test_binary_sigmoid_output_matches_two_channel_softmax():
    sigmoid = P[..., 1:]
    assert float(SegmentationLoss("ce", 2)(Y, sigmoid)) == pytest.approx(
        float(SegmentationLoss("ce", 2)(Y, P)), rel=1e-6
    )


def test_inverse_sqrt_class_weights():
    weights = class_weights_from_manifest(
        {"stats": {"class_frequencies": [0.81, 0.19 - 0.18, 0.18]}}, "inverse_sqrt"
    )
    assert weights[1] > weights[2] > weights[0]
    freq = np.array([0.81, 0.01, 0.18])
    assert float((np.array(weights) * freq).sum()) == pytest.approx(1.0)
    assert class_weights_from_manifest({}, "none") is None


def test_summarize_golden():
    cm = np.array([[3, 1], [0, 2]])
    m = summarize(cm, ["bg", "fg"])
    assert m["per_class_iou"] == {"bg": 0.75, "fg": pytest.approx(2 / 3)}
    assert m["mean_iou"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert m["per_class_dice"]["fg"] == pytest.approx(4 / 5)
    assert m["pixel_accuracy"] == pytest.approx(5 / 6)


def test_absent_class_is_null_not_zero():
    m = summarize(np.array([[4, 0, 0], [0, 2, 0], [0, 0, 0]]))
    assert m["per_class_iou"]["class_2"] is None and m["mean_iou"] == 1.0


def test_streaming_metric_equals_one_big_confusion_matrix():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (4, 6, 7))
    truth[0, 0, :3] = 255
    probs = rng.dirichlet(np.ones(3), size=(4, 6, 7)).astype(np.float32)
    metric = SegmentationMetric("mean_iou", 3, 255)
    for i in range(4):  # batch by batch
        metric.update_state(truth[i : i + 1], probs[i : i + 1])
    total = np.asarray(confusion_matrix(truth, probs.argmax(-1), 3, 255))
    assert total.sum() == truth.size - 3
    assert float(metric.result()) == pytest.approx(summarize(total)["mean_iou"], rel=1e-6)
    accuracy = SegmentationMetric("pixel_accuracy", 3, 255)
    accuracy.update_state(truth, probs)
    assert float(accuracy.result()) == pytest.approx(summarize(total)["pixel_accuracy"], rel=1e-6)
