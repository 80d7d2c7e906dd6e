"""Ask/tell: the search hands out candidates and takes their scores from your own scheduler.

::

    s = gp_search.Search(dict(population=16, generations=4))
    while not s.done:
        cands = s.ask()
        s.tell(cands, [score(c) for c in cands])   # SLURM array, Ray, a process pool, a notebook
    s.run.best                                     # the finished run, as gp_search.search gives it

The search itself is the one ``gp-search run`` runs (:func:`gp_search.engine.runner.run_search`),
in a worker thread of this process, with an evaluator that hands each batch of objective calls
to :meth:`Search.ask` and waits until :meth:`Search.tell` has delivered every score. So the
run directory, its checkpoints, the cache, dedup, halving and the hall of fame are the engine's
own, and given the same scores ask/tell and ``gp_search.search(config, objective=fn)`` end with
the same hall of fame. Its config's ``objective`` is :data:`gp_search.engine.objective.ASK_TELL`;
a killed run continues with ``Search(resume=RUN_DIR)`` (what was told before its last finished
batch is in its cache and is not asked again).

A score is what an objective would return (a number in [0, 1], or a dict of metrics with
``objective_metric``); a failure is an exception object (status ``error`` with its message), a
status name (``"timeout"``, ``"nan"``, ``"diverged"``, ``"error"``) or a ``(status, message)``
pair. While the search is open, this process's torch runs with one intra-op thread (as every
search does); set ``torch.set_num_threads`` in your scoring code if it trains here on the CPU.
Stop signals stay the main thread's (the engine installs none in its thread): call
:meth:`Search.close` (or use ``with``) to stop early; the run is checkpointed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from gp_search.engine import rundir as store
from gp_search.lang import Loss
from gp_search.core import Status
from gp_search.proxies import STATUSES, EvalResult
from gp_search.engine import objective
from gp_search.engine.config import SearchConfig, build
from gp_search.engine.user_tasks import config_fields


@dataclass(frozen=True)
class Candidate:
    """One call of your objective that the search asks for.

    Attributes:
        id: unique within this :class:`Search`; :meth:`Search.tell` matches scores by it.
        loss: the torch callable ``(logits, target) -> scalar`` to train with.
        seed: the training seed (drawn before dispatch; the same for every candidate).
        budget: the fraction of your full training to run (1.0, or ``1/eta``-ish under
            successive halving).
        expression: the loss as text (``"ce"`` for the reference of a delta fitness).
    """

    id: str
    loss: Loss
    seed: int
    budget: float
    expression: str


class AskTellSearch:
    """A search whose objective scores you compute yourself: :meth:`ask`, train, :meth:`tell`.

    Args:
        config: a :class:`SearchConfig`, a dict of its fields, a preset name, or None; only
            your objective is scored unless it names ``proxies`` (or ``tasks``).
        resume: the run directory of an ask/tell run to continue instead (no ``config``).
        quiet: no progress lines.
        **overrides: config fields, e.g. ``population=8, generations=2``.

    Attributes:
        path: the run directory.
        config: the run's :class:`SearchConfig`.

    Raises:
        ValueError: a bad config, or ``resume`` of a run that is not an ask/tell run.
        gp_search.engine.rundir.RunFileError: ``resume`` of a damaged run directory.
    """

    finish = None
    """What the run does after its search (:class:`gp_search.engine.runner.Finish`; None: the
    engine's default); :class:`gp_search.Search` sets the transfer stage."""

    def __init__(self, config: SearchConfig | dict | str | None = None, *,
                 resume: str | Path | None = None, quiet: bool = True, **overrides):
        from gp_search.engine import runner

        if resume is not None:
            if config is not None or overrides:
                raise ValueError("Search(resume=RUN_DIR) takes the run's own config; give no "
                                 "config or overrides")
            self.path = Path(resume)
            self.config = store.load_run(self.path).config
            if self.config.objective != objective.ASK_TELL:
                raise ValueError(f"{self.path} is not an ask/tell run (its objective is "
                                 f"{self.config.objective or 'none'!r}); continue it with "
                                 f"`gp-search resume {self.path}`")
            target = partial(runner.resume, self.path, quiet, evaluator=self._evaluate,
                             finish=self.finish)
        else:
            data = config_fields(config, overrides)
            data["objective"] = objective.ASK_TELL
            data.setdefault("proxies", [])
            self.config = build(config if isinstance(config, str) else None, None, **data)
            self.path = store.new_run_dir(self.config.out, self.config)
            target = partial(runner.run_search, self.config, quiet, evaluator=self._evaluate,
                             run_dir=self.path, finish=self.finish)
        self._others = None  # the evaluator of the config's proxies and tasks, made when needed
        self._quiet = quiet
        self._cond = threading.Condition()
        self._batch: dict | None = None  # id -> (position, Candidate, units) of the open batch
        self._told: dict[str, EvalResult] = {}
        self._count = 0
        self._finished = self._closed = False
        self._error: BaseException | None = None
        self._run: store.Run | None = None
        self._thread = threading.Thread(target=self._main, args=(target,), daemon=True,
                                        name="gp-search ask/tell")
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._batch is not None or self._finished)
        self._raise()

    # -- what you call --
    @property
    def done(self) -> bool:
        """Whether the search has finished (then :attr:`run` is the finished run)."""
        with self._cond:
            return self._finished

    @property
    def run(self) -> store.Run:
        """The finished run (:class:`gp_search.engine.rundir.Run`), as ``gp_search.search``
        returns it."""
        with self._cond:
            self._raise()
            if self._closed and self._run is None:
                raise RuntimeError(f"the search was closed before the end; continue it with "
                                   f"gp_search.Search(resume={str(self.path)!r})")
            if self._run is None:
                raise RuntimeError("the search is not done yet: ask() and tell() until .done")
            return self._run

    def ask(self) -> list[Candidate]:
        """The candidates of the open batch not told yet (empty once the search is done)."""
        with self._cond:
            self._cond.wait_for(lambda: self._batch is not None or self._finished)
            self._raise()
            if self._batch is None:
                return []
            return [c for cid, (_, c, _) in self._batch.items() if cid not in self._told]

    def tell(self, candidates, scores) -> None:
        """Deliver scores, in any order and any number at a time; when the batch is complete,
        wait until the search has asked for the next one (or finished).

        Args:
            candidates: :class:`Candidate` objects (or their ids) of the open batch.
            scores: one per candidate: a number in [0, 1], a dict of metrics, or a failure (an
                exception object, a status name, or a ``(status, message)`` pair).

        Raises:
            ValueError: a candidate not in the open batch, or told twice; nothing is taken.
            Exception: whatever stopped the search, as it was raised in its thread.
        """
        candidates, scores = list(candidates), list(scores)
        if len(candidates) != len(scores):
            raise ValueError(f"tell got {len(candidates)} candidates and {len(scores)} scores; "
                             f"give one score per candidate")
        with self._cond:
            self._raise()
            batch = self._batch
            ids = [c.id if isinstance(c, Candidate) else str(c) for c in candidates]
            for cid in ids:
                if batch is None or cid not in batch:
                    raise ValueError(f"candidate {cid!r} is not in the open batch; tell the "
                                     f"candidates the last ask() returned")
                if cid in self._told or ids.count(cid) > 1:
                    raise ValueError(f"candidate {cid!r} was told twice")
            for cid, value in zip(ids, scores):
                _, cand, units = batch[cid]
                self._told[cid] = _result(value, cand, units, self.config.objective_metric)
            if len(self._told) < len(batch):
                return
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._batch is not None and self._batch is not batch
                                or self._finished)
            self._raise()

    def close(self) -> None:
        """Stop a search that is not done (checkpointed; ``Search(resume=path)`` continues it)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def __enter__(self) -> "Search":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the engine's side (its thread) --
    def _main(self, target) -> None:
        run, error = None, None
        try:
            target()
            run = store.load_run(self.path)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of ask/tell
            error = exc
        with self._cond:
            self._finished, self._run = True, run
            self._error = None if self._closed else error
            self._cond.notify_all()

    def _evaluate(self, texts: list[str], proxy: str, seeds: list[int], steps: int
                  ) -> list[EvalResult]:
        """The scorer's evaluator: the objective's calls go to ask/tell, the rest to the
        config's proxies and tasks."""
        if proxy != objective.NAME:
            if self._others is None:
                from gp_search.engine.runner import default_evaluator

                self._others = default_evaluator(self.config, not self._quiet)
            return self._others(texts, proxy, seeds, steps)
        results: list = []
        batch: dict = {}
        for text in texts:
            loss = objective.load_loss(text)
            for seed in seeds:
                if isinstance(loss, Loss):
                    self._count += 1
                    cid = f"c{self._count}"
                    batch[cid] = (len(results), Candidate(cid, loss, seed, steps / objective.FULL,
                                                          text), steps)
                results.append(replace(loss, seed=seed, budget=steps)
                               if isinstance(loss, EvalResult) else None)
        if not batch:
            return results
        # Your code runs between ask and tell and may draw from Python's global random, which
        # the evolution draws from too: the engine's state is put back before it goes on.
        state = random.getstate()
        with self._cond:
            self._batch, self._told = batch, {}
            self._cond.notify_all()
            self._cond.wait_for(lambda: len(self._told) == len(batch) or self._closed)
            if self._closed:
                raise KeyboardInterrupt("Search.close()")
            for cid, (i, _, _) in batch.items():
                results[i] = self._told[cid]
            self._batch = None
        random.setstate(state)
        return results

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


def _result(value, cand: Candidate, units: int, metric: str) -> EvalResult:
    """A told score as the scorer's result (failures as their status)."""
    where = dict(loss=cand.expression, proxy=objective.NAME, seed=cand.seed, budget=units)
    if isinstance(value, BaseException):
        return EvalResult(Status.ERROR, message=f"{type(value).__name__}: {value}"[:500], **where)
    status, message = value if isinstance(value, tuple) and len(value) == 2 else (value, "")
    if isinstance(status, str) and status in STATUSES and status != Status.OK:
        return EvalResult(status, message=str(message) or f"told {status}", **where)
    return objective.outcome(value, metric, cand.expression, cand.seed, units)
