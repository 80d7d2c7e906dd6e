"""Tasks in worker processes that can be killed: a hard wall-clock limit for the loky and
sequential paths of a user objective.

A training of the toolkit checks its own clock after every step; a user's objective is a black
box that may never return, and a thread cannot be stopped. So each task runs in a process of
its own slot, a one-worker loky executor (:class:`joblib.externals.loky.ProcessPoolExecutor`):

* a task that runs past ``timeout`` seconds has its worker killed (``kill_workers=True``) and
  ``on_failure(task, "timeout", message)`` stands in for its result; the slot starts a fresh
  worker for the next task, and the other slots go on;
* a worker that dies under a task (a segfault, ``os._exit``, out of memory) gives
  ``on_failure(task, "error", message)``, and its slot likewise starts afresh.

The clock of a task starts when it is handed to an idle worker that has started and run the
caller's ``warm`` function (imports, data loading), so start-up is never counted against a
task: counted, a slow start on a loaded machine would time out every task of each fresh
worker, one after another. Slots live for the process (the
objective's module, and whatever data it loads at import, load once per worker), ``jobs`` of
them; with ``jobs == 1`` (the ``sequential`` backend) tasks run one after another in one
child process, in task order. The results come back in task order whatever finished first.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, wait
from typing import Any

POLL = 0.2
"""Seconds between looks at the running tasks' clocks."""

_SLOTS: list["_Slot"] = []


def _ready() -> bool:
    return True


class _Slot:
    """One worker process (a one-worker loky executor), started on first use."""

    def __init__(self):
        self.executor = None
        self.warmed: set = set()  # the warm-ups this worker has run

    def submit(self, fn: Callable, args: tuple, warm: tuple | None):
        if self.executor is None:
            from joblib.externals.loky import ProcessPoolExecutor

            self.executor = ProcessPoolExecutor(max_workers=1)
            self.executor.submit(_ready).result()
        if warm is not None and warm not in self.warmed:  # before any clock runs
            self.executor.submit(*warm).result()
            self.warmed.add(warm)
        return self.executor.submit(fn, *args)

    def kill(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, kill_workers=True)
            self.executor = None
            self.warmed = set()


def run(fn: Callable, tasks: Sequence[tuple], jobs: int, timeout: float,
        on_failure: Callable[[tuple, str, str], Any], warm: tuple | None = None) -> list:
    """``fn(*task)`` for every task on ``jobs`` killable worker processes; outputs in task order.

    Args:
        fn: a module-level function (workers import it by name).
        tasks: argument tuples of plain data.
        jobs: worker processes (slots) used at once.
        timeout: seconds a task may run before its worker is killed.
        on_failure: ``on_failure(task, status, message)`` gives the output of a task that timed
            out (``"timeout"``) or whose worker died (``"error"``).
        warm: ``(function, *args)`` of plain data, run once in each worker before its first
            task and never timed (imports, data loading); it must not raise.

    A ``KeyboardInterrupt`` (a stop signal) kills the workers of the tasks still running.
    """
    while len(_SLOTS) < jobs:
        _SLOTS.append(_Slot())
    slots = _SLOTS[:jobs]
    out: list = [None] * len(tasks)
    queue = deque(range(len(tasks)))
    running: dict = {}  # future -> (slot, task index, start)
    try:
        while queue or running:
            busy = {slot for slot, _, _ in running.values()}
            for slot in slots:
                if queue and slot not in busy:
                    i = queue.popleft()
                    running[slot.submit(fn, tasks[i], warm)] = (slot, i, time.monotonic())
            done, _ = wait(list(running), timeout=POLL, return_when=FIRST_COMPLETED)
            for fut in done:
                slot, i, _ = running.pop(fut)
                try:
                    out[i] = fut.result()
                except Exception as exc:  # noqa: BLE001 - the worker died: a status
                    slot.kill()
                    out[i] = on_failure(tasks[i], "error", f"the worker process died "
                                        f"({type(exc).__name__}: {exc})")
            now = time.monotonic()
            for fut, (slot, i, start) in list(running.items()):
                if now - start > timeout:
                    del running[fut]
                    slot.kill()  # a thread cannot be stopped; its process can
                    out[i] = on_failure(tasks[i], "timeout", f"ran {now - start:.0f} s, past the "
                                        f"time limit of {timeout:g} s; its process was killed")
    finally:
        for slot, _, _ in running.values():  # interrupted: nothing may keep running
            slot.kill()
    return out
