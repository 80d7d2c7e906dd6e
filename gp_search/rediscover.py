"""Targeted rediscovery of NGL: behavioural-distance fitness and the harness that reports success.

The engine's one generation loop (:class:`evolve.Search`, the DEAP operators of
:mod:`gp_search.operators`) evolves random trees over the ``paper`` primitive set — nothing about
NGL in the operators, the constants or the start — with a :class:`BehaviourScorer` in place of
proxy training. Fitness is the behavioural distance to NGL of :mod:`gp_search.target_fit`:
relative errors of the loss values and of ``∂f/∂p`` on fixed probes (a grid of ``p`` for
``t = 0, 1`` and the elements of softmax rows, K = 10), after removing what cannot change
training (``a·f + b + c·p + d·t``, a > 0), as ``−log10 D`` (digits of agreement).

Levers (all generic; :class:`RediscoveryConfig` switches each):

* **linear scaling of additive terms** — each top-level term of the tree gets its own
  least-squares weight; the loss an individual proposes is ``Σ wᵢ·termᵢ`` (:func:`materialise`);
* **Lamarckian constant fitting** — a few Levenberg–Marquardt steps on a new tree's constants,
  written back into the tree (the ``rewrite`` hook of ``Search``), so lineages keep refining;
* **folding** of variable-free subtrees into single, fittable constants;
* **parsimony** — selection on ``digits − parsimony·size``;
* **polishing** of every new best: SymPy's canonical form when smaller, then greedy pruning.

Success levels: *behavioural* — max relative gradient error ``E ≤ 1e-2`` over the probes (and,
when ``confirm`` is on, ``mnist1d-cnn`` accuracy within NGL's 95 % CI); *exact* — the same
normal form as NGL (:func:`is_exact`), constants within 1e-3 relative.
"""

from __future__ import annotations

import json
import math
import random
import re
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import sympy
from deap import gp

from gp_search import operators as ops
from gp_search import primitives as P
from gp_search import store
from gp_search.config import SearchConfig
from gp_search.evolve import Search
from gp_search.expr import ExprError, LossExpr, parse
from gp_search.losses import NGL
from gp_search.scoring import Score
from gp_search.target_fit import Fit, Library, Target, constant_slots, terms


def _f(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class RediscoveryConfig:
    """One targeted-rediscovery run. Every number is our choice (the paper published none)."""

    seed: int = _f(0, "seed of Python's random, which drives the whole search")
    population: int = _f(500, "individuals per generation (the floor allows up to 1000)")
    generations: int = _f(300, "generations after generation 0")
    time_budget: float = _f(540.0, "stop after the generation that passes this many seconds "
                                   "(the floor is 10 minutes a seed; 0: none)")
    fit_steps: int = _f(4, "Levenberg-Marquardt steps on the constants of each new tree "
                           "(Lamarckian: written back, so a lineage keeps refining)")
    polish: bool = _f(True, "prune and simplify every tree that beats the best so far")
    term_weights: bool = _f(True, "fit one least-squares weight per top-level additive term "
                                  "(linear scaling of additive terms) instead of one scale")
    library_size: int = _f(4, "with term weights: try adding the best constant-free tree of at "
                              "most this many nodes as a new term to every new tree (0: off)")
    parsimony: float = _f(0.02, "selection fitness = digits of agreement - parsimony * size")
    tournament_size: int = _f(5, "tournament selection size")
    crossover_prob: float = _f(0.8, "probability that a pair of offspring is crossed over")
    mutation_prob: float = _f(0.3, "probability that an offspring is mutated")
    elitism: int = _f(5, "best individuals (by penalised fitness) copied unchanged")
    init_max_depth: int = _f(4, "ramped half-and-half: largest initial depth (smallest: 1)")
    max_height: int = _f(8, "static limit on tree height")
    max_size: int = _f(30, "static limit on tree size (nodes)")
    behavioural_tol: float = _f(1e-2, "behavioural success: max relative gradient error")
    exact_rtol: float = _f(1e-3, "exact success: relative tolerance on every constant")
    confirm: bool = _f(False, "confirm a behavioural success on mnist1d-cnn (5 seeds, needs "
                              "gp_search.evaluate)")
    out: str = _f("results/runs", "parent directory of run directories")

    def __post_init__(self):
        rules = [("population", 2 <= self.population <= 1000, "must be in 2..1000"),
                 ("generations", self.generations >= 0, "must be >= 0"),
                 ("time_budget", self.time_budget >= 0, "must be >= 0 (0: none)"),
                 ("fit_steps", 0 <= self.fit_steps <= 100, "must be in 0..100"),
                 ("parsimony", self.parsimony >= 0, "must be >= 0"),
                 ("behavioural_tol", self.behavioural_tol > 0, "must be > 0"),
                 ("exact_rtol", self.exact_rtol > 0, "must be > 0")]
        for name, ok, rule in rules:
            if not ok:
                raise ValueError(f"rediscovery field {name!r} {rule}; got {getattr(self, name)!r}")

    def search_config(self) -> SearchConfig:
        """The engine's config: paper primitive set, no seeds, nothing NGL-specific."""
        return SearchConfig(
            population=self.population, generations=self.generations, primitive_set="paper",
            init_min_depth=1, init_max_depth=self.init_max_depth, max_height=self.max_height,
            max_size=self.max_size, tournament_size=self.tournament_size,
            crossover_prob=self.crossover_prob, mutation_prob=self.mutation_prob,
            elitism=self.elitism, parsimony=self.parsimony, const_range=P.DEFAULT_CONST_RANGE,
            hall_of_fame=3, seed=self.seed, time_budget=self.time_budget, jobs=1,
            backend="sequential", out=self.out, seed_individuals=(), preset="reproduce-ngl")

    def to_dict(self) -> dict:
        return asdict(self)


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
    first term without constants of its own keeps a coefficient of ±1 (else the first term), and
    terms of weight 0 are left out. Coefficients of exactly ±1 need no ``mul`` node.
    """
    if not term_weights or len(fit.weights) != len(terms(tree)):
        return LossExpr(gp.PrimitiveTree(tree))
    parts = [list(tree[s]) for s in terms(tree)]
    live = [i for i, w in enumerate(fit.weights) if w != 0]
    if not live:
        return LossExpr(gp.PrimitiveTree(tree))
    ref = next((i for i in live if not constant_slots(parts[i])), live[0])
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
    """Fitness = digits of agreement with a target's behaviour; duck-types :class:`scoring.Scorer`.

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

    # -- the duck-typed interface of scoring.Scorer --
    def state(self) -> dict:
        return {"evaluations": self.evaluations, "polishes": self.polishes, "best": self.best,
                "extensions": self.extensions}

    def restore(self, state: dict) -> None:
        self.evaluations = int(state.get("evaluations", 0))
        self.polishes = int(state.get("polishes", 0))
        self.best = float(state.get("best", -math.inf))

    def accept_initial(self, expr: LossExpr) -> bool:
        """A starting tree must use both variables and be finite on the probes (the cheap part
        of the project's screening; no training, and nothing about the target)."""
        names = {n.value for n in expr.tree if not isinstance(n, gp.Primitive)}
        return {P.PRED, P.REAL} <= names and math.isfinite(
            self.target.distance(expr.tree).max_grad_error)

    def score(self, exprs: list[LossExpr]) -> tuple[list[Score], dict]:
        """Score candidates; :meth:`rewrite` then gives the trees the scores belong to."""
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

    def rewrite(self, exprs: list[LossExpr]) -> list:
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

    def extend(self, nodes: list, fit: Fit, tries: int = 1) -> tuple[list, Fit]:
        """Add the library's best new term when that pays for its nodes (Lamarckian).

        Returns:
            ``(nodes, fit)``, extended or as given.
        """
        got = self.library.best_extension(nodes, fit)
        if got is None:
            return nodes, fit
        extra, est = got
        size = len(nodes) + len(extra) + 1
        if size > self.max_size or \
                -math.log10(max(est, 1e-10)) - self.parsimony * size <= self._penalised(nodes, fit):
            return nodes, fit
        c_nodes, c_fit = self._refit([PS.mapping["add"]] + nodes + extra, steps=2)
        if self._penalised(c_nodes, c_fit) > self._penalised(nodes, fit):
            self.extensions += 1
            return c_nodes, c_fit
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


# --- success levels ------------------------------------------------------------------------------

_FLOAT = re.compile(r"(?<![\w.])\d+\.\d*(?:e[+-]?\d+)?|(?<![\w.])\d+e[+-]?\d+")


def normal_form(expr: LossExpr, rtol: float = 1e-3) -> tuple[str, tuple[float, ...]]:
    """A structure string and constants that do not depend on how the formula was written.

    SymPy's expansion (products over sums, ``exp(a + b) -> exp(a)·exp(b)``), numbers folded to
    floats, and every float within ``rtol`` (relative) of a non-zero integer snapped to it, so
    ``-0.9996·cos(…)`` reads as ``-cos(…)``. Floats print as ``C`` in the structure.

    Returns:
        ``(structure, constants in print order)``.
    """
    x = sympy.expand(expr.sympy)
    x = x.replace(lambda z: z.is_number and not z.is_Number, lambda z: sympy.Float(z.evalf()))
    snap = {}
    for f in x.atoms(sympy.Float):
        k = round(float(f))
        if k != 0 and abs(float(f) - k) <= rtol * abs(k):
            snap[f] = sympy.Integer(k)
    text = sympy.sstr(x.xreplace(snap), order="lex", full_prec=False)
    return _FLOAT.sub("C", text), tuple(float(m) for m in _FLOAT.findall(text))


def is_exact(expr: LossExpr, target: LossExpr = NGL, rtol: float = 1e-3) -> bool:
    """Exact rediscovery: the same normal-form structure and every constant within ``rtol``.

    Strict about everything else: ``2·NGL`` or ``NGL + 0.3·p`` train identically but are not
    exact.

    Example:
        >>> is_exact(parse("exp(2.4092 - y_pred - y_pred*y_real) - cos(cos(sin(y_pred)))"))
        True
    """
    try:
        s, c = normal_form(expr, rtol)
    except (ExprError, ValueError, TypeError, RecursionError):
        return False
    s_ref, c_ref = normal_form(target, rtol)
    return s == s_ref and len(c) == len(c_ref) and all(
        abs(a - b) <= rtol * abs(b) for a, b in zip(c, c_ref))


# --- the harness ---------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one seed found. ``level``: ``exact``, ``behavioural`` or ``none``; ``generation`` and
    ``seconds``: when that level was first reached (``None`` for ``none``); ``expression``: the
    exact / behavioural / closest expression (canonical form)."""

    seed: int
    level: str
    generation: int | None
    seconds: float | None
    expression: str
    max_grad_error: float
    distance: float
    size: int
    behavioural_generation: int | None = None
    behavioural_seconds: float | None = None
    exact_generation: int | None = None
    exact_seconds: float | None = None
    generations_run: int = 0
    seconds_total: float = 0.0
    evaluations: int = 0
    confirmed: bool | None = None
    confirmation: str = ""
    run_dir: str = ""

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}

    def line(self) -> str:
        """The one-line verdict the command prints."""
        if self.level == "exact":
            return (f"rediscovered (exact): {self.expression}  generation {self.generation}, "
                    f"{self.seconds:.1f} s")
        if self.level == "behavioural":
            return (f"rediscovered (behavioural): {self.expression}  (max relative gradient "
                    f"error {self.max_grad_error:.2e}) generation {self.generation}, "
                    f"{self.seconds:.1f} s")
        return (f"not rediscovered; closest: {self.expression}  (max relative gradient error "
                f"{self.max_grad_error:.2e}, distance {self.distance:.2e}) after "
                f"{self.generations_run} generations, {self.seconds_total:.1f} s")


_TARGETS: dict[bool, Target] = {}


def ngl_target(term_weights: bool = True) -> Target:
    """NGL on the probes (built once per process and weighting mode)."""
    if term_weights not in _TARGETS:
        _TARGETS[term_weights] = Target(NGL.tree, term_weights)
    return _TARGETS[term_weights]


class _Tracker:
    """The generation hook: finds the best trees, tests both success levels, logs, stops."""

    def __init__(self, search: Search, scorer: BehaviourScorer, rcfg: RediscoveryConfig,
                 quiet: bool):
        self.search, self.scorer, self.rcfg, self.quiet = search, scorer, rcfg, quiet
        self.behavioural: tuple | None = None  # (generation, seconds, prefix)
        self.exact: tuple | None = None
        self._exact_memo: dict[str, bool] = {}

    def proposed(self, prefix: str) -> LossExpr:
        """The loss an individual (by prefix text) proposes."""
        return materialise(_expr(prefix).tree, self.scorer.fit_of(prefix), self.rcfg.term_weights)

    def on_event(self, event: str, payload: dict) -> None:
        if event != "generation":
            return
        pop = sorted(self.search.population, key=lambda i: -i.fitness.values[0])
        fits = [(str(i), self.scorer.fit_of(str(i))) for i in pop]
        fits = [(k, f) for k, f in fits if f is not None]
        gen, secs = payload["generation"], payload["seconds"]
        good = [k for k, f in fits if f.max_grad_error <= self.rcfg.behavioural_tol]
        if good and self.behavioural is None:
            self.behavioural = (gen, secs, good[0])
        for key in dict.fromkeys(good[:3]):  # the best three by penalised fitness
            if key not in self._exact_memo:
                self._exact_memo[key] = is_exact(self.proposed(key), NGL, self.rcfg.exact_rtol)
            if self._exact_memo[key] and self.exact is None:
                self.exact = (gen, secs, key)
        best_key, best_fit = fits[0]
        record = {**payload, "best_distance": best_fit.distance,
                  "best_max_grad_error": _finite(best_fit.max_grad_error),
                  "best_size": len(pop[0]), "best_expression": self.proposed(best_key).canonical,
                  "behavioural": self.behavioural is not None, "exact": self.exact is not None,
                  "evaluations": self.scorer.evaluations, "polishes": self.scorer.polishes,
                  "extensions": self.scorer.extensions}
        store.append_generation(self.search.run_dir, record)
        if not self.quiet:
            print(f"gen {gen:>3}  D {best_fit.distance:.2e}  E {best_fit.max_grad_error:.2e}  "
                  f"size {len(pop[0]):>2}  {secs:6.1f}s  {record['best_expression']}", flush=True)
        if self.exact is not None:
            self.search.stop()


def _expr(prefix: str) -> LossExpr:
    return parse(prefix, "paper")


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def rediscover(rcfg: RediscoveryConfig, quiet: bool = False,
               run_dir: "str | Path | None" = None) -> Outcome:
    """Run one targeted rediscovery of NGL and report which level of success it reached.

    Writes ``config.json`` (the engine's :class:`SearchConfig`), ``rediscovery_config.json``,
    ``generations.jsonl`` (one line per generation, with the best distance, error and
    expression), ``hall_of_fame.csv`` and ``result.json`` into a new run directory.

    Args:
        rcfg: the run's settings.
        quiet: no per-generation lines (the verdict is still returned).
        run_dir: write here instead of a new directory under ``rcfg.out``.

    Returns:
        The :class:`Outcome`.
    """
    cfg = rcfg.search_config()
    run_dir = Path(run_dir) if run_dir else store.new_run_dir(rcfg.out, cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    store.write_atomic(run_dir / "config.json", cfg.to_json())
    store.write_atomic(run_dir / "rediscovery_config.json",
                       json.dumps(rcfg.to_dict(), indent=2, sort_keys=True))
    random.seed(rcfg.seed)
    target = ngl_target(rcfg.term_weights)
    library = Library(target, rcfg.library_size) if rcfg.term_weights and rcfg.library_size \
        else None
    scorer = BehaviourScorer(target, rcfg.fit_steps, rcfg.polish, rcfg.parsimony,
                             rcfg.max_height, library, rcfg.max_size)
    search = Search(cfg, run_dir, scorer, cache=None)
    tracker = _Tracker(search, scorer, rcfg, quiet)
    search.hooks.append(tracker.on_event)
    if not quiet:
        print(f"run directory: {run_dir}", flush=True)
    search.run()
    store.write_atomic(run_dir / "hall_of_fame.csv", store.hof_csv(search.hof.entries))
    out = _outcome(rcfg, search, scorer, tracker)
    out.run_dir = str(run_dir)
    if rcfg.confirm and out.level == "behavioural":
        out.confirmed, out.confirmation = confirm_on_proxy(tracker.proposed(tracker.behavioural[2]))
        if out.confirmed is False:
            out.level, out.generation, out.seconds = "none", None, None
    store.write_atomic(run_dir / "result.json", json.dumps(out.to_dict(), indent=2))
    return out


def _outcome(rcfg: RediscoveryConfig, search: Search, scorer: BehaviourScorer,
             tracker: _Tracker) -> Outcome:
    closest = search.hof.entries[0]["prefix"]
    common = dict(generations_run=search.generation, seconds_total=round(search.elapsed, 2),
                  evaluations=scorer.evaluations)
    if tracker.behavioural:
        common.update(behavioural_generation=tracker.behavioural[0],
                      behavioural_seconds=tracker.behavioural[1])
    if tracker.exact:
        common.update(exact_generation=tracker.exact[0], exact_seconds=tracker.exact[1])
        level, (gen, secs, key) = "exact", tracker.exact
    elif tracker.behavioural:
        level, (gen, secs, _) = "behavioural", tracker.behavioural
        # Report the closest tree found when it also passes, else the first one that passed.
        fit = scorer.fit_of(closest)
        key = closest if fit and fit.max_grad_error <= rcfg.behavioural_tol \
            else tracker.behavioural[2]
    else:
        level, gen, secs, key = "none", None, None, closest
    fit = scorer.fit_of(key)
    return Outcome(rcfg.seed, level, gen, secs, tracker.proposed(key).canonical,
                   fit.max_grad_error, fit.distance, len(_expr(key).tree), **common)


CONFIRM_PROXY, CONFIRM_SEEDS = "mnist1d-cnn", 5
T975 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 8: 2.365, 10: 2.262}
"""Two-sided 95 % Student-t quantiles by n (df = n − 1)."""


def confirm_on_proxy(expr: LossExpr, seeds: int = CONFIRM_SEEDS, jobs: int = 2) -> tuple:
    """Train the candidate and NGL on ``mnist1d-cnn`` with the same seeds; the candidate passes
    when its mean accuracy lies within NGL's 95 % CI (t interval, n = ``seeds``).

    Returns:
        ``(passed, message)``; ``passed`` is ``None`` when the trainer is not available.
    """
    try:
        from gp_search.evaluate import evaluate
    except ImportError as exc:
        return None, f"not confirmed: gp_search.evaluate is not available ({exc})"
    seed_list = list(range(seeds))
    results = evaluate([expr.infix, NGL.infix], proxy=CONFIRM_PROXY, seeds=seed_list, jobs=jobs)
    acc = [r.accuracy if r.status == "ok" else math.nan for r in results]
    cand, ref = acc[:seeds], acc[seeds:]
    mean = sum(ref) / seeds
    half = T975.get(seeds, 1.96) * statistics.stdev(ref) / math.sqrt(seeds)
    got = sum(cand) / seeds
    passed = bool(abs(got - mean) <= half)
    return passed, (f"{CONFIRM_PROXY}: candidate {got:.4f} vs NGL {mean:.4f} ± {half:.4f} "
                    f"(95 % CI, n = {seeds} seeds)")
