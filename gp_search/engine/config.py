"""Search configuration: one frozen, validated dataclass per run, presets, and TOML/JSON loading.

Every field has a docstring (the ``help`` metadata, which the CLI shows). The numbers of the
``paper`` preset that the NGL paper did not publish (population, generations, rates, limits,
constant range) are our own choices, marked as such.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from gp_search.core import AGGREGATES, SPLITS, Aggregate, rule, validate
from gp_search.lang import SET_NAMES
from gp_search.parallel import BACKENDS
from gp_search.proxies import HELD_OUT, SEARCH_SUITES, SUITES


def _names(what: str):
    return (lambda cfg, v: all(isinstance(x, str) and x for x in v), what)


def _shared_tasks(a: str, b: str) -> set[str]:
    """The task names that suites ``a`` and ``b`` share."""
    return {n for n, _ in SUITES.get(a, ())} & {n for n, _ in SUITES.get(b, ())}


def _held_out(names) -> list[str]:
    """The names among ``names`` that are held-out transfer tasks."""
    return sorted(set(names) & HELD_OUT)


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides a search; stored as ``config.json`` in the run directory.

    Each field's rules (range, choices) sit in its metadata and are checked by
    :func:`gp_search.core.checks.validate` when the config is made.
    """

    population: int = rule(32, "individuals per generation", min=2, max=100_000)
    generations: int = rule(8, "generations after the initial population (generation 0)",
                            min=0, max=100_000)
    strategy: str = rule("gp", "'gp' (selection and variation) or 'random' (the random-search "
                               "baseline: each generation drawn fresh from the initialiser, with "
                               "the same screening, scoring, elitism and hall of fame)",
                         choices=("gp", "random"))
    niche_radius: float = rule(0.0, "behavioural niching (gp_search.engine.diversity): within this "
                                    "fingerprint distance (Euclidean, between unit-norm logit "
                                    "gradients on the probes; 0..2) of a better individual, an "
                                    "individual is cleared for selection, and a loss may not enter "
                                    "the hall of fame (0: off)", min=0.0, max=2.0)
    immigrants: float = rule(0.0, "fraction of each generation's newcomers drawn fresh from the "
                                  "initialiser instead of bred (random immigrants; GP only)",
                             min=0.0, max=1.0)
    proxies: tuple = rule(("digits-mlp",), "proxy task names (e.g. the s-* search suite); fitness "
                          "aggregates them as fitness_aggregate says",
                          check=(lambda c, v: len(v) + len(c.tasks) + bool(c.objective) >= 1
                                 and all(isinstance(p, str) for p in v) and not _held_out(v),
                                 "name at least one proxy (or give a task or an objective) and no "
                                 "held-out transfer task (gp_search.proxies.HELD_OUT: the "
                                 "t-* tasks judge what a search found, so a search must never "
                                 "score them; use the s-* search-suite tasks instead)"))
    tasks: tuple = rule((), "your own tasks, scored after the proxies: tables of "
                            "gp_search.proxies.user_task.TABLE_KEYS, each with a data 'file' "
                            "(.npz, .csv/.tsv, image folder) or a 'factory' ('pkg.mod:make')",
                        check=(lambda c, v: all(isinstance(t, dict) and ("file" in t) != (
                            "factory" in t) for t in v), "be a list of tables, each with either "
                            "'file' or 'factory'"))
    objective: str = rule("", "your own training loop as the fitness: the import path "
                              "'pkg.mod:fn' (or '/path/script.py:fn') of fn(loss, seed[, budget]) "
                              "-> score in [0, 1] or a dict of metrics, scored after the proxies "
                              "and tasks (gp_search.engine.objective); empty: none",
                          # "<ask-tell>": gp_search.engine.objective.ASK_TELL (gp_search.Search)
                          check=(lambda c, v: not v or ":" in v or v == "<ask-tell>",
                                 "be empty or an import path 'pkg.mod:fn'"))
    objective_version: str = rule("", "your recipe's version, part of the objective's cache key: "
                                      "change it when the training changes")
    objective_metric: str = rule("", "the metric optimised when the objective returns a dict of "
                                     "named metrics")
    proxy_weights: tuple = rule((), "one weight per proxy, then per task, then for the objective "
                                    "(empty: equal weights)",
                                check=(lambda c, v: not v or (
                                    len(v) == len(c.proxies) + len(c.tasks) + bool(c.objective)
                                    and all(isinstance(w, (int, float)) and w > 0 for w in v)),
                                    "be empty or one positive weight per proxy, task and "
                                    "objective"))
    fitness_aggregate: str = rule(
          "weighted-mean-accuracy",
          "how per-task results make one fitness: 'weighted-mean-accuracy' (the original: mean "
          "accuracy), 'mean' (mean over tasks of accuracy minus CE's on the same task and seeds) "
          "or 'softmin' (the soft minimum over tasks of that delta, -tau*log(sum_t w_t*exp(-d_t/"
          "tau)): a loss losing more than tau*log(tasks) to CE on any one task scores below CE, "
          "so breaking one task cannot be bought back elsewhere; the presets use it)",
          choices=AGGREGATES)
    fitness_temperature: float = rule(
          0.02, "softmin's tau, in accuracy points: 0.02 lets a loss trail CE by up to "
                "0.02*log(tasks) (0.036 with 6 tasks) on one task if it gains elsewhere, about "
                "the spread of a task's mean over 2 seeds; smaller is closer to the worst task",
          above=0.0)
    racing: bool = rule(False, "softmin only: train each promoted candidate task by task in "
                               "the order of proxies (cheap first) and stop one whose fitness "
                               "bound (a task's delta + tau*log(1/weight)) is already below the "
                               "hall_of_fame-th best so far; it keeps that bound as its fitness, "
                               "marked short, and never enters the hall of fame",
                        check=(lambda c, v: not v or c.fitness_aggregate == Aggregate.SOFTMIN,
                               "be false unless fitness_aggregate is 'softmin'"))
    seeds: int = rule(1, "training seeds per candidate and proxy (common to all candidates)",
                      min=1, max=100)
    fitness_split: str = rule("val", "what fitness is measured on: 'val' (a fixed, stratified "
                                     "fifth of each proxy's training split, held out; the test "
                                     "split stays unseen by the search) or 'test'",
                              choices=SPLITS)
    primitive_set: str = rule("paper", "primitive set: 'paper' or 'extended'",
                              choices=SET_NAMES)
    init_min_depth: int = rule(1, "ramped half-and-half: smallest initial tree depth",
                               check=(lambda c, v: 0 <= v <= c.init_max_depth,
                                      "satisfy 0 <= init_min_depth <= init_max_depth"))
    init_max_depth: int = rule(4, "ramped half-and-half: largest initial tree depth",
                               check=(lambda c, v: v <= c.max_height, "be <= max_height"))
    max_height: int = rule(10, "static limit on tree height after variation", min=1, max=30)
    max_size: int = rule(40, "static limit on tree size (nodes) after variation", min=3, max=500)
    tournament_size: int = rule(3, "tournament selection size",
                                check=(lambda c, v: 1 <= v <= c.population, "be in 1..population"))
    crossover_prob: float = rule(0.7, "probability that a pair of offspring is crossed over",
                                 min=0.0, max=1.0)
    mutation_prob: float = rule(0.3, "probability that an offspring is mutated", min=0.0, max=1.0)
    repair_tries: int = rule(10, "offspring failing screening or cloning a tree are re-mutated "
                                 "up to this many times",
                             min=0, max=1000)
    elitism: int = rule(2, "best individuals copied unchanged into the next generation",
                        check=(lambda c, v: 0 <= v < c.population, "be in 0..population-1"))
    parsimony: float = rule(0.0005, "penalised fitness = accuracy - parsimony * size "
                                    "(selection only)",
                            min=0.0)
    const_range: float = rule(3.0, "ephemeral constants uniform on [-const_range, const_range]",
                              above=0.0)
    hall_of_fame: int = rule(10, "size of the hall of fame (distinct canonical forms)",
                             min=1, max=10_000)
    hard_examples: bool = rule(False, "the hall of fame admits only losses whose logit gradient "
                                     "survives on hard examples (gp_search.engine.screen."
                                     "hard_examples: on a 20:1 long tail every class keeps a third "
                                     "of its frequency); on in both presets, off otherwise so "
                                     "that old configs and runs keep their meaning")
    constants_in_loop: int = rule(0, "GP: after each generation, tune the constants of the "
                                     "hall of fame's best (once per loss) with up to this many "
                                     "full trainings; an improved tree replaces the "
                                     "population's worst (0: off)",
                                  min=0, max=1000)
    surrogate: int = rule(1, "GP: breed this many times the offspring each generation and "
                             "train only those whose fitness the nearest scored behaviours "
                             "predict best (gp_search.engine.surrogate; 1: off)",
                          min=1, max=100)
    screen_hard_examples: bool = rule(False, "reject before training the losses the "
                                            "hard-examples check fails (rather than only keep "
                                            "them out of the hall of fame): no training is "
                                            "spent on them and selection never breeds from "
                                            "them; initial and immigrant trees take more draws")
    successive_halving: bool = rule(True, "train all new candidates briefly, promote the best "
                                          "to full budget")
    halving_eta: int = rule(3, "successive halving: short budget = steps / eta, promote the "
                               "top 1/eta",
                            min=2, max=100)
    dedup_fingerprint: bool = rule(True, "reuse fitness of candidates with the same "
                                         "behavioural fingerprint")
    optimize_constants: bool = rule(False, "after the search, tune the constants of the best "
                                           "losses")
    constant_evals: int = rule(8, "constant optimisation: trainings per tuned loss", min=1,
                               max=100_000)
    seed_individuals: tuple = rule((), "losses put into generation 0 (names like 'ngl' or "
                                       "expressions)",
                                   check=_names("be a list of loss names or expressions"))
    seed: int = rule(0, "master seed: draws every training seed and drives the evolution")
    jobs: int = rule(1, "parallel training processes", min=1, max=1024)
    backend: str = rule("loky", "'loky' (joblib processes), 'sequential' or 'dask'",
                        choices=tuple(BACKENDS))
    scheduler: str = rule("", "Dask scheduler address tcp://HOST:PORT (empty: start a local "
                              "cluster)",
                          check=(lambda c, v: not v or v.startswith(("tcp://", "tls://",
                                                                     "inproc://")),
                                 "be empty or an address like tcp://HOST:PORT"))
    # Stays (GPU review 10): no cuda:N for a search (gp-search evaluate takes it).
    device: str = rule("auto", "'cpu', 'cuda' or 'auto'", choices=("cpu", "cuda", "auto"))
    steps: int = rule(0, "override of every proxy's full step budget (0: the proxy's own)",
                      min=0, max=10_000_000, note="(0 = the proxy's own budget)")
    time_budget: float = rule(0.0, "stop after the generation that passes this many seconds "
                                   "(0: none)",
                              min=0.0)
    train_timeout: float = rule(600.0, "seconds after which one training gets status 'timeout'",
                                above=0.0)
    data_root: str = rule("", "directory of user-supplied datasets (file-backed proxies)")
    out: str = rule("results/runs", "parent directory of run directories",
                    check=(lambda c, v: bool(v), "not be empty"))
    cache: str = rule("", "shared SQLite fitness cache (empty: cache.sqlite in the run directory)")
    transfer_suite: str = rule("none", "held-out suite (gp_search.proxies.SUITES) that the "
                                       "hall of fame's best are retrained on when the search ends; "
                                       "it picks best.py among them (the selection suite); "
                                       "without a report_suite its figures are also the ones "
                                       "reported, with CE, NGL and label smoothing beside them "
                                       "('none': no transfer stage)",
                               check=(lambda c, v: v == "none" or v in SUITES,
                                      f"be 'none' or a suite of {sorted(SUITES)}"))
    report_suite: str = rule("none", "held-out suite used for no choice: after transfer_suite "
                                     "has picked best.py, the same top losses and the baselines "
                                     "are retrained there, and its figures are what the run "
                                     "prints and best.py states, with the transfer rate (how "
                                     "many of the top are below CE on no report task); its tasks "
                                     "must not be transfer_suite's ('none': the selection "
                                     "suite's figures are reported, as before this field)",
                             check=(lambda c, v: v == "none" or (
                                 v in SUITES and c.transfer_suite != "none"
                                 and not _shared_tasks(c.transfer_suite, v)),
                                 f"be 'none' or a suite of {sorted(SUITES)} that shares no task "
                                 f"with transfer_suite (which must not be 'none')"))
    transfer_top: int = rule(5, "transfer stage: how many of the hall of fame's best it retrains",
                             min=1, max=50)
    transfer_seeds: int = rule(3, "transfer stage: training seeds per loss and task (paired "
                                  "by seed)",
                               min=2, max=100)
    preset: str = rule("", "preset the run started from (informational)")

    def __post_init__(self):
        self.validate()

    def scored_names(self) -> list[str]:
        """What a search with this config scores: its proxies' names, then its tasks' (their
        names, files or factories)."""
        return list(self.proxies) + [t.get("name") or t.get("file") or t.get("factory")
                                     for t in self.tasks] + (["objective"] * bool(self.objective))

    def validate(self) -> None:
        """Check every field; raise ValueError naming the field, the rule and the value."""
        validate(self, "config field")

    def weights(self) -> tuple[float, ...]:
        """Normalised weights of the proxies, then of the tasks, then of the objective."""
        w = self.proxy_weights or (1.0,) * (len(self.proxies) + len(self.tasks)
                                            + bool(self.objective))
        total = float(sum(w))
        return tuple(float(x) / total for x in w)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "SearchConfig":
        """Build from a dict; unknown keys and bad values name the source and the field."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a table/object of fields, got "
                             f"{type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown config field(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None


PRESETS: dict[str, dict] = {
    # Under 10 minutes on 2 CPU cores, embedded data: the search suite, fitness the soft minimum
    # over its tasks of accuracy minus CE's (a loss that breaks one task cannot win).
    # Population 24; the search runs until the generation that passes 360 s (generations is
    # only a cap): 24 x 8 stopped at 77 s of its 400 s on an idle 2-core VM (issue 20). The
    # nested transfer stage (selection + report suites, mixup tasks trained one at a time)
    # took 250 s wall at jobs 1 under a load of 7-9, so 360 s leaves room for the last
    # generation's overshoot and the stage within 10 minutes (not yet timed on an idle VM).
    # Niching at fingerprint distance 0.3 (its top 5 are alternatives, not one loss with five
    # constants) and a quarter of each generation as immigrants; the hard-examples check as a
    # rejection before training, and offspring bred 3x and chosen by the surrogate: the best
    # measured variant at equal trainings, though not significantly better than random search
    # with the same screening (results/strategy/, issue 20).
    "quick": dict(population=24, generations=1000, proxies=SEARCH_SUITES["search-quick"],
                  seeds=2, niche_radius=0.3, immigrants=0.25, hard_examples=True,
                  screen_hard_examples=True, surrogate=3,
                  fitness_aggregate="softmin", racing=True, max_height=8, max_size=30, jobs=2,
                  time_budget=360.0, transfer_suite="transfer-quick-select",
                  report_suite="transfer-quick-report", transfer_seeds=3, preset="quick"),
    # The NGL search as far as it is known: the paper's primitive set; the rest our choices
    # (the paper searched on one task; this one scores the whole search suite, like quick).
    "paper": dict(population=64, generations=20, proxies=SEARCH_SUITES["search"],
                  fitness_aggregate="softmin", racing=True, seeds=2, primitive_set="paper",
                  init_max_depth=5,
                  max_height=12, max_size=40, tournament_size=4, crossover_prob=0.8,
                  mutation_prob=0.3, elitism=2, parsimony=0.0002, const_range=3.0,
                  optimize_constants=True, hard_examples=True, transfer_suite="transfer-select",
                  report_suite="transfer-report", transfer_seeds=5, preset="paper"),
}


def _own_suites(data: dict, given: dict) -> dict:
    """``data`` with the preset's report suite dropped when ``given`` (a file's or the caller's
    fields) names a transfer_suite but no report_suite: a suite chosen by hand picks and reports
    alone, as it did before report_suite existed (``--transfer-suite none`` still turns the
    stage off, ``--transfer-suite transfer`` still means the one full suite)."""
    if "transfer_suite" in given and "report_suite" not in given:
        return {**data, "report_suite": "none"}
    return data


def preset(name: str, **overrides) -> SearchConfig:
    """A preset's config with overrides applied (a ``transfer_suite`` without a
    ``report_suite`` makes the stage one suite again: :func:`_own_suites`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return SearchConfig(**_own_suites({**PRESETS[name], **overrides}, overrides))


def load_file(path: "str | Path") -> dict:
    """Read a TOML or JSON config file into a dict (no code is run; errors name the file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"config file {path} is not UTF-8 text ({exc.reason})") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except RecursionError:
        raise ValueError(f"config file {path} nests too deeply to be a config") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"config file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: "
                         f"{exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path}: expected a table of fields, got "
                         f"{type(data).__name__}")
    return data


def build(preset_name: str | None = None, config_file: "str | Path | None" = None,
          tasks=(), **overrides) -> SearchConfig:
    """Preset, then file, then explicit overrides (``None`` values are ignored); ``tasks``
    (tables) are added to the file's; a ``transfer_suite`` given without a ``report_suite``
    makes the stage one suite again (:func:`_own_suites`)."""
    if preset_name and preset_name not in PRESETS:
        raise ValueError(f"unknown preset {preset_name!r}; choose one of {sorted(PRESETS)}")
    data: dict = dict(PRESETS[preset_name]) if preset_name else {}
    source = "config"
    given: dict = {}  # what the file and the caller set (not the preset)
    if config_file:
        given.update(load_file(config_file))
        data.update(given)
        source = str(config_file)
        data["tasks"] = _files_from(data.get("tasks", ()), Path(config_file).parent)
    explicit = {k: v for k, v in overrides.items() if v is not None}
    given.update(explicit)
    data.update(explicit)
    data = _own_suites(data, given)
    if tasks:
        data["tasks"] = list(data.get("tasks", ())) + list(tasks)
    return SearchConfig.from_dict(data, source)


def _files_from(tasks, base: Path):
    """Task tables with each relative ``file`` made absolute against ``base`` (the config
    file's folder), so that a run resumed from elsewhere finds the same files."""
    if not isinstance(tasks, (list, tuple)):
        return tasks  # SearchConfig's own check says what a tasks table must be
    return [{**t, "file": str((base / t["file"]).expanduser().resolve())}
            if isinstance(t, dict) and isinstance(t.get("file"), str) else t for t in tasks]


__all__ = ["PRESETS", "SearchConfig", "build", "load_file", "preset", "replace"]
