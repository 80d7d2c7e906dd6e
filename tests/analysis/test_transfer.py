"""The transfer stage: task transforms, suites, the paired table, exported-file input, the CLI."""

import csv

import numpy as np
import pytest
import torch

from gp_search import proxies
from gp_search.analysis.transfer import DEFAULT_BASELINES, read_loss, scored, transfer
from gp_search.analysis.transfer_tables import write_transfer
from gp_search.analysis.stats import paired, summarize
from gp_search.lang.export import export
from gp_search.proxies.data import dataset as data
from gp_search.proxies import catalog
from gp_search.proxies.data import transforms as tasks
from gp_search.proxies.spec import ProxySpec
from gp_search.proxies.train import dataset_for

DIGITS = data.load("digits")


# --- transforms -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("parity", [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]),
    ("half", [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
    ("mod3", [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]),
    ("mod5", [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]),
])
def test_relabel_maps_both_splits(name, expected):
    assert tasks.relabel_map(name).tolist() == expected
    ds = tasks.transform(DIGITS, relabel=name)
    assert ds.num_classes == max(expected) + 1
    want = torch.tensor(expected)
    assert torch.equal(ds.y_train, want[DIGITS.y_train])
    assert torch.equal(ds.y_test, want[DIGITS.y_test])
    assert ds.x_train is DIGITS.x_train  # the inputs are untouched


def test_label_noise_corrupts_exactly_that_fraction_of_train_labels_only():
    ds = tasks.transform(DIGITS, label_noise=0.3, data_seed=4)
    wrong = (ds.y_train != DIGITS.y_train).float().mean().item()
    assert wrong == pytest.approx(round(0.3 * DIGITS.n_train) / DIGITS.n_train)
    assert torch.equal(ds.y_test, DIGITS.y_test)  # test labels stay clean
    # Symmetric: the wrong labels spread over all the other classes.
    flipped = ds.y_train[ds.y_train != DIGITS.y_train]
    assert len(set(flipped.tolist())) == 10
    # Deterministic per data seed, different for another one.
    again = tasks.transform(DIGITS, label_noise=0.3, data_seed=4)
    other = tasks.transform(DIGITS, label_noise=0.3, data_seed=5)
    assert torch.equal(again.y_train, ds.y_train)
    assert not torch.equal(other.y_train, ds.y_train)


def test_noise_after_relabel_stays_among_the_new_classes():
    ds = tasks.transform(DIGITS, relabel="parity", label_noise=0.3)
    clean = tasks.transform(DIGITS, relabel="parity")
    assert set(ds.y_train.tolist()) == {0, 1}
    # With 2 classes "another class" is the only other one: exactly 30 % flipped.
    assert (ds.y_train != clean.y_train).sum().item() == round(0.3 * DIGITS.n_train)


def test_subsample_is_stratified_and_deterministic():
    ds = tasks.transform(DIGITS, subsample=300, data_seed=1)
    assert ds.n_train == 300 and ds.n_test == DIGITS.n_test
    counts = np.bincount(ds.y_train.numpy(), minlength=10)
    assert counts.min() >= 28 and counts.max() <= 32  # ~30 per class
    # Every kept sample is a real (input, label) pair of the original training split.
    rows = {tuple(x.tolist()): y for x, y in zip(DIGITS.x_train, DIGITS.y_train.tolist())}
    assert all(rows[tuple(x.tolist())] == y for x, y in zip(ds.x_train, ds.y_train.tolist()))
    assert torch.equal(tasks.transform(DIGITS, subsample=300, data_seed=1).x_train, ds.x_train)


def test_no_transform_is_the_dataset_itself_and_keys_stay():
    assert tasks.transform(DIGITS) is DIGITS
    # Cache keys of the existing proxies do not change (shipped numbers stay keyed).
    assert proxies.get("digits-mlp").spec.key() == "digits-mlp@954ed75630a7"
    spec = proxies.get("digits-mlp").spec
    assert ProxySpec(**{**spec.__dict__, "label_noise": 0.1}).key() != spec.key()


@pytest.mark.parametrize("field, value, words", [
    ("relabel", "thirds", "'relabel' must be ''"),
    ("subsample", -5, "'subsample' must be >= 0 (0: the whole training split"),
    ("label_noise", 1.0, "'label_noise' must be a fraction in [0, 1)"),
    ("label_noise", -0.1, "'label_noise' must be"),
    ("data_seed", -1, "'data_seed' must be >= 0"),
])
def test_bad_transform_values_are_refused(field, value, words):
    with pytest.raises(ValueError, match=r"got " + repr(value).replace("(", r"\(")) as info:
        proxies.get("digits-mlp", **{field: value})
    assert words in str(info.value)
    with pytest.raises(ValueError, match=field):
        ProxySpec("x", "digits", "mlp", **{field: value})


def test_subsample_larger_than_the_split_and_relabel_of_non_10_classes_fail_clearly():
    with pytest.raises(ValueError, match=r"subsample must lie in 10\.\.1437"):
        tasks.transform(DIGITS, subsample=5000)
    with pytest.raises(ValueError, match="maps 10 classes and the dataset has 2"):
        tasks.transform(data.load("tabular-2"), relabel="parity")


def test_tabular_datasets_and_trainer_sees_the_transformed_task():
    for k in (2, 3, 20):
        ds = data.load(f"tabular-{k}")
        assert (ds.n_train, ds.n_test, ds.num_classes) == (2000, 500, k)
        assert sorted(set(ds.y_test.tolist())) == list(range(k))
    spec = proxies.get("t-mnist1d-mod5-noisy").spec
    ds = dataset_for(spec)
    assert ds.num_classes == 5
    assert torch.equal(ds.y_test, data.load("mnist1d").y_test % 5)


def test_validation_split_of_a_noisy_task_keeps_clean_held_out_labels():
    spec = proxies.get("digits-mlp", split="val", label_noise=0.3).spec
    noisy, clean = dataset_for(spec), data.validation_split(DIGITS)
    assert torch.equal(noisy.y_test, clean.y_test)  # what is scored: never corrupted
    assert (noisy.y_train != clean.y_train).sum().item() == round(0.3 * clean.n_train)


def test_suites_hold_registered_held_out_tasks():
    search_proxies = {"digits-mlp", "digits-cnn", "mnist1d-cnn"}
    for suite in catalog.SUITES:
        for name, overrides in catalog.suite_tasks(suite):
            assert name in proxies.SPECS and name not in search_proxies
            proxies.get(name, **overrides)
    classes = {dataset_for(proxies.get(n).spec).num_classes for n, _ in catalog.SUITES["transfer"]}
    assert {2, 3, 5, 10} <= classes
    nested = catalog.SUITES["transfer-select"] + catalog.SUITES["transfer-report"]
    assert set(catalog.TASK_NOTES) == {n for n, _ in catalog.SUITES["transfer"] + nested}
    assert [n for n, _ in catalog.SUITES["transfer"]] == list(catalog.TASK_NOTES)[:10]  # as it was
    with pytest.raises(ValueError, match="unknown suite 'nope'; known suites: transfer"):
        catalog.suite_tasks("nope")


# --- the stage ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    # y_pred*y_real minimised pushes the target probability down: below chance at K = 2 and 3.
    return transfer(["y_pred*y_real"], suite="transfer-test", seeds=3, jobs=1)


def test_table_figures_are_stats_paired_on_the_same_numbers(tiny):
    for row in tiny.rows:
        mine = tiny.results[(row["task"], row["loss"])]
        ce = tiny.results[(row["task"], "ce")]
        acc, ce_acc = [r.accuracy for r in mine], [r.accuracy for r in ce]
        d, s = paired(acc, ce_acc), summarize(acc)
        assert (row["diff_vs_ce"], row["diff_ci_low"], row["diff_ci_high"], row["p_value"]) == \
            (d["diff"], d["ci_low"], d["ci_high"], d["p_value"])
        assert (row["acc_mean"], row["acc_ci_low"], row["n"]) == (s["mean"], s["ci_low"], 3)


def test_a_loss_that_breaks_two_classes_shows_a_negative_change(tiny):
    row = next(r for r in tiny.rows if r["task"] == "t-tabular2-mlp"
               and r["loss"] == "y_pred*y_real")
    assert row["classes"] == 2 and row["acc_mean"] < 0.5  # worse than a coin
    assert row["diff_ci_high"] < 0
    agg = next(a for a in tiny.aggregate if a["loss"] == "y_pred*y_real")
    assert agg["mean_diff"] < -0.3 and agg["tasks_worse"] == 2


def test_a_failed_training_scores_chance():
    bad = [proxies.EvalResult("nan"), proxies.EvalResult("ok", accuracy=0.9)]
    assert scored(bad, 4) == [0.25, 0.9]


def test_results_do_not_depend_on_jobs(tiny):
    two = transfer(["y_pred*y_real"], suite="transfer-test", seeds=3, jobs=2)
    assert [r["acc_mean"] for r in two.rows] == [r["acc_mean"] for r in tiny.rows]


def test_writers(tiny, tmp_path):
    files = write_transfer(tiny, tmp_path, "gp-search transfer x")
    assert {f.name for f in files} == {"transfer.md", "transfer.csv", "transfer_seeds.csv",
                                       "env.json"}
    rows = list(csv.DictReader(open(tmp_path / "transfer.csv")))
    assert len(rows) == 2 * (len(DEFAULT_BASELINES) + 1)
    assert float(rows[0]["acc_mean"]) == tiny.rows[0]["acc_mean"]
    md = (tmp_path / "transfer.md").read_text()
    assert "| `y_pred*y_real` |" in md and "worst task" in md


def test_bad_arguments():
    with pytest.raises(ValueError, match="including 'ce'"):
        transfer(["ngl"], suite="transfer-test", seeds=2, baselines=("ngl",))
    with pytest.raises(ValueError, match="at least 2"):
        transfer(["ngl"], suite="transfer-test", seeds=1)
    with pytest.raises(ValueError):
        read_loss("exp(y_pred")


# --- exported files -------------------------------------------------------------------------------

def test_exported_file_is_read_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    text = export("exp(-y_pred*y_real)", "torch", name="found")
    # If anything imported or ran this file, the marker would appear.
    text += f"\nopen({str(marker)!r}, 'w').write('ran')\n"
    path = tmp_path / "found.py"
    path.write_text(text)
    entry = read_loss(str(path))
    assert not marker.exists()
    assert entry.label == "found" and entry.origin == str(path)
    from gp_search.lang.expr import parse
    assert parse(entry.spec).canonical == parse("exp(-y_pred*y_real)").canonical


def test_file_without_a_tree_line_is_refused(tmp_path):
    path = tmp_path / "evil.py"
    path.write_text(f"open({str(tmp_path / 'marker')!r}, 'w')\n")
    with pytest.raises(ValueError, match="exactly one 'Tree: <expression>' line"):
        read_loss(str(path))
    assert not (tmp_path / "marker").exists()
    with pytest.raises(ValueError, match="does not exist"):
        read_loss(str(tmp_path / "missing.py"))


# --- CLI ------------------------------------------------------------------------------------------

def test_cli_end_to_end(cli, tmp_path):
    loss = tmp_path / "mine.py"
    loss.write_text(export("y_pred*y_real", "torch", name="mine"))
    out = tmp_path / "out"
    res = cli("transfer", loss, "--suite", "transfer-test", "--seeds", "2", "--jobs", "2",
              "--out", out, timeout=900)
    assert res.returncode == 0, res.stderr
    assert "suite transfer-test: n = 2 seeds" in res.stdout
    assert "mine: mean -" in res.stdout  # the broken loss loses to CE on average
    assert {p.name for p in out.iterdir()} >= {"transfer.md", "transfer.csv", "env.json"}
    assert "gp-search transfer" in (out / "transfer.md").read_text()
    bad = cli("transfer", "ngl", "--suite", "transfer-test", "--seeds", "1", "--out", out)
    assert bad.returncode == 2 and "at least 2" in bad.stderr
