"""Dense prediction: the generated scenes, the U-Net, the ignore label in every loss, the seg proxies."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gp_search import parse, proxies
from gp_search.lang import IGNORE_INDEX
from gp_search.lang.losses import NGL, REFERENCE, dice
from gp_search.proxies import models
from gp_search.proxies.data import dataset as data
from gp_search.proxies.data import scenes as segmentation
from gp_search.proxies.data import transforms as tasks

SMALL = segmentation.SceneConfig(n_train=40, n_test=20)


# --- the generator -------------------------------------------------------------------------------

def test_generator_is_deterministic_per_seed():
    x1, y1 = segmentation.generate(SMALL, 8, seed=3)
    np.random.seed(0)  # the global RNG plays no part
    x2, y2 = segmentation.generate(SMALL, 8, seed=3)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    x3, y3 = segmentation.generate(SMALL, 8, seed=4)
    assert not np.array_equal(y1, y3) and not np.array_equal(x1, x3)


def test_scenes_hold_every_class_and_label_the_ink():
    x, y = segmentation.generate(SMALL, 60, seed=0)
    assert x.shape == (60, 1, 32, 32) and x.dtype == np.float32
    assert y.shape == (60, 32, 32) and set(np.unique(y)) == set(range(segmentation.NUM_CLASSES))
    # An object pixel is ink: brighter on average than the background around it.
    assert x[:, 0][y > 0].mean() > x[:, 0][y == 0].mean() + 0.2


def test_imbalanced_variant_is_dominated_by_background():
    cfg = segmentation.VARIANTS["seg-digits-imbalanced"]
    _, y = segmentation.generate(cfg, 200, seed=0)
    _, y_even = segmentation.generate(segmentation.VARIANTS["seg-digits"], 200, seed=0)
    shares, even = segmentation.class_shares(y), segmentation.class_shares(y_even)
    assert shares[0] > 0.88 and even[0] < 0.8
    assert shares[1] > 3 * shares[5]  # class weights 8 : ... : 1


def test_registered_scenes_are_a_dense_dataset_with_unseen_test_digits():
    ds = data.load("seg-digits")
    assert ds.y_train.shape == (2000, 32, 32) and ds.y_test.shape == (500, 32, 32)
    assert ds.num_classes == 6 and ds.input_shape == (1, 32, 32)
    assert abs(float(ds.x_train.mean())) < 1e-3
    train, test = segmentation.digit_pool("train"), segmentation.digit_pool("test")
    seen = {a.tobytes() for d in train.values() for a in d}
    assert not any(a.tobytes() in seen for d in test.values() for a in d)


def test_a_canvas_too_small_for_the_zoom_is_refused():
    with pytest.raises(ValueError, match="larger than the 16x16 canvas"):
        segmentation.generate(segmentation.SceneConfig(size=16), 1, seed=0)


# --- the U-Net -----------------------------------------------------------------------------------

def test_unet_is_dense_seeded_and_free_of_running_statistics():
    a = models.build("unet", (1, 32, 32), 6, seed=2)
    b = models.build("unet", (1, 32, 32), 6, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not list(a.buffers())
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in a.modules())
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        out = a.train()(x)
        torch.testing.assert_close(out, a.eval()(x))  # GroupNorm: train and eval agree
    assert out.shape == (3, 6, 32, 32)
    with pytest.raises(ValueError, match="multiples of 4"):
        models.build("unet", (1, 30, 30), 6, seed=0)


# --- the ignore label in every loss --------------------------------------------------------------

def _dense(seed=0, c=6, ignored=True):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, c, 5, 4, generator=g, dtype=torch.float64) * 3
    target = torch.randint(0, c, (2, 5, 4), generator=g)
    if ignored:
        target[0, 0, :] = IGNORE_INDEX  # a border, as VOC marks object outlines
        target[1, 2, 1] = IGNORE_INDEX
    return logits, target


@pytest.mark.parametrize("text", ["ngl", "exp(-y_pred*y_real) + sin(y_pred)*y_real"])
def test_dense_expression_loss_equals_its_pixel_by_pixel_definition(text):
    expr = NGL if text == "ngl" else parse(text)
    logits, target = _dense()
    total, kept = 0.0, 0
    for n in range(2):
        for h in range(5):
            for w in range(4):
                if target[n, h, w] == IGNORE_INDEX:
                    continue
                p = torch.softmax(logits[n, :, h, w], 0)
                t = F.one_hot(target[n, h, w], 6).double()
                total += float(expr.elementwise(p, t).sum())
                kept += 1
    assert kept == 2 * 5 * 4 - 5
    assert float(expr.to_torch()(logits, target)) == pytest.approx(total / (kept * 6), rel=1e-12)


def test_ce_and_label_smoothing_equal_torch_with_ignore_index():
    logits, target = _dense()
    torch.testing.assert_close(REFERENCE["ce"](logits, target),
                               F.cross_entropy(logits, target, ignore_index=255))
    torch.testing.assert_close(REFERENCE["label_smoothing"](logits, target),
                               F.cross_entropy(logits, target, ignore_index=255,
                                               label_smoothing=0.1))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_ignored_pixels_count_nowhere(name):
    logits, target = _dense()
    z = logits.clone().requires_grad_(True)
    value = REFERENCE[name](z, target)
    (grad,) = torch.autograd.grad(value, z)
    ignored = (target == IGNORE_INDEX).unsqueeze(1).expand_as(grad)
    assert torch.all(grad[ignored] == 0) and grad[~ignored].abs().sum() > 0
    other = logits.clone()
    other[ignored] = 50.0  # whatever the net says there changes nothing
    torch.testing.assert_close(REFERENCE[name](other, target), value.detach())


def test_without_ignored_pixels_the_plain_mean_is_kept_bit_for_bit():
    logits, target = _dense(ignored=False)
    p, t = torch.softmax(logits, 1), F.one_hot(target, 6).movedim(-1, 1).double()
    assert torch.equal(NGL.to_torch()(logits, target), NGL.elementwise(p, t).mean())
    assert torch.equal(REFERENCE["ce"](logits, target), -(t * torch.log_softmax(logits, 1)).sum(1).mean())


def test_with_more_than_255_classes_255_is_a_class():
    g = torch.Generator().manual_seed(1)
    logits, target = torch.randn(4, 300, generator=g), torch.tensor([255, 3, 255, 299])
    torch.testing.assert_close(REFERENCE["ce"](logits, target), F.cross_entropy(logits, target))


def test_dice_is_the_documented_soft_dice():
    logits, target = _dense()
    keep = (target != IGNORE_INDEX).unsqueeze(1).double()
    p = torch.softmax(logits, 1) * keep
    t = F.one_hot(target.clamp(max=5), 6).movedim(-1, 1).double() * keep
    per_class = [(2 * (p[:, k] * t[:, k]).sum() + 1) / (p[:, k].sum() + t[:, k].sum() + 1)
                 for k in range(6)]
    torch.testing.assert_close(dice(logits, target), 1 - torch.stack(per_class).mean())
    perfect = F.one_hot(target.clamp(max=5), 6).movedim(-1, 1).double() * 60
    assert float(dice(perfect, target)) < 1e-6 < float(dice(logits, target))


# --- the proxies ---------------------------------------------------------------------------------

def test_seg_proxy_trains_scores_miou_and_repeats_itself():
    p = proxies.get("seg-digits-unet", steps=3)
    assert p.spec.metric == "miou"
    a, b = p.evaluate("ngl", seed=1), p.evaluate("ngl", seed=1)
    assert a.status == "ok" and 0 < a.accuracy < 1 and a.same_outcome(b)
    assert a.metric == "miou" and a.to_dict()["metric"] == "miou"
    val = proxies.get("seg-digits-unet", steps=2, split="val").evaluate("ce", seed=0)
    assert val.status == "ok" and 0 < val.accuracy < 1


def test_dense_validation_split_holds_out_whole_scenes():
    ds = data.load("seg-digits")
    val = data.validation_split(ds)
    assert val.x_test.shape == (400, 1, 32, 32) and val.y_test.shape == (400, 32, 32)
    assert val.n_train == 1600


def test_per_sample_task_transforms_are_refused_on_dense_labels():
    with pytest.raises(ValueError, match="per-pixel labels"):
        tasks.transform(data.load("seg-digits"), subsample=100)


def test_compare_on_a_seg_proxy_reports_miou():
    from gp_search.analysis.compare import compare

    cmp = compare(["ce", "dice", "ngl"], [proxies.get("seg-digits-unet", steps=2)], seeds=2)
    assert [r["metric"] for r in cmp.rows] == ["miou"] * 3
    from gp_search.analysis.report import detail_rows, format_table, summary_rows

    assert summary_rows(cmp)[1][0][0] == "CE (mIoU %)"
    assert detail_rows(cmp, "seg-digits-unet")[0][1] == "mIoU % (mean ± sd)"
    assert "accuracy" not in format_table(cmp)
    assert all(r["replay_agree"] == "2/2" for r in cmp.rows)
    # per-pixel calibration: one entry per test pixel and seed
    assert cmp.calibration[("seg-digits-unet", "ngl")]["top"].shape == (2 * 500 * 32 * 32,)


# --- everything else works on it -----------------------------------------------------------------

def test_cli_evaluate_on_a_seg_proxy():
    from conftest import run_cli

    r = run_cli("evaluate", "--loss", "ce", "--loss", "ngl", "--proxy", "seg-digits-unet",
                "--steps", "2", "--seeds", "2", "--jobs", "1")
    assert r.returncode == 0, r.stderr
    assert "proxy seg-digits-unet" in r.stdout and "n = 2" in r.stdout
    assert len([line for line in r.stdout.splitlines() if line.startswith(("ce ", "ngl "))]) == 2
    assert "mIoU mean ± std" in r.stdout and "accuracy" not in r.stdout


def test_a_transfer_table_on_a_seg_task_names_miou():
    from gp_search.analysis.transfer import transfer
    from gp_search.analysis.transfer_tables import (detail_rows, format_transfer,
                                                    summary_rows, transfer_markdown)

    res = transfer(["ngl"], suite="transfer-seg-test", seeds=2)  # a paired test needs 2
    assert summary_rows(res)[1][0][0] == "CE (mIoU %)"
    assert detail_rows(res, "t-seg-digits-imbalanced-unet")[0][1] == "mIoU %"
    assert "CE mIoU %:" in format_transfer(res)
    md = transfer_markdown(res)
    assert "## Change in test mIoU against CE" in md and "accuracy" not in md


@pytest.mark.slow
def test_cli_compare_on_a_seg_proxy_reports_miou(tmp_path):
    from conftest import run_cli

    out = tmp_path / "cmp"
    r = run_cli("compare", "--proxy", "seg-digits-unet", "--steps", "2", "--seeds", "2",
                "--baselines", "ce,dice,ngl", "--out", out)
    assert r.returncode == 0, r.stderr
    md = (out / "compare.md").read_text()
    assert "mIoU % (mean ± sd)" in md and "## Change in test mIoU against CE" in md
    assert "accuracy %" not in md
    rows = (out / "compare.csv").read_text().splitlines()
    assert rows[0].endswith(",metric") and all(row.endswith(",miou") for row in rows[1:])


def test_a_seg_proxy_can_be_a_search_fitness_proxy(tmp_path):
    from gp_search.engine import rundir as store
    from gp_search.engine.config import SearchConfig
    from gp_search.engine.runner import run_search

    cfg = SearchConfig(population=4, generations=1, proxies=("seg-digits-unet",), steps=3,
                       seeds=1, jobs=1, backend="sequential", out=str(tmp_path / "runs"),
                       hall_of_fame=3, init_max_depth=2, max_height=4, max_size=10, seed=5,
                       elitism=1, seed_individuals=("ngl",))
    run = store.load_run(run_search(cfg, quiet=True))
    assert run.finished and run.best and np.isfinite(run.best["fitness"])
    assert sum(g["trained"] + g["short"] for g in run.generations) >= 1


def test_the_transfer_stage_runs_a_held_out_seg_task():
    from gp_search.analysis.transfer import transfer
    from gp_search.engine.config import SearchConfig

    res = transfer(["exp(-y_pred*y_real)"], suite="transfer-seg-test", seeds=2, jobs=1,
                   baselines=["ce", "ngl"])
    assert {r["task"] for r in res.rows} == {"t-seg-digits-imbalanced-unet"}
    assert len(res.rows) == 3 and all(r["n"] == 2 for r in res.rows)
    with pytest.raises(ValueError, match="held-out"):
        SearchConfig(proxies=("seg-digits-unet", "t-seg-digits-imbalanced-unet"))


def test_held_out_miou_counts_the_whole_split_whatever_the_chunk():
    from gp_search.proxies.train import held_out_score

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 3, 4, 4, generator=g)
    target = torch.randint(0, 3, (5, 4, 4), generator=g)
    target[:, 0, 0] = IGNORE_INDEX
    pred, keep = logits.argmax(1).numpy(), target.numpy() != IGNORE_INDEX
    t, p = target.numpy()[keep], pred[keep]
    hand = np.mean([((t == c) & (p == c)).sum() / ((t == c) | (p == c)).sum() for c in range(3)])
    for chunk in (1, 2, 5):
        got = held_out_score(torch.nn.Identity(), logits, target, chunk, 3, "miou")
        assert got == pytest.approx(hand, rel=1e-12)
    assert held_out_score(torch.nn.Identity(), logits, target, 2, 3, "accuracy") == \
        pytest.approx((t == p).mean(), rel=1e-12)
