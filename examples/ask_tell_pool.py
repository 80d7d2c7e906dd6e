"""Ask/tell with a pool of processes that you control: the search asks, your workers train.

    python examples/ask_tell_pool.py [OUT_DIR]

The stand-in for a SLURM array, a Ray cluster or a notebook: a ``ProcessPoolExecutor`` of two
processes runs the recipe of ``examples/objective_recipe.py`` for each candidate the search
asks for, and each score is told as soon as it is back, in whatever order they finish. A worker
gets the candidate's text (``c.expression``), not the torch callable, and rebuilds the loss with
``gp_search.resolve``: text crosses process boundaries, functions do not. A failed training is
told as the exception itself (status ``error``); the search goes on.

The run directory is a normal one (config, log, checkpoint, hall of fame, best.py); a run that
was stopped continues with ``gp_search.Search(resume=RUN_DIR)``. A few minutes on 2 CPU cores.
"""

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

import gp_search
import objective_recipe  # the recipe beside this file (the script's folder is on sys.path)


def score(expression: str, seed: int, budget: float) -> float:
    """In a worker process: rebuild the loss from its text and run the recipe."""
    import torch

    torch.set_num_threads(1)  # two processes on two cores
    return objective_recipe.objective(gp_search.resolve(expression), seed, budget)


def main(out: str) -> None:
    config = dict(population=8, generations=2, seeds=1, fitness_aggregate="softmin", seed=0,
                  out=out)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool, gp_search.Search(config) as s:
        print(f"run directory: {s.path}")
        while not s.done:
            cands = s.ask()
            futures = {pool.submit(score, c.expression, c.seed, c.budget): c for c in cands}
            for fut in as_completed(futures):
                try:
                    value = fut.result()
                except Exception as exc:  # noqa: BLE001 - told as a status, the search goes on
                    value = exc
                s.tell([futures[fut]], [value])
            print(f"told {len(cands)} scores")
    best = s.run.best
    print(f"best loss: {best['canonical']} (fitness {best['fitness']:+.4f} vs CE on the "
          f"validation split, n = {best['n']} seed); exported to {s.path / 'best.py'}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/runs")
