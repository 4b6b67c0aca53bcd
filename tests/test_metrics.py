"""UAR, WAR and per-class recall against hand-computed confusion matrices."""

from __future__ import annotations

import math

import pytest
import torch

from fe_adapter.metrics import Metrics, confusion_matrix


def test_hand_computed_example():
    # true:  a a b b b c c c c      predicted: a b b b a c c a c
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 1, 0, 2, 2, 0, 2])
    confusion = confusion_matrix(predictions, labels, 3)
    assert confusion.tolist() == [[1, 1, 0], [1, 2, 0], [1, 0, 3]]
    metrics = Metrics.from_confusion(confusion, ["a", "b", "c"])
    assert metrics.per_class_recall == pytest.approx((1 / 2, 2 / 3, 3 / 4))
    assert metrics.uar == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)
    assert metrics.war == pytest.approx(6 / 9)
    assert metrics.to_dict()["per_class_recall"]["b"] == pytest.approx(2 / 3)


def test_imbalance_separates_uar_from_war():
    """Predicting the majority class everywhere: high WAR, UAR = 1 / num_classes."""
    labels = torch.tensor([0] * 18 + [1])
    metrics = Metrics.from_predictions(torch.zeros(19, dtype=torch.long), labels, ["neutral", "disgust"])
    assert metrics.war == pytest.approx(18 / 19) and metrics.uar == pytest.approx(0.5)


def test_classes_absent_from_the_test_set_do_not_count():
    metrics = Metrics.from_predictions(torch.tensor([0, 1]), torch.tensor([0, 0]), ["a", "b", "c"])
    assert metrics.uar == pytest.approx(0.5)
    assert math.isnan(metrics.per_class_recall[1]) and math.isnan(metrics.per_class_recall[2])


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        confusion_matrix(torch.tensor([0]), torch.tensor([3]), 3)
    with pytest.raises(ValueError, match="differ in length"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]), 3)
