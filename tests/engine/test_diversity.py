"""Behavioural distance, clearing, the diverse hall of fame and random immigrants."""

import itertools

from gp_search.engine.cache import Cache
from gp_search import parse
from gp_search.lang.losses import REFERENCE
from gp_search.engine import diversity as D
from gp_search.engine.hall_of_fame import HallOfFame
from gp_search.engine import Score

from test_search import hof_text, small
from gp_search.engine.runner import run_search

FAMILY = [f"exp(-{c}*y_pred*y_real*cos(y_real))" for c in (4.9, 6.3, 8.24, 10.7, 13.4)]
"""The quick preset's old top 5: one loss with five constants (issue 20)."""
DISTINCT = {"ce": "-y_real*plog(y_pred)", "ngl": REFERENCE["ngl"].expr.prefix,
            "paper": "(y_real - sin(y_pred) - cos(y_pred) + 1.33446)*cos(2.07459*sin(y_pred) "
                     "+ 2.07459)"}
"""Losses at least 0.3 apart, and from FAMILY (CE and NGL 0.71, NGL and the paper best 0.60,
the paper best and FAMILY 0.33-0.36)."""


def test_distance_is_zero_for_the_same_signal_and_bounded():
    ngl = parse(DISTINCT["ngl"])
    assert D.distance(ngl, parse(f"3*({DISTINCT['ngl']}) + 1")) < 1e-6  # scaled and shifted
    assert D.distance(ngl, parse("y_pred*y_real")) <= 2.0
    assert D.distance(ngl, parse("y_real + 1")) == D.FAR  # no gradient: no direction


def test_one_loss_with_five_constants_is_one_niche_and_distinct_losses_are_not():
    family = [parse(t) for t in FAMILY]
    assert max(D.distance(a, b) for a, b in itertools.combinations(family, 2)) < 0.3
    distinct = [parse(t) for t in DISTINCT.values()]
    assert min(D.distance(a, b) for a, b in itertools.combinations(distinct, 2)) >= 0.3
    # CE's close variants are one niche at 0.3: label smoothing 0.04 and focal 0.08 from it.
    assert D.distance(distinct[0], parse("-y_real*(1 - y_pred)**2*plog(y_pred)")) < 0.3


def test_clearing_keeps_one_winner_per_niche():
    exprs = [parse(t) for t in FAMILY[:3]] + [parse(DISTINCT["ngl"])]
    fitness = [0.1, 0.3, 0.2, 0.0]
    assert D.clearing(exprs, fitness, 0.3) == [True, False, True, False]
    assert D.clearing(exprs, fitness, 0.0) == [False] * 4


def _fill(hof: HallOfFame, texts: list[str], fitness: list[float]) -> None:
    exprs = [parse(t) for t in texts]
    hof.update(exprs, [Score(f, n=1) for f in fitness])


def test_hall_of_fame_holds_no_two_entries_closer_than_the_radius():
    texts = FAMILY + list(DISTINCT.values())
    fitness = [0.5, 0.49, 0.48, 0.47, 0.46, 0.1, 0.2, 0.3]  # DISTINCT: all worse
    plain, diverse = HallOfFame(5), HallOfFame(5, radius=0.3)
    _fill(plain, texts, fitness)
    _fill(diverse, texts, fitness)
    assert [e["canonical"] for e in plain.entries] == [parse(t).canonical for t in FAMILY]
    assert len(diverse.entries) == 4 and diverse.entries[0] == plain.entries[0] | {"nearest": 2.0}
    assert all(e["nearest"] >= 0.3 for e in diverse.entries)
    exprs = [parse(e["prefix"]) for e in diverse.entries]
    assert min(D.distance(a, b) for a, b in itertools.combinations(exprs, 2)) >= 0.3


def test_hall_of_fame_admits_no_loss_that_fails_hard_examples():
    hof = HallOfFame(5, hard_examples=True)
    _fill(hof, [FAMILY[2], DISTINCT["ngl"]], [0.5, 0.1])
    assert [e["canonical"] for e in hof.entries] == [parse(DISTINCT["ngl"]).canonical]


def test_niching_and_immigrants_keep_the_search_reproducible(tmp_path):
    """Same seed, same hall of fame, whatever the number of workers; the new random draws
    (immigrants) come from the checkpointed ``random`` state."""
    kw = dict(niche_radius=0.3, immigrants=0.5, generations=2)
    a = run_search(small(tmp_path / "a", **kw), quiet=True)
    b = run_search(small(tmp_path / "b", **kw, jobs=2, backend="loky"), quiet=True)
    assert hof_text(a) == hof_text(b)
    assert "nearest" in hof_text(a).splitlines()[0]


def test_a_search_stopped_and_restored_from_its_state_ends_as_an_unbroken_one(tmp_path):
    """Clearing is recomputed from the population and the immigrants come from the
    checkpointed ``random`` state, so a resumed search with both ends where an unbroken one does."""
    import json

    from gp_search.engine import rundir as store
    from gp_search.engine.evolve import Search
    from gp_search.engine.runner import make_scorer

    def search(path, stop_after=None):
        cfg = small(path, niche_radius=0.3, immigrants=0.5, generations=3)
        path.mkdir(parents=True)
        cache = Cache(path / "cache.sqlite")
        s = Search(cfg, path, make_scorer(cfg, cache), cache)
        if stop_after is not None:
            s.hooks.after_generation.append(
                lambda rec: s.stop() if rec["generation"] == stop_after else None)
        return s, cache

    unbroken, cache = search(tmp_path / "u")
    unbroken.run()
    cache.close()
    first, cache = search(tmp_path / "r", stop_after=1)
    first.run()
    state = json.loads(json.dumps(first.state()))  # as the checkpoint holds it
    state["random_state"] = store.random_state_from_json(state["random_state"], tmp_path)
    cache.close()
    second, cache = search(tmp_path / "r2")
    second.restore(state)
    second.run()
    cache.close()
    assert second.hof.entries == unbroken.hof.entries and second.generation == 3
