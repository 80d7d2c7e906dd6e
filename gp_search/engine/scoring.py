"""From candidate trees to fitness: reject, deduplicate, look up the cache, halve, train, aggregate.

The order spends trainings only where they can teach something:

1. **key** — the canonical form; a candidate already scored in this run reuses its score
   (``duplicate``); a constant that overflows is ``rejected``.
2. **screen** — :mod:`gp_search.engine.screen` (structural, numeric, behavioural): ``rejected``.
3. **fingerprint** — same behaviour on the probes as a candidate scored before (a positive scale,
   an additive constant or a multiple of ``sum(p) = 1`` apart): reuses its score (``duplicate``).
4. **cache** — results already in the SQLite cache for (key, proxy, seed, budget): ``cached``.
5. **successive halving** — when more than ``eta`` new candidates arrive together, all train
   for ``steps // eta`` steps; the best ``ceil(n / eta)`` are promoted to the full budget. The
   others keep their short-budget score (``fidelity = "short"``) and never enter the hall of
   fame. The decision ignores what the cache holds, so a cached run decides as a fresh one.
6. **train** — through the evaluator (joblib / Dask / in-process), seeds fixed for the run,
   one task after another in the order of the config's proxies.
7. **racing** (``race_top`` > 0, softmin only) — at the full budget, after each task but the
   last, a candidate that failed a training stops (its Score is what the whole run would give),
   and one whose bound ``delta_t + tau * log(1 / w_t)`` (softmin can be no higher, whatever the
   other tasks give) is below the ``race_top``-th best full-budget fitness so far stops with that
   bound as fitness, fidelity ``short`` (it cannot enter the hall of fame; counted as ``short``).
   The bar comes from the scores, not the cache, so cached and resumed runs race alike.

Fitness (``fitness_aggregate``; held-out accuracy on the validation part of each training split,
or on the test split: ``fitness_split``) is one of :data:`AGGREGATES`:

* ``weighted-mean-accuracy`` — the weighted mean over proxies of the mean accuracy over seeds
  (the original fitness; any failed training makes it :data:`WORST`, 0);
* ``mean`` — the weighted mean over tasks of the *delta*: the candidate's accuracy minus CE's,
  trained with the same :class:`ProxySpec`, seed and budget (paired), averaged over seeds;
* ``softmin`` — the soft minimum of the tasks' mean deltas at temperature ``tau``
  (``fitness_temperature``): ``-tau * log(sum_t w_t * exp(-delta_t / tau))``. It lies between
  the worst task's delta and the mean delta, within ``tau * log(1 / w_min)`` of the worst; CE
  itself scores 0, so a loss that loses more than ``tau * log(1 / w_min)`` (``tau * log K``
  with K equal weights: 0.032 for tau 0.02 and 5 tasks) to CE on *any single* task scores below
  CE, however much it wins elsewhere. The plain ``mean`` lets gains on some tasks buy a
  collapse on another; an ablation (tests/engine/test_suite.py) shows the two disagree.

With a delta aggregate a failed training makes the fitness :data:`WORST_DELTA` (-1, below any
delta). CE's trainings (the reference) run once per (task, seed, budget) and are kept in the
SQLite cache under :data:`REFERENCE_KEY`, like any candidate's; a resumed run reads them back.
Workers receive the canonical expression text (full-precision constants) and a seed.
"""

from __future__ import annotations

import math
import time

import numpy as np

from gp_search.lang import ExprError, LossExpr
from gp_search.engine.fitness import AGGREGATES, WORST, WORST_DELTA, aggregate, softmin_bound
from gp_search.engine.screen import Verdict, screen
from gp_search.engine.cache import Cache
from gp_search.engine.score import Evaluator, ProxyRef, Score
from gp_search.core import Aggregate, Fidelity, Route, Status

REFERENCE = "ce"
"""The loss every task's accuracy is compared with (delta aggregates)."""
REFERENCE_KEY = "<reference>ce"
"""Its cache key (not a canonical form: no candidate can share it)."""

class Scorer:
    """Scores candidates by proxy training for one run; remembers every canonical form and
    fingerprint it saw. Implements :class:`gp_search.engine.score.ScorerProtocol`."""

    def __init__(self, proxies: list[ProxyRef], seeds: list[int], cache: Cache,
                 evaluator: Evaluator, halving_eta: int = 3, successive_halving: bool = True,
                 dedup_fingerprint: bool = True, aggregate: str = "weighted-mean-accuracy",
                 temperature: float = 0.02, race_top: int = 0, screen_hard: bool = False):
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got "
                             f"{aggregate!r}")
        self.proxies, self.seeds, self.cache, self.evaluator = proxies, seeds, cache, evaluator
        self.eta, self.halving, self.dedup_fp = halving_eta, successive_halving, dedup_fingerprint
        self.how, self.temperature = aggregate, temperature
        self.worst = WORST if aggregate == Aggregate.WEIGHTED_MEAN_ACCURACY else WORST_DELTA
        self.reference: dict[tuple[str, int], list[float]] = {}  # (proxy key, budget) -> CE accs
        self.reference_trainings = 0
        if race_top and aggregate != Aggregate.SOFTMIN:
            raise ValueError(f"racing needs the softmin aggregate (its bound), got {aggregate!r}")
        self.race_top = race_top
        self.raced = 0  # candidates stopped by racing before their last task
        self.by_key: dict[str, Score] = {}
        self.by_fingerprint: dict[str, str] = {}
        self.full_trainings = 0
        self.short_trainings = 0
        # The same, counting cache hits too: what the run needs, whatever its cache holds
        # (benchmarks compare strategies at equal trainings over a shared cache; not checkpointed).
        self.full_needed = 0
        self.short_needed = 0
        self.seconds_training = 0.0
        self.verdicts: dict[str, Verdict] = {}  # screening memo (derivable, not checkpointed)
        self.screen_hard = screen_hard  # the hard-examples check as a rejection too

    def accept(self, expr: LossExpr) -> bool:
        """Would this candidate be trained (or reuse a trained score)? Screening, memoised."""
        try:
            key = expr.canonical
        except ExprError:
            return False
        known = self.by_key.get(key)
        if known is not None:
            return known.status != Status.REJECTED
        if key not in self.verdicts:
            self.verdicts[key] = screen(expr, hard=self.screen_hard)
        return self.verdicts[key].passed

    # -- persistence (checkpoint) --
    def state(self) -> dict:
        """Scores by canonical form, fingerprints and training counts (the screening memo is
        derivable and left out)."""
        return {"by_key": {k: s.to_json() for k, s in self.by_key.items()},
                "by_fingerprint": dict(self.by_fingerprint),
                "full_trainings": self.full_trainings, "short_trainings": self.short_trainings}

    def restore(self, state: dict) -> None:
        """Take back what :meth:`state` gave."""
        self.by_key = {k: Score(**v) for k, v in state.get("by_key", {}).items()}
        self.by_fingerprint = dict(state.get("by_fingerprint", {}))
        self.full_trainings = int(state.get("full_trainings", 0))
        self.short_trainings = int(state.get("short_trainings", 0))

    # -- scoring --
    def score(self, exprs: list[LossExpr], halving: bool = True) -> tuple[list[Score], dict]:
        """Score a batch of candidates (``halving=False``: every new one at full budget).

        Returns:
            One :class:`Score` per candidate, and counts by route: ``rejected``, ``duplicate``,
            ``cached`` (no training ran), ``trained`` (trained now, to the full budget), ``short``
            (trained now, halted by successive halving).
        """
        counts = {route: 0 for route in Route}
        train_start = self.seconds_training
        keys: list[str | None] = []
        fresh: dict[str, LossExpr] = {}  # canonical -> expr to score, in first-seen order
        aliases: dict[str, str] = {}  # canonical -> canonical of a behaviourally equal candidate
        for e in exprs:
            try:
                key = e.canonical
            except ExprError:  # a constant overflows: no key to remember
                keys.append(None)
                counts[Route.REJECTED] += 1
                continue
            keys.append(key)
            if key in self.by_key or key in fresh or key in aliases:
                counts[Route.DUPLICATE] += 1
                continue
            verdict = self.verdicts.pop(key, None) or screen(e, hard=self.screen_hard)
            if not verdict.passed:
                self.by_key[key] = Score(self.worst, status=Status.REJECTED, fidelity=Fidelity.NONE,
                                         message=f"{verdict.check}: {verdict.message}")
                counts[Route.REJECTED] += 1
                continue
            fp = e.fingerprint if self.dedup_fp else None
            if fp is not None and fp in self.by_fingerprint:
                aliases[key] = self.by_fingerprint[fp]  # scored before, or earlier in this batch
                counts[Route.DUPLICATE] += 1
                continue
            if fp is not None:
                self.by_fingerprint[fp] = key
            fresh[key] = e
        self._score_fresh(fresh, counts, halving and self.halving)
        for key, rep in aliases.items():
            self.by_key[key] = self.by_key[rep]
        counts["seconds_training"] = self.seconds_training - train_start
        rejected = Score(self.worst, status=Status.REJECTED, fidelity=Fidelity.NONE,
                         message="invalid expression")
        return [self.by_key[k] if k is not None else rejected for k in keys], counts

    def rewrite(self, exprs: list[LossExpr]) -> list[list | None]:
        """Training changes no tree: ``None`` for each candidate."""
        return [None] * len(exprs)

    def _score_fresh(self, fresh: dict[str, LossExpr], counts: dict, halving: bool) -> None:
        if not fresh:
            return
        texts = {k: e.infix for k, e in fresh.items()}
        # The halving decision looks at every new candidate, cached or not, so a result is the
        # same whatever the cache holds (a resumed or repeated run decides exactly as before).
        need = list(fresh)
        trained: set[str] = set()  # keys that ran at least one training now (not all cached)
        promoted = need
        full: dict[str, Score] = {}
        if halving and len(need) > self.eta:
            short = self._run(need, texts, Fidelity.SHORT, trained)
            order = sorted(need, key=lambda k: -short[k].fitness)  # stable: ties keep first-seen
            promoted = order[: math.ceil(len(need) / self.eta)]
            for k in need:
                if k not in promoted:
                    self.by_key[k] = short[k]
        if promoted:
            full.update(self._run(promoted, texts, Fidelity.FULL, trained))
        for k in fresh:
            if full.get(k) is not None:
                self.by_key[k] = full[k]
            route = Route.CACHED if k not in trained else (
                Route.TRAINED if self.by_key[k].fidelity == Fidelity.FULL else Route.SHORT)
            counts[route] += 1

    def _budget(self, proxy: ProxyRef, fidelity: str) -> int:
        return proxy.steps if fidelity == Fidelity.FULL else max(1, proxy.steps // self.eta)

    def _run(self, keys: list[str], texts: dict, fidelity: str, trained: set) -> dict[str, Score]:
        """Train ``keys`` task by task (in config order) at ``fidelity``; with racing, stop a
        candidate once it has failed a task or its soft-min bound is below the bar."""
        results: dict[str, dict] = {k: {} for k in keys}
        rows = []
        bar = self._race_bar() if fidelity == Fidelity.FULL else None
        alive, stopped = list(keys), {}
        bounds = dict.fromkeys(keys, math.inf)
        for p in self.proxies:
            budget = self._budget(p, fidelity)
            todo = [k for k in alive if any(self.cache.get(k, p.key, s, budget) is None
                                            for s in self.seeds)]
            trained.update(todo)
            t0 = time.perf_counter()
            out = self.evaluator([texts[k] for k in todo], p.name, list(self.seeds), budget) \
                if todo else []
            self.seconds_training += time.perf_counter() - t0
            if len(out) != len(todo) * len(self.seeds):
                raise RuntimeError(f"evaluator returned {len(out)} results for "
                                   f"{len(todo)} losses x {len(self.seeds)} seeds")
            it = iter(out)
            for k in alive:
                for s in self.seeds:
                    r = next(it) if k in todo else self.cache.get(k, p.key, s, budget)
                    results[k][(p.name, s)] = r
                    if k in todo:
                        rows.append((k, p.key, s, budget, r))
            if fidelity == Fidelity.FULL:
                self.full_trainings += len(todo) * len(self.seeds)
                self.full_needed += len(alive) * len(self.seeds)
            else:
                self.short_trainings += len(todo) * len(self.seeds)
                self.short_needed += len(alive) * len(self.seeds)
            if bar is not None and p is not self.proxies[-1]:
                self._race(p, budget, alive, results, bounds, bar, stopped)
        self.cache.put_many(rows)
        reference = None
        if self.how != Aggregate.WEIGHTED_MEAN_ACCURACY:
            reference = [self._reference(p, self._budget(p, fidelity)) for p in self.proxies]
        return {**{k: self._aggregate(results[k], fidelity, reference) for k in alive}, **stopped}

    def _race_bar(self) -> float | None:
        """The ``race_top``-th best full-budget fitness so far (None: racing off, or too few
        yet). From the scores alone, never the cache, so a cached or resumed run races alike."""
        if not self.race_top:
            return None
        best = sorted((s.fitness for s in self.by_key.values()
                       if s.status == Status.OK and s.fidelity == Fidelity.FULL), reverse=True)
        return best[self.race_top - 1] if len(best) >= self.race_top else None

    def _race(self, p: ProxyRef, budget: int, alive: list, results: dict, bounds: dict,
              bar: float, stopped: dict) -> None:
        """Drop from ``alive`` (into ``stopped``) the candidates that failed on task ``p`` or
        whose soft-min bound (:func:`gp_search.engine.fitness.softmin_bound`) fell below
        ``bar``: they could not enter the hall of fame whatever the other tasks give."""
        ref = np.array(self._reference(p, budget))
        for k in list(alive):
            got = [results[k][(p.name, s)] for s in self.seeds]
            bad = next((r for r in got if r.status != Status.OK), None)
            if bad is not None:  # the same Score as after every task: one failure decides it
                stopped[k] = Score(self.worst, 0.0, len(self.seeds), bad.status, Fidelity.FULL,
                                   bad.message)
            else:
                delta = float(np.mean([r.accuracy for r in got] - ref))
                bounds[k] = min(bounds[k], softmin_bound(delta, p.weight, self.temperature))
                if bounds[k] >= bar:
                    continue
                stopped[k] = Score(bounds[k], 0.0, len(self.seeds), Status.OK, Fidelity.SHORT,
                                   f"raced out after {p.name}: fitness at most {bounds[k]:.4f}, "
                                   f"below the hall of fame's {self.race_top}th {bar:.4f}")
            alive.remove(k)
            self.raced += 1

    def _reference(self, proxy: ProxyRef, budget: int) -> list[float]:
        """CE's accuracies on ``proxy`` at ``budget``, one per seed: from memory, else the cache,
        else trained now (once per task, seed and budget, whatever the run asks later)."""
        known = self.reference.get((proxy.key, budget))
        if known is not None:
            return known
        found = {s: self.cache.get(REFERENCE_KEY, proxy.key, s, budget) for s in self.seeds}
        todo = [s for s, r in found.items() if r is None]
        if todo:
            t0 = time.perf_counter()
            out = self.evaluator([REFERENCE], proxy.name, todo, budget)
            self.seconds_training += time.perf_counter() - t0
            if len(out) != len(todo):
                raise RuntimeError(f"evaluator returned {len(out)} results for CE x "
                                   f"{len(todo)} seeds")
            self.cache.put_many([(REFERENCE_KEY, proxy.key, s, budget, r)
                                 for s, r in zip(todo, out)])
            self.reference_trainings += len(todo)
            found.update(zip(todo, out))
        bad = next((r for r in found.values() if r.status != Status.OK), None)
        if bad is not None:  # the yardstick itself failed: no candidate can be scored on it
            raise RuntimeError(f"CE, the reference loss, failed on proxy {proxy.name!r} at "
                               f"{budget} steps ({bad.status}: {bad.message}); fix the task's "
                               f"budget or learning rate, or leave it out of the search")
        self.reference[(proxy.key, budget)] = [found[s].accuracy for s in self.seeds]
        return self.reference[(proxy.key, budget)]

    def _aggregate(self, results: dict, fidelity: str, reference: list | None) -> Score:
        bad = next((r for r in results.values() if r.status != Status.OK), None)
        if bad is not None:
            return Score(self.worst, 0.0, len(self.seeds), bad.status, fidelity, bad.message)
        fitness, std = aggregate(
            [[results[(p.name, s)].accuracy for s in self.seeds] for p in self.proxies],
            [p.weight for p in self.proxies], self.how, reference, self.temperature)
        return Score(fitness, std, len(self.seeds), Status.OK, fidelity)
