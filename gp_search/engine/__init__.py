"""The search engine: config, variation, screening, scoring, the generation loop, the run lifecycle.

Data path: config → population → variation → screening / dedup / cache → scoring (proxy
trainings through :mod:`gp_search.parallel`) → selection → hall of fame → run directory
(:mod:`gp_search.engine.rundir`, a public namespace: the run-directory contract; so is
:mod:`gp_search.engine.objective`, a user's training loop as the fitness). What a run does after its
search is a hook (:class:`Finish`) passed in from above; the engine imports no analysis module.
"""

from gp_search.engine import objective, rundir
from gp_search.engine.ask_tell import AskTellSearch, Candidate
from gp_search.engine.cache import Cache
from gp_search.engine.config import PRESETS, SearchConfig, build, load_file, preset, replace
from gp_search.engine.evolve import Search
from gp_search.engine.finish import Finish, SearchFitnessBest, write_best
from gp_search.engine.fitness import AGGREGATES, describe, per_seed_fitness
from gp_search.engine.objective import check as check_objective
from gp_search.engine.objective import path_of as objective_path
from gp_search.engine.objective import resume_command
from gp_search.engine.rundir import (
    Run,
    RunDir,
    RunFileError,
    hof_csv,
    load_run,
    new_run_dir,
    read_checkpoint,
    read_json,
    write_atomic,
)
from gp_search.engine.runner import (
    Interrupted,
    default_evaluator,
    draw_training_seeds,
    proxy_refs,
    resume,
    run_search,
)
from gp_search.engine.score import Evaluator, ProxyRef, Score, ScorerProtocol
from gp_search.engine.scoring import Scorer
from gp_search.engine.user_tasks import config_fields, task_proxies

__all__ = ["AGGREGATES", "PRESETS", "AskTellSearch", "Cache", "Candidate", "Evaluator", "Finish",
           "Interrupted", "ProxyRef", "Run", "RunDir", "RunFileError", "Score", "Scorer",
           "ScorerProtocol", "Search", "SearchConfig", "SearchFitnessBest", "build",
           "check_objective", "config_fields", "default_evaluator", "describe",
           "draw_training_seeds", "hof_csv", "load_file", "load_run", "new_run_dir", "objective",
           "objective_path", "per_seed_fitness", "preset", "proxy_refs", "read_checkpoint",
           "read_json", "replace", "resume", "resume_command", "run_search", "rundir",
           "task_proxies", "write_atomic", "write_best"]
