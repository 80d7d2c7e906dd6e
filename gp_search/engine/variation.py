"""DEAP wiring: the individual class, initialisation, crossover, the four mutations and the limits.

The variation step itself is DEAP's ``algorithms.varAnd`` on this module's toolbox (called by
:mod:`gp_search.engine.evolve`): clone, cross consecutive pairs, mutate each.

DEAP's ``creator`` classes are global state: they are created once, here, at import, guarded
against re-creation. All randomness comes from Python's ``random`` module (DEAP's operators use
it), which the search seeds from the master seed and checkpoints.

Mutations (one chosen uniformly when an offspring mutates):

* ``subtree`` — replace a random subtree by a new grown one of depth 0–2 (``gp.mutUniform``);
* ``node`` — replace one node by another of the same arity (``gp.mutNodeReplacement``);
* ``constant`` — perturb one constant by Gaussian noise of scale ``0.1·max(1, |c|)``
  (a fresh constant when the tree has none);
* ``shrink`` — replace a subtree by one of its own arguments (``gp.mutShrink``).
"""

from __future__ import annotations

import operator
import random
from functools import partial

from deap import base, creator, gp, tools

from gp_search.lang import primitives as P
from gp_search.engine.config import SearchConfig

if not hasattr(creator, "LossFitness"):
    creator.create("LossFitness", base.Fitness, weights=(1.0,))
if not hasattr(creator, "LossIndividual"):
    creator.create("LossIndividual", gp.PrimitiveTree, fitness=creator.LossFitness)

Individual = creator.LossIndividual
MUTATIONS = ("subtree", "node", "constant", "shrink")


def individual(tree) -> "Individual":
    """A fresh individual (unevaluated) holding a copy of ``tree``'s nodes."""
    return Individual(list(tree))


def is_constant(node) -> bool:
    return isinstance(type(node), gp.MetaEphemeral)


def mut_constant(ind, ps: gp.PrimitiveSet, const_range: float):
    """Perturb one constant of ``ind`` in place (or insert one where a terminal stands).

    Not DEAP's ``gp.mutEphemeral(mode="one")``: that redraws the constant from its generator
    (uniform over the whole range), this moves it by a relative step, so a good value is refined
    rather than replaced; and a tree without constants gets one here.
    """
    idx = [i for i, n in enumerate(ind) if is_constant(n)]
    if idx:
        i = random.choice(idx)
        old = ind[i].value
        new = round(old + random.gauss(0.0, 0.1 * max(1.0, abs(old))), P.CONST_DECIMALS)
        ind[i] = P.constant_terminal(new, ps)
        return (ind,)
    leaves = [i for i, n in enumerate(ind) if n.arity == 0]
    ind[random.choice(leaves)] = P.constant_terminal(P.draw_constant(const_range), ps)
    return (ind,)


def toolbox(cfg: SearchConfig) -> base.Toolbox:
    """The DEAP toolbox for a config: ``init``, ``select``, ``mate``, ``mutate``.

    ``mate`` and ``mutate`` respect the static height and size limits: an offspring over a limit
    is replaced by its parent (``gp.staticLimit``).
    """
    ps = P.pset(cfg.primitive_set, cfg.const_range)
    tb = base.Toolbox()
    tb.register("expr", gp.genHalfAndHalf, pset=ps, min_=cfg.init_min_depth, max_=cfg.init_max_depth)
    tb.register("init", lambda: Individual(tb.expr()))
    tb.register("select", tools.selTournament, tournsize=cfg.tournament_size)
    tb.register("mate", gp.cxOnePoint)
    tb.register("grow", gp.genGrow, min_=0, max_=2)
    mutations = {
        "subtree": partial(gp.mutUniform, expr=tb.grow, pset=ps),
        "node": partial(gp.mutNodeReplacement, pset=ps),
        "constant": partial(mut_constant, ps=ps, const_range=cfg.const_range),
        "shrink": gp.mutShrink,
    }
    tb.register("mutate", lambda ind: mutations[random.choice(MUTATIONS)](ind))
    for op in ("mate", "mutate"):
        tb.decorate(op, gp.staticLimit(key=operator.attrgetter("height"), max_value=cfg.max_height))
        tb.decorate(op, gp.staticLimit(key=len, max_value=cfg.max_size))
    return tb

