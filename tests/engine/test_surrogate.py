"""The surrogate: predictions from the nearest scored behaviours, and a search that uses it."""

from gp_search import NGL, parse
from gp_search.engine import rundir as store
from gp_search.engine.surrogate import Surrogate
from gp_search.engine.runner import run_search

from test_search import hof_text, small

CE_LIKE = "-y_real*plog(y_pred)"


def test_a_scored_behaviour_predicts_its_own_fitness_and_scaled_copies_share_it():
    s = Surrogate()
    s.add(NGL, 0.25)
    s.add(parse("(y_pred - y_real)**2"), -0.5)
    # 2*NGL + 1 has NGL's training signal (unit-norm gradient): distance 0, NGL's fitness
    pred = s.predict([NGL, parse(f"2*({NGL.infix}) + 1"), parse("(y_pred - y_real)**2")])
    assert pred[0] == 0.25 and abs(pred[1] - 0.25) < 1e-12 and pred[2] == -0.5


def test_prediction_lies_between_the_neighbours_and_choose_keeps_order():
    s = Surrogate(k=2)
    s.add(NGL, 1.0)
    s.add(parse("(y_pred - y_real)**2"), -1.0)
    new = [parse(CE_LIKE), parse("exp(-y_pred*y_real)"), NGL]
    pred = s.predict(new)
    assert all(-1.0 <= p <= 1.0 for p in pred)
    chosen = s.choose(new, 2)
    assert 2 in chosen and chosen == sorted(chosen)
    assert Surrogate().predict(new).tolist() == [0.0, 0.0, 0.0]  # nothing scored yet


def test_state_round_trip_predicts_the_same():
    s = Surrogate()
    for text, f in [(NGL.prefix, 0.3), ("(y_pred - y_real)**2", -0.2), (CE_LIKE, 0.1)]:
        s.add(parse(text), f)
    back = Surrogate.restore(s.state(), lambda prefix, pset: parse(prefix, pset))
    probe = [parse("exp(-y_pred*y_real)"), parse("y_real*cos(y_pred)")]
    assert back.predict(probe).tolist() == s.predict(probe).tolist()


def test_a_search_with_the_surrogate_is_deterministic_and_checkpoints_what_it_saw(tmp_path):
    a = run_search(small(tmp_path / "a", surrogate=3), quiet=True)
    b = run_search(small(tmp_path / "b", surrogate=3), quiet=True)
    assert hof_text(a) == hof_text(b)
    seen = store.read_checkpoint(a)["surrogate"]
    assert seen and all(isinstance(f, float) for _, _, f in seen)
    plain = run_search(small(tmp_path / "c"), quiet=True)
    assert "surrogate" not in store.read_checkpoint(plain)
    assert hof_text(plain) != hof_text(a)  # it chose other offspring than plain GP trains


def test_constants_in_loop_tune_each_best_once_and_resume_keeps_the_record(tmp_path):
    """In-loop tuning (gp_search.engine.tune_constants.tune_in_loop): the tuned bests are
    checkpointed, a repeated run gives the same hall of fame, and tuning spends full trainings
    beyond plain GP's."""
    cfg = small(tmp_path / "a", constants_in_loop=3, generations=2,
                seed_individuals=("ngl", "exp(-1.5*y_pred*(y_real + 1))"))
    a = run_search(cfg, quiet=True)
    b = run_search(small(tmp_path / "b", constants_in_loop=3, generations=2,
                         seed_individuals=cfg.seed_individuals), quiet=True)
    assert hof_text(a) == hof_text(b)
    state = store.read_checkpoint(a)
    assert state["tuned"] and set(state["tuned"]) <= set(state["scorer"]["by_key"])
    plain = store.read_checkpoint(run_search(small(tmp_path / "c", generations=2,
                                                   seed_individuals=cfg.seed_individuals),
                                             quiet=True))
    assert "tuned" not in plain
    assert state["scorer"]["full_trainings"] > plain["scorer"]["full_trainings"]
