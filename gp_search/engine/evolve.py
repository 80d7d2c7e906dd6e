"""The generation loop: DEAP evolution of loss trees, hall of fame, checkpoints, resume.

Read :meth:`Search.run` as its own pseudocode::

    population = initialise()            # ramped half-and-half, redrawn until scorer.accept
    score(population)                    # ScorerProtocol.score, then .rewrite (Lamarckian)
    for generation in 1..G:
        hooks.before_generation(generation)
        elite     = selBest(population, elitism)   # by penalised fitness
        offspring = varAnd(select(population))      # tournament; crossover; one of 4 mutations
        offspring = repair(offspring)               # re-mutate rejected offspring and clones
        score(offspring)
        population = elite + offspring
        hall_of_fame.update(population)
        hooks.after_generation(record)   # the log, the checkpoint, the progress line
    hooks.end_of_run(reason)             # generations done, time budget spent, or stop() asked

With ``cfg.strategy == "random"`` (the random-search baseline) the offspring are not bred:
each generation's ``population - elitism`` newcomers are drawn fresh from the initialiser,
exactly as generation 0's are, and pass the same scoring, dedup, cache and halving; elitism and
the hall of fame are as in GP. GP against it at an equal number of trainings says whether the
selection and variation earn their keep (``benchmarks/bench_strategy.py``).

All randomness comes from Python's ``random`` (seeded from ``cfg.seed`` and checkpointed), and
the training seeds are drawn from it once, before anything is dispatched, so the hall of fame
does not depend on the number of workers, and a resumed run ends where an unbroken one would.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from deap import algorithms, tools

from gp_search.engine import diversity
from gp_search.engine.hall_of_fame import HallOfFame
from gp_search.engine import variation as ops
from gp_search.engine.surrogate import Surrogate
from gp_search.engine.tune_constants import tune_in_loop
from gp_search.engine.config import SearchConfig
from gp_search.lang import ExprError, LossExpr, parse
from gp_search.engine.score import Score, ScorerProtocol
from gp_search.engine.cache import Cache
from gp_search.engine.rundir import random_state_to_json

INIT_DRAWS = 200
"""Initial trees are redrawn until the scorer accepts one, at most this many draws each."""
HARD_INIT_DRAWS = 2000
"""The same with ``screen_hard_examples`` (about 1 in 300 of the quick preset's initial trees
passes every check, 1 in 60 the checks without it)."""

CLEARED = 1e9
"""Minus the fitness selection sees for a cleared individual (below any real one)."""

Hook = Callable[[dict], None]
"""A subscriber: called with the event's record (a JSON-ready dict)."""


@dataclass
class Hooks:
    """The loop's named events and their subscribers, called in list order (EvoTorch style).

    Attributes:
        before_generation: ``{"generation": g}`` before generation ``g >= 1`` is bred (not
            for generation 0, the initial population, nor once the time budget is spent).
        after_generation: the generation's record (the line of ``generations.jsonl``) after
            generation ``g >= 0`` is scored and the hall of fame updated; the run's state
            (:meth:`Search.state`) is that generation's.
        end_of_run: ``{"generation": g, "reason": r}`` when the loop ends normally, ``r`` one
            of ``"generations"`` (all done), ``"time_budget"`` (spent before generation
            ``g + 1``), ``"stopped"`` (:meth:`Search.stop`). Not called when interrupted.
    """

    before_generation: list[Hook] = field(default_factory=list)
    after_generation: list[Hook] = field(default_factory=list)
    end_of_run: list[Hook] = field(default_factory=list)


def _call(hooks: list[Hook], record: dict) -> None:
    for hook in hooks:
        hook(record)


class Search:
    """One search run in a run directory (new or resumed).

    Args:
        cfg: the run's configuration.
        run_dir: where the run's files live (the hooks write them; ``Search`` itself does not).
        scorer: turns trees into scores (:class:`ScorerProtocol`).
        cache: the run's training cache (closed by the caller), or None.
        hooks: subscribers to the loop's events; more can be added to ``search.hooks``.
    """

    def __init__(self, cfg: SearchConfig, run_dir: Path, scorer: ScorerProtocol,
                 cache: Cache | None, hooks: Hooks | None = None):
        self.cfg, self.run_dir, self.scorer, self.cache = cfg, Path(run_dir), scorer, cache
        self.hooks = hooks if hooks is not None else Hooks()
        self.tb = ops.toolbox(cfg)
        self.hof = HallOfFame(cfg.hall_of_fame, radius=cfg.niche_radius,
                              hard_examples=cfg.hard_examples)
        self.surrogate = Surrogate() if cfg.surrogate > 1 else None
        self.tuned: set[str] = set()  # canonical forms whose constants were tuned in the loop
        self.population: list = []
        self.generation = -1
        self.elapsed = 0.0
        self.finished = False
        self.stop_requested = False

    def stop(self) -> None:
        """Ask the loop to end after the current generation (e.g. from a hook: target reached)."""
        self.stop_requested = True

    # -- individuals --
    def _expr(self, ind) -> LossExpr:
        return LossExpr(ind, self.cfg.primitive_set)

    def _repair(self, offspring: list, parents: list, elite: list) -> list:
        """Re-vary offspring that fail screening or copy a tree already in the new population:
        mutate a fresh copy of the same parent, up to ``cfg.repair_tries`` times, so rejected
        trees and clones do not crowd out trainable, new ones (copies of good trees survive
        through elitism and selection anyway)."""
        taken = {str(i) for i in elite}
        for i, ind in enumerate(offspring):
            for _ in range(self.cfg.repair_tries):
                if str(ind) not in taken and self._usable(ind):
                    break
                (ind,) = self.tb.mutate(self.tb.clone(parents[i]))
                del ind.fitness.values
            taken.add(str(ind))
            offspring[i] = ind
        return offspring

    def _usable(self, ind) -> bool:
        try:
            return self.scorer.accept(self._expr(ind))
        except ExprError:
            return False

    def _initial(self) -> list:
        pop = [ops.individual(seed_expr(text, self.cfg).tree) for text in self.cfg.seed_individuals]
        pop += self._draw(self.cfg.population - len(pop))
        return pop[: self.cfg.population]

    def _draw(self, n: int) -> list:
        """``n`` trees from the initialiser (ramped half-and-half), each redrawn until the scorer
        accepts it, at most ``INIT_DRAWS`` times (``HARD_INIT_DRAWS`` when the hard-examples
        check screens; then the last draw is kept, as it is)."""
        pop = []
        draws = HARD_INIT_DRAWS if self.cfg.screen_hard_examples else INIT_DRAWS
        for _ in range(max(n, 0)):
            for _ in range(draws):
                ind = self.tb.init()
                try:
                    if self.scorer.accept(self._expr(ind)):
                        break
                except ExprError:
                    continue
            pop.append(ind)
        return pop

    def _breed(self, elite: list) -> list:
        """The generation's newcomers: bred from the population (GP), or drawn fresh from the
        initialiser (``strategy="random"``: no selection, no variation)."""
        n = self.cfg.population - self.cfg.elitism
        if self.cfg.strategy == "random":
            return self._draw(n)
        immigrants = round(self.cfg.immigrants * n)
        bred = n - immigrants
        parents = self.tb.select(self.population, bred * self.cfg.surrogate)
        offspring = algorithms.varAnd(parents, self.tb, self.cfg.crossover_prob,
                                      self.cfg.mutation_prob)
        for ind in offspring:  # an unvaried copy of a cleared parent: its own fitness back
            if ind.fitness.valid:
                ind.fitness.values = self._penalised(ind)
        offspring = self._repair(offspring, parents, elite)
        if self.surrogate is not None:  # train only the offspring predicted best
            keep = self.surrogate.choose([self._expr(i) for i in offspring], bred)
            offspring = [offspring[i] for i in keep]
        return offspring + self._draw(immigrants)

    def _penalised(self, ind) -> tuple[float]:
        """Selection's fitness: the raw score minus ``parsimony`` per node (gplearn's habit:
        the raw score stays in ``ind.score``, the hall of fame ranks on it)."""
        return (ind.score.fitness - self.cfg.parsimony * len(ind),)

    def _clear(self) -> None:
        """Clearing (:func:`gp_search.engine.diversity.clearing`): selection sees an individual
        within ``niche_radius`` of a better one at a fitness below any, elitism included; the
        population's own fitness comes back after breeding (:meth:`_breed`, :meth:`_penalised`)."""
        pop = self.population
        cleared = diversity.clearing([self._expr(i) for i in pop],
                                     [i.fitness.values[0] for i in pop], self.cfg.niche_radius)
        for ind, c in zip(pop, cleared):
            if c:
                ind.fitness.values = (-CLEARED,)

    def _tune(self) -> None:
        """``constants_in_loop``: tune the hall of fame's best (:func:`tune_in_loop`); an
        improved tree replaces the population's worst (ties: the last)."""
        if not (self.cfg.constants_in_loop and self.cfg.strategy == "gp"):
            return
        ind = tune_in_loop(self, self.cfg.constants_in_loop)
        if ind is not None:
            ind.fitness.values = self._penalised(ind)
            pop = self.population
            pop[min(range(len(pop)), key=lambda i: (pop[i].fitness.values[0], -i))] = ind

    def _score(self, pop: list) -> dict:
        """Score individuals without a valid fitness; returns the route counts and seconds."""
        exprs = [self._expr(ind) for ind in pop]
        t0 = time.perf_counter()
        scores, counts = self.scorer.score(exprs)
        # Lamarckian: a scorer that fits constants or simplifies trees returns the tree each
        # score belongs to (None: unchanged); the individual takes it over before the hall of
        # fame records it, so offspring inherit the fitted constants.
        for i, tree in enumerate(self.scorer.rewrite(exprs)):
            if tree is not None:
                pop[i][0:len(pop[i])] = tree
                exprs[i] = self._expr(pop[i])
        counts["seconds_scoring"] = time.perf_counter() - t0
        for ind, expr, s in zip(pop, exprs, scores):
            ind.score = s
            ind.fitness.values = self._penalised(ind)
            if self.surrogate is not None and s.fidelity != "none":
                self.surrogate.add(expr, s.fitness)
        self.hof.update(exprs, scores)
        return counts

    # -- the loop --
    def run(self) -> HallOfFame:
        """Run (or continue) to ``cfg.generations``; returns the hall of fame.

        Raises:
            KeyboardInterrupt: after the last finished generation is checkpointed.
        """
        start = time.perf_counter() - self.elapsed
        if self.generation < 0:
            self.population = self._initial()
            counts = self._score(self.population)
            self._tune()
            self._finish_generation(0, counts, start, 0.0)
        reason = "generations"
        while self.generation < self.cfg.generations:
            if self.stop_requested:
                reason = "stopped"
                break
            if self.cfg.time_budget and time.perf_counter() - start > self.cfg.time_budget:
                reason = "time_budget"
                break
            _call(self.hooks.before_generation, {"generation": self.generation + 1})
            t0 = time.perf_counter()
            if self.cfg.strategy == "gp" and self.cfg.niche_radius > 0:
                self._clear()
            # selBest sorts stably, best first: ties keep population order, as before.
            elite = [self.tb.clone(i) for i in tools.selBest(self.population, self.cfg.elitism)]
            for ind in elite:  # fewer niches than elites: a cleared one keeps its own fitness
                ind.fitness.values = self._penalised(ind)
            offspring = self._breed(elite)
            vary_seconds = time.perf_counter() - t0
            counts = self._score([i for i in offspring if not i.fitness.valid])
            self.population = elite + offspring
            self._tune()
            self._finish_generation(self.generation + 1, counts, start, vary_seconds)
        if self.stop_requested and reason == "generations":
            reason = "stopped"  # asked during the last generation
        self.finished = True
        _call(self.hooks.end_of_run, {"generation": self.generation, "reason": reason})
        return self.hof

    def _finish_generation(self, gen: int, counts: dict, start: float, vary_seconds: float) -> None:
        self.generation = gen
        self.elapsed = time.perf_counter() - start
        raw = [i.score.fitness for i in self.population]
        top = self.hof.entries[0] if self.hof.entries else {}
        # "best" is the population's raw best, short and raced fitnesses included (kept so that
        # old readers read it); "hof_best" is the hall of fame's, full budget only.
        record = {"generation": gen, "best": max(raw), "median": statistics.median(raw),
                  "best_canonical": top.get("canonical"), "hof_best": top.get("fitness"),
                  **{k: counts.get(k, 0) for k in ("rejected", "duplicate", "cached", "trained",
                                                    "short")},
                  "seconds_vary": round(vary_seconds, 4),
                  "seconds_scoring": round(counts.get("seconds_scoring", 0.0), 4),
                  "seconds_training": round(counts.get("seconds_training", 0.0), 4),
                  "seconds": round(self.elapsed, 3)}
        _call(self.hooks.after_generation, record)

    # -- checkpoint state --
    def state(self) -> dict:
        return {"generation": self.generation, "elapsed": self.elapsed,
                "population": [{"prefix": str(i), "fitness": i.score.fitness}
                               for i in self.population],
                "scores": [i.score.to_json() for i in self.population],
                "random_state": random_state_to_json(random.getstate()), "hall_of_fame": self.hof.entries,
                "scorer": self.scorer.state(), "finished": self.finished,
                **({"surrogate": self.surrogate.state()} if self.surrogate is not None else {}),
                **({"tuned": sorted(self.tuned)} if self.tuned else {})}

    def restore(self, state: dict) -> None:
        """Continue from a checkpoint read by :func:`gp_search.engine.rundir.read_checkpoint`."""
        self.generation = state["generation"]
        self.elapsed = float(state["elapsed"])
        self.population = []
        scores = state.get("scores") or [None] * len(state["population"])
        for item, sc in zip(state["population"], scores):
            ind = ops.individual(parse(item["prefix"], self.cfg.primitive_set,
                                       self.cfg.const_range).tree)
            score = Score(**sc) if sc else Score(float(item["fitness"]))
            ind.score = score
            ind.fitness.values = self._penalised(ind)
            self.population.append(ind)
        self.hof = HallOfFame(self.cfg.hall_of_fame, state["hall_of_fame"],
                              self.cfg.niche_radius, self.cfg.hard_examples)
        self.scorer.restore(state.get("scorer", {}))
        self.tuned = set(state.get("tuned", []))
        if self.surrogate is not None:
            self.surrogate = Surrogate.restore(
                state.get("surrogate", []),
                lambda prefix, pset: parse(prefix, pset, self.cfg.const_range))
        self.finished = bool(state.get("finished"))
        random.setstate(state["random_state"])


def seed_expr(text: str, cfg: SearchConfig) -> LossExpr:
    """A reference loss name with an expression (``ngl``, ``mse``) or expression text."""
    from gp_search.lang import REFERENCE

    ref = REFERENCE.get(text.strip().lower())
    if ref is not None:
        if ref.expr is None:
            raise ValueError(f"seed individual {text!r} is not an expression of the loss language; "
                             "use ngl, mse or an expression")
        text = ref.expr.prefix
    return parse(text, cfg.primitive_set, cfg.const_range)
