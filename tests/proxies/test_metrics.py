"""Held-out metrics against values computed by hand on small fixtures."""

import math

import pytest
import torch

from gp_search.proxies import metrics
from gp_search.proxies.spec import ProxySpec


def _cm(pred, target, c=3):
    return metrics.confusion(torch.tensor(pred), torch.tensor(target), c)


def test_confusion_counts_and_skips_the_ignore_label():
    cm = _cm([0, 1, 1, 2, 0], [0, 1, 2, 255, 2])
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [1, 1, 0]]


def test_metrics_match_hand_computed_values():
    # true:  0 0 1 1 2 2 ; pred: 0 1 1 1 2 0
    cm = _cm([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2])
    assert metrics.accuracy(cm) == 4 / 6
    # recalls 1/2, 2/2, 1/2
    assert metrics.balanced_accuracy(cm) == pytest.approx((0.5 + 1 + 0.5) / 3)
    # IoU: class 0 TP1 FP1 FN1 -> 1/3; class 1 TP2 FP1 FN0 -> 2/3; class 2 TP1 FP0 FN1 -> 1/2
    assert metrics.mean_iou(cm) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    # F1 = 2TP/(2TP+FP+FN): 2/4, 4/5, 2/3
    assert metrics.macro_f1(cm) == pytest.approx((2 / 4 + 4 / 5 + 2 / 3) / 3)


def test_miou_over_a_dense_split_is_accumulated_not_averaged_per_image():
    # Two 2x2 "images": per-image mean IoUs would average differently from the whole-split IoU.
    pred = torch.tensor([[[0, 0], [1, 1]], [[1, 1], [1, 1]]])
    target = torch.tensor([[[0, 0], [1, 255]], [[0, 1], [1, 1]]])
    cm = metrics.confusion(pred, target, 2)
    # class 0: TP 2, FN 1 (pixel predicted 1), FP 0 -> 2/3; class 1: TP 4, FP 1, FN 0 -> 4/5
    assert metrics.mean_iou(cm) == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert metrics.accuracy(cm) == 6 / 7


def test_a_class_absent_from_targets_and_predictions_is_not_averaged():
    cm = _cm([0, 1], [0, 1], c=4)
    assert metrics.mean_iou(cm) == 1.0 and metrics.macro_f1(cm) == 1.0
    assert math.isnan(metrics.accuracy(torch.zeros(2, 2, dtype=torch.long)))


def test_unknown_metric_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown metric 'auc'.*accuracy"):
        metrics.score("auc", torch.eye(2, dtype=torch.long))
    with pytest.raises(ValueError, match="metric"):
        ProxySpec("p", "digits", "mlp", metric="auc")


def test_the_metric_enters_the_cache_key_only_when_not_accuracy():
    base = ProxySpec("p", "digits", "mlp")
    assert ProxySpec("p", "digits", "mlp", metric="accuracy").key() == base.key()
    assert ProxySpec("p", "digits", "mlp", metric="macro_f1").key() != base.key()


def test_the_ignore_label_is_a_class_when_there_are_more_classes_than_it():
    # As in the losses (gp_search.lang.expr.prepare_masked): with 256+ classes, 255 is a class.
    cm = metrics.confusion(torch.tensor([255, 0]), torch.tensor([255, 0]), 300)
    assert int(cm.sum()) == 2 and int(cm[255, 255]) == 1


@pytest.mark.parametrize("classes, dense", [(10, False), (21, True), (300, False)])
def test_one_bincount_for_a_population_counts_as_one_per_slot(classes, dense):
    """The population scorer's one pass equals the per-slot confusion, ignore label included
    (skipped below 256 classes, a class above)."""
    g = torch.Generator().manual_seed(classes)
    shape = (6, 4, 5) if dense else (97,)
    target = torch.randint(0, classes, shape, generator=g)
    target.view(-1)[::7] = 255 if classes > 255 else metrics.IGNORE_INDEX
    pred = torch.randint(0, classes, (5, *shape), generator=g)
    got = metrics.confusions(pred, target, classes)
    assert got.shape == (5, classes, classes)
    for slot in range(5):
        assert torch.equal(got[slot], metrics.confusion(pred[slot], target, classes))


def test_the_chunked_scorer_does_not_depend_on_the_chunk():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 3, generator=g), torch.randint(0, 3, (50,), generator=g)
    w = torch.randn(4, 3, 3, generator=g)
    stacked = lambda xb: torch.einsum("bi,nij->nbj", xb, w)  # noqa: E731 - 4 linear 'models'
    whole = metrics.chunked_confusion(stacked, x, y, 3, chunk=50, population=4)
    assert torch.equal(whole, metrics.chunked_confusion(stacked, x, y, 3, chunk=7, population=4))
    one = metrics.chunked_confusion(lambda xb: xb @ w[2], x, y, 3, chunk=9)
    assert torch.equal(one, whole[2]) and int(one.sum()) == 50
