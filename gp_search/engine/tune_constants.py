"""Constant optimisation: a coordinate line search on the constants of the best hall-of-fame loss.

NGL's α = 2.4092 is such a constant. After the search (``optimize_constants = true``), each
constant of the best loss's tree is tried at the factors ``1.1, 0.9, 1.25, 0.8`` in turn, one
full training set (all proxies × seeds) per trial, up to ``constant_evals`` trials; a trial that
raises the fitness is kept and the line search continues from it. Tuned losses enter the hall of
fame like any other candidate (same cache, same seeds), so the result stays reproducible.

Inside the loop (``constants_in_loop = n > 0``, :func:`tune_in_loop`): after each generation the
hall of fame's best, if not tuned before, gets the same line search with up to ``n`` trials,
and an improved tree takes the place of the population's worst, so that offspring inherit its
constants. Which losses were tuned is checkpointed, so a resumed run tunes as an unbroken one.
"""

from __future__ import annotations

from gp_search.engine import variation as ops
from gp_search.lang import primitives as P
from gp_search.lang import LossExpr, parse

FACTORS = (1.1, 0.9, 1.25, 0.8)


def tune_constants(search, evals: int) -> str:
    """Tune the best hall-of-fame entry of ``search``; returns a one-line summary."""
    best = search.hof.entries[0]
    tree, score, used = line_search(search, best, evals)
    if not used:
        return ""
    current = best["fitness"] if score is None else score.fitness
    return f"{used} trials, best fitness {best['fitness']:.4f} -> {current:.4f}"


def tune_in_loop(search, evals: int):
    """Tune the hall of fame's best unless done before (``search.tuned``); returns the
    improved individual (its ``score`` set) or None. The caller places it."""
    if not search.hof.entries or search.hof.entries[0]["canonical"] in search.tuned:
        return None
    best = search.hof.entries[0]
    search.tuned.add(best["canonical"])
    tree, score, _ = line_search(search, best, evals)
    if score is None:
        return None
    ind = ops.individual(tree)
    ind.score = score
    return ind


def line_search(search, best: dict, evals: int):
    """The coordinate line search from hall-of-fame entry ``best``: ``(tree, score, trials)``,
    ``score`` None when no trial beat ``best``."""
    cfg, scorer = search.cfg, search.scorer
    tree = list(parse(best["prefix"], cfg.primitive_set, cfg.const_range).tree)
    ps = P.pset(cfg.primitive_set, cfg.const_range)
    slots = [i for i, node in enumerate(tree) if ops.is_constant(node)]
    current, used, improved = best["fitness"], 0, None
    for i in slots:
        for factor in FACTORS:
            if used >= evals:
                break
            trial = list(tree)
            value = round(tree[i].value * factor, P.CONST_DECIMALS)
            if value == tree[i].value:
                continue
            trial[i] = P.constant_terminal(value, ps)
            expr = LossExpr(ops.individual(trial), cfg.primitive_set)
            (score,), _ = scorer.score([expr], halving=False)
            used += 1
            search.hof.update([expr], [score])
            if score.status == "ok" and score.fitness > current:
                current, tree, improved = score.fitness, trial, score
    return tree, improved, used
