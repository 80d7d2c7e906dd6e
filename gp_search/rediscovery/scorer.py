"""The scorer of targeted rediscovery: fitted, extended, polished trees, scored by behaviour.

:class:`BehaviourScorer` implements :class:`gp_search.engine.score.ScorerProtocol`, so that the
engine's one generation loop, :class:`gp_search.engine.evolve.Search`, drives it: ``accept``
(what a usable tree is, for the start and for repairing offspring) and ``rewrite`` (Lamarckian:
the trees the scores belong to) do real work here. Each new tree is

1. folded — variable-free subtrees become one fittable constant;
2. fitted — a few Levenberg–Marquardt steps on its constants (:mod:`gp_search.rediscovery.behaviour`),
   written back;
3. extended — with term weights, the best constant-free library tree is added as a new term
   when the fit gain pays for its nodes (forward stepwise regression over a small library);
4. polished when it beats the best so far — SymPy's canonical form when smaller, then greedy
   pruning of subtrees, whatever raises ``digits − parsimony·size``.

Nothing here knows the target beyond its probe values: operators, constants, the library and
the start are generic.
"""

from __future__ import annotations

import math

from deap import gp

from gp_search.lang import primitives as P
from gp_search.lang import ExprError, LossExpr, parse
from gp_search.engine import Score
from gp_search.rediscovery.behaviour import Fit, Target, constant_slots, terms
from gp_search.rediscovery.library import Library


# --- tree rewriting ------------------------------------------------------------------------------

PS = P.pset("paper", P.DEFAULT_CONST_RANGE)


def fold_constant_subtrees(tree) -> list | None:
    """Replace every variable-free subtree of two or more nodes by one (fittable) constant.

    Returns:
        The new node list, or ``None`` when nothing folds (or a folded value is not finite).
    """
    tree = gp.PrimitiveTree(tree)
    n = len(tree)
    free = [False] * n  # subtree at i has no variable
    value = [0.0] * n
    stack = []  # (index) of finished subtrees, for the bottom-up pass
    for i in range(n - 1, -1, -1):
        node = tree[i]
        if isinstance(node, gp.Primitive):
            kids = [stack.pop() for _ in range(node.arity)]
            free[i] = all(free[k] for k in kids)
            if free[i]:
                value[i] = P.BY_NAME[node.name].math_fn(*(value[k] for k in kids))
        else:
            free[i] = node.value not in P.SYMBOLS
            value[i] = 0.0 if not free[i] else float(node.value)
        stack.append(i)
    if not any(free[i] and tree[i].arity for i in range(n)):
        return None
    out, i = [], 0
    while i < n:
        if free[i] and tree[i].arity:
            if not math.isfinite(value[i]):
                return None
            out.append(P.constant_terminal(value[i], PS))
            i = tree.searchSubtree(i).stop
        else:
            out.append(tree[i])
            i += 1
    return out


def materialise(tree, fit: Fit, term_weights: bool) -> LossExpr:
    """The loss an individual proposes: its tree, or with term weights ``Σ wᵢ·termᵢ``.

    The overall positive scale is free (it does not change training); it is fixed so that the
    first term with ``y_pred`` and without constants of its own keeps a coefficient of ±1 (else
    the first term with ``y_pred``), and terms of weight 0 are left out. Coefficients of exactly
    ±1 need no ``mul`` node.
    """
    if fit.theta and len(fit.theta) == len(constant_slots(tree)):
        tree = with_constants(tree, fit.theta)
    if not term_weights or len(fit.weights) != len(terms(tree)):
        return LossExpr(gp.PrimitiveTree(tree))
    parts = [list(tree[s]) for s in terms(tree)]
    top = max(abs(w) for w in fit.weights) if fit.weights else 0.0
    live = [i for i, w in enumerate(fit.weights) if abs(w) > 1e-12 * top]
    if not live:
        return LossExpr(gp.PrimitiveTree(tree))
    # A term without y_pred only shifts the loss (what the distance ignores): never the scale.
    moving = [i for i in live if any(getattr(n, "value", None) == P.PRED for n in parts[i])]
    ref = next((i for i in moving if not constant_slots(parts[i])), (moving or live)[0])
    scale = abs(fit.weights[ref])
    add, sub, mul = (PS.mapping[n] for n in ("add", "sub", "mul"))
    out: list | None = None
    for i in live:
        c = fit.weights[i] / scale
        nodes, negative = parts[i], False
        if abs(abs(c) - 1.0) <= 1e-12:
            negative = c < 0
        else:
            nodes = [mul, P.constant_terminal(c, PS)] + nodes
        if out is None:
            out = [mul, P.constant_terminal(-1.0, PS)] + nodes if negative else nodes
        else:
            out = [sub if negative else add] + out + nodes
    return LossExpr(gp.PrimitiveTree(out))


def with_constants(tree, theta) -> list:
    """The tree's nodes with its constants (in :func:`constant_slots` order) set to ``theta``."""
    out = list(tree)
    for i, v in zip(constant_slots(tree), theta):
        out[i] = P.constant_terminal(float(v), PS)
    return out


# --- the scorer ----------------------------------------------------------------------------------

class BehaviourScorer:
    """Fitness = digits of agreement with a target's behaviour; implements
    :class:`gp_search.engine.score.ScorerProtocol`.

    Each new tree has its variable-free subtrees folded to constants, then its constants fitted
    (``fit_steps`` LM steps from its own values) and written back (:meth:`rewrite`, the
    Lamarckian hook of :class:`evolve.Search`). A tree that beats the best so far is polished
    (:meth:`polish`). Trees are remembered by prefix text, so a copy is never refitted.

    Args:
        target: the :class:`Target` to rediscover.
        fit_steps: LM steps per new tree.
        polish: prune and simplify new bests.
        parsimony: the per-node penalty the polish step trades distance against.
        max_height: trees the polish step produces stay within it.
    """

    MEMO_LIMIT = 400_000
    """Remembered trees; beyond it the memo restarts (memory stays under ~1 GB)."""

    def __init__(self, target: Target, fit_steps: int = 4, polish: bool = True,
                 parsimony: float = 0.02, max_height: int = 8, library: Library | None = None,
                 max_size: int = 30):
        self.target, self.fit_steps, self.do_polish = target, fit_steps, polish
        self.library, self.max_size = library, max_size
        self.extensions = 0
        self.parsimony, self.max_height = parsimony, max_height
        self.seeds: list[int] = []  # no trainings: the engine's seed list is empty
        self.fits: dict[str, Fit] = {}
        self.rewrites: dict[str, list | None] = {}
        self.best = -math.inf
        self.evaluations = 0
        self.polishes = 0
        self._pending: list = []

    # -- ScorerProtocol --
    def state(self) -> dict:
        """Counters and the best fitness (the fit memo is rebuilt as trees come back)."""
        return {"evaluations": self.evaluations, "polishes": self.polishes, "best": self.best,
                "extensions": self.extensions}

    def restore(self, state: dict) -> None:
        """Take back what :meth:`state` gave."""
        self.evaluations = int(state.get("evaluations", 0))
        self.polishes = int(state.get("polishes", 0))
        self.extensions = int(state.get("extensions", 0))
        self.best = float(state.get("best", -math.inf))

    def accept(self, expr: LossExpr) -> bool:
        """A usable tree uses both variables and is finite on the probes (the cheap part of the
        project's screening; no training, and nothing about the target)."""
        names = {n.value for n in expr.tree if not isinstance(n, gp.Primitive)}
        return {P.PRED, P.REAL} <= names and math.isfinite(
            self.target.distance(expr.tree).max_grad_error)

    def score(self, exprs: list[LossExpr], halving: bool = True) -> tuple[list[Score], dict]:
        """Score candidates; :meth:`rewrite` then gives the trees the scores belong to.

        ``halving`` is ignored: there are no training budgets to cut (every fit is complete).
        """
        counts = dict(rejected=0, duplicate=0, cached=0, trained=0, short=0)
        scores, self._pending = [], []
        for e in exprs:
            key = e.prefix
            if key in self.fits:
                counts["duplicate"] += 1
            else:
                self._evaluate(key, e.tree)
                counts["trained"] += 1
            fit = self.fits[key]
            ok = math.isfinite(fit.max_grad_error)
            scores.append(Score(fit.fitness, 0.0, 1, "ok" if ok else "nan", "full",
                                "" if ok else "no positive fit (wrong direction or non-finite)"))
            self._pending.append(self.rewrites[key])
        return scores, counts

    def rewrite(self, exprs: list[LossExpr]) -> list[list | None]:
        """The fitted (and maybe polished) tree for each candidate of the last :meth:`score`."""
        assert len(exprs) == len(self._pending), "rewrite() must follow score() on the same batch"
        return self._pending

    def fit_of(self, prefix: str) -> Fit | None:
        return self.fits.get(prefix)

    # -- evaluation --
    def _evaluate(self, key: str, tree) -> None:
        self.evaluations += 1
        if len(self.fits) > self.MEMO_LIMIT:
            self.fits.clear()
            self.rewrites.clear()
        nodes = fold_constant_subtrees(tree) or list(tree)
        fit = self.target.fit_constants(nodes, self.fit_steps)
        nodes = with_constants(nodes, fit.theta)
        if self.library is not None:
            nodes, fit = self.extend(nodes, fit)
        if self.do_polish and fit.fitness > self.best:
            nodes, fit = self.polish(nodes, fit)
        self.best = max(self.best, fit.fitness)
        new_key = str(gp.PrimitiveTree(nodes))
        self.fits[key] = fit
        self.rewrites[key] = nodes if new_key != key else None
        self.fits[new_key], self.rewrites[new_key] = fit, None

    def extend(self, nodes: list, fit: Fit) -> tuple[list, Fit]:
        """Add the library's best new term when that pays for its nodes (Lamarckian).

        Returns:
            ``(nodes, fit)``, extended or as given.
        """
        got = self.library.best_extension(nodes, fit)
        if got is None:
            return nodes, fit
        extra, estimate = got
        size = len(nodes) + len(extra) + 1
        if size > self.max_size or -math.log10(max(estimate, 1e-10)) - self.parsimony * size \
                <= self._penalised(nodes, fit):
            return nodes, fit
        new = [PS.mapping["add"]] + nodes + extra
        if gp.PrimitiveTree(new).height > self.max_height:
            return nodes, fit
        # Measured, not refitted: the constants adapt when the tree is next varied.
        new_fit = self.target.distance(new)
        if self._penalised(new, new_fit) > self._penalised(nodes, fit):
            self.extensions += 1
            return new, new_fit
        return nodes, fit

    def _penalised(self, nodes: list, fit: Fit) -> float:
        return fit.fitness - self.parsimony * len(nodes)

    def _refit(self, nodes: list, steps: int = 12) -> tuple[list, Fit]:
        nodes = fold_constant_subtrees(nodes) or nodes
        fit = self.target.fit_constants(nodes, steps)
        return with_constants(nodes, fit.theta), fit

    def polish(self, nodes: list, fit: Fit) -> tuple[list, Fit]:
        """Simplify and prune a tree while its penalised fitness does not drop.

        1. SymPy's canonical form, read back as a tree, when it is smaller (drops introns,
           merges constants); 2. greedy pruning: replace a subtree by one of its children or by
           one constant, refit the constants, keep the first change that raises
           ``fitness − parsimony·size``; repeat until none does.

        Returns:
            ``(nodes, fit)`` of the polished tree (the input when nothing helps).
        """
        self.polishes += 1
        nodes, fit = list(nodes), fit
        try:
            simple = parse(LossExpr(gp.PrimitiveTree(nodes)).infix, "paper").tree
        except (ExprError, ValueError, TypeError, RecursionError):
            simple = None
        if simple is not None and len(simple) < len(nodes) and simple.height <= self.max_height:
            s_nodes, s_fit = self._refit(list(simple))
            if self._penalised(s_nodes, s_fit) >= self._penalised(nodes, fit):
                nodes, fit = s_nodes, s_fit
        improved = True
        while improved:
            improved = False
            tree = gp.PrimitiveTree(nodes)
            base = self._penalised(nodes, fit)
            for i in range(len(tree)):
                if tree[i].arity == 0:
                    continue
                span = tree.searchSubtree(i)
                options, j = [], i + 1
                for _ in range(tree[i].arity):
                    child = tree.searchSubtree(j)
                    options.append(nodes[child])
                    j = child.stop
                options.append([P.constant_terminal(1.0, PS)])
                for opt in options:
                    c_nodes, c_fit = self._refit(nodes[:span.start] + opt + nodes[span.stop:])
                    if self._penalised(c_nodes, c_fit) > base + 1e-9:
                        nodes, fit, improved = c_nodes, c_fit, True
                        break
                if improved:
                    break
        return nodes, fit
