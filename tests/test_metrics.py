"""UAR, WAR and per-class recall against hand-computed confusion matrices."""

from __future__ import annotations

import json

import pytest
import torch

from fe_adapter._json import to_json
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


def test_classes_absent_from_the_test_set_are_named_and_left_out_of_uar():
    # true: a a b b b    predicted: a c b a b    (no clip of c; one of a predicted c)
    metrics = Metrics.from_predictions(torch.tensor([0, 2, 1, 0, 1]), torch.tensor([0, 0, 1, 1, 1]), ["a", "b", "c"])
    assert metrics.per_class_recall == pytest.approx((1 / 2, 2 / 3, None))
    assert metrics.uar == pytest.approx((1 / 2 + 2 / 3) / 2) and metrics.war == pytest.approx(3 / 5)
    assert metrics.uar_classes == ("a", "b") and metrics.absent_classes == ("c",)
    written = metrics.to_dict()
    assert written["per_class_recall"] == {"a": pytest.approx(0.5), "b": pytest.approx(2 / 3), "c": None}
    assert written["uar_classes"] == ["a", "b"] and written["absent_classes"] == ["c"]
    assert metrics.summary() == "UAR 58.33% (over 2 of 3 classes; no clips of c)  WAR 60.00%"
    # strict JSON: a parser that refuses NaN/Infinity reads it, with null for the absent class
    parsed = json.loads(to_json(written), parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert parsed["per_class_recall"]["c"] is None
    present = Metrics.from_predictions(torch.tensor([0, 1]), torch.tensor([0, 1]), ["a", "b"])
    assert present.summary() == "UAR 100.00%  WAR 100.00%" and present.to_dict()["absent_classes"] == []


def test_no_clips_at_all_is_an_error_not_nan():
    with pytest.raises(ValueError, match="no clips to score"):
        Metrics.from_predictions(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long), ["a", "b"])
