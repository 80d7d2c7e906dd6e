"""The run directory contract: every file name (:class:`RunDir`), the files' readers and writers.

``DIR/<run-id>/`` holds (each name is a :class:`RunDir` attribute; old runs resume because the
names and contents never change)

* ``config.json`` — the :class:`SearchConfig`, written before generation 0;
* ``env.json`` — the command line and the machine (:func:`gp_search.core.write_env`);
* ``generations.jsonl`` — append-only, one JSON line per finished generation: ``hof_best``
  and ``best_canonical``, the hall of fame's best (full-budget trainings only; null while it is
  empty; runs made before ``hof_best`` was logged lack it), ``best`` and ``median`` of the
  population's raw fitness (short and raced trainings included), routes and seconds;
* ``hall_of_fame.csv`` — rank, fitness mean, std, n, canonical, infix, size (no timings, so two
  runs with the same seed write identical files);
* ``checkpoint.json`` — after every generation: population as prefix strings with fitness, the
  ``random`` state, the hall of fame, the generation number (written atomically);
* ``cache.sqlite`` — the fitness cache (:mod:`gp_search.engine.cache`; unless a shared ``--cache``
  file is used);
* ``best.py`` — the best loss, exported as a standalone torch file;
* ``tasks.json`` — with your own tasks (``SearchConfig.tasks``): each data file's path, size and
  SHA-256 and how it was read (``resume`` refuses a changed file;
  :mod:`gp_search.engine.user_tasks`);
* ``tasks/`` — tasks given as arrays, one ``<name>.npz`` each (:func:`gp_search.api.search`);
* ``transfer/`` — the transfer stage's tables and ``choice.json`` (its choice; its presence marks
  the stage as done), the report suite's tables in ``transfer/report/``
  (:mod:`gp_search.analysis.transfer_stage`);
* ``report/`` — ``gp-search report``'s Markdown and PNGs
  (:func:`gp_search.analysis.write_run_report`);
* ``rediscovery_config.json``, ``result.json`` — a rediscovery run's settings and outcome
  (:mod:`gp_search.rediscovery`).

Nothing on disk is pickle, and every reader checks what it reads and names the file on error.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from gp_search.core import ENV_FILE, Fidelity, Route, Split, is_kind
from gp_search.proxies import STATUSES
from gp_search.engine.config import SearchConfig

CHECKPOINT_FORMAT = "gp-search-checkpoint/1"
HOF_COLUMNS = ("rank", "fitness_mean", "fitness_std", "n", "canonical", "infix", "size")
HOF_EXTRA = ("nearest",)
"""Columns after :data:`HOF_COLUMNS` (added later; files without them still read): ``nearest``,
the behavioural distance to the nearest better entry (:mod:`gp_search.engine.diversity`)."""


class RunFileError(ValueError):
    """A run file that is missing, unreadable or not what gp-search wrote."""


class RunDir:
    """The paths of one run directory's files (what each holds: the module docstring)."""

    CONFIG, ENV, GENERATIONS = "config.json", ENV_FILE, "generations.jsonl"
    HALL_OF_FAME, CHECKPOINT, CACHE, BEST = ("hall_of_fame.csv", "checkpoint.json",
                                             "cache.sqlite", "best.py")
    TASKS_RECORD, TASKS, TRANSFER, CHOICE = "tasks.json", "tasks", "transfer", "choice.json"
    REPORT, REDISCOVERY_CONFIG, RESULT = "report", "rediscovery_config.json", "result.json"

    def __init__(self, path: "str | Path"):
        self.path = path = Path(path)
        self.config, self.env = path / self.CONFIG, path / self.ENV
        self.generations, self.hall_of_fame = path / self.GENERATIONS, path / self.HALL_OF_FAME
        self.checkpoint, self.cache, self.best = (path / self.CHECKPOINT, path / self.CACHE,
                                                  path / self.BEST)
        self.tasks_record, self.tasks = path / self.TASKS_RECORD, path / self.TASKS
        self.transfer, self.report = path / self.TRANSFER, path / self.REPORT
        self.choice, self.transfer_report = self.transfer / self.CHOICE, self.transfer / self.REPORT
        self.rediscovery_config = path / self.REDISCOVERY_CONFIG
        self.result = path / self.RESULT


def new_run_dir(parent: "str | Path", cfg: SearchConfig) -> Path:
    """Create ``parent/<run-id>/`` (id: time, preset, seed) after checking it is writable.

    Raises:
        RunFileError: the location cannot be created or written (before any work starts).
    """
    parent = Path(parent)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{cfg.preset or 'custom'}-s{cfg.seed}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for i in range(1000):
            path = parent / (base if i == 0 else f"{base}-{i}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        probe = path / ".write-test"
        with open(probe, "wb") as f:
            f.write(b"\0" * 65536)  # a full disk fails here, not mid-run
        probe.unlink()
    except OSError as exc:
        raise RunFileError(f"cannot write run directory under {parent}: "
                           f"{exc.strerror or exc}; choose another --out") from None
    return path


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number gp-search writes")


def _loads(text: str) -> object:
    """JSON as gp-search writes it: no NaN or Infinity (ValueError), nesting within limits."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_json(path: Path, what: str) -> object:
    try:
        return _loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunFileError(f"{path}: missing {what}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise RunFileError(f"{path}: {what} is not valid JSON ({exc})") from None


def hof_csv(entries: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HOF_COLUMNS + HOF_EXTRA)
    for rank, e in enumerate(entries, 1):
        w.writerow([rank, f"{e['fitness']:.6f}", f"{e['std']:.6f}", e["n"], e["canonical"],
                    e["infix"], e["size"], "" if e.get("nearest") is None else e["nearest"]])
    return buf.getvalue()


def read_hof_csv(path: Path) -> list[dict]:
    try:
        reader = csv.DictReader(io.StringIO(Path(path).read_text()))
        rows = list(reader)
    except FileNotFoundError:
        raise RunFileError(f"{path}: missing hall of fame") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunFileError(f"{path}: unreadable hall of fame ({exc})") from None
    known = (HOF_COLUMNS, HOF_COLUMNS + HOF_EXTRA)  # files written before HOF_EXTRA still read
    if not rows and tuple(reader.fieldnames or ()) not in known:  # rows are checked below
        raise RunFileError(f"{path}: line 1: columns {list(reader.fieldnames or [])} != "
                           f"{list(HOF_COLUMNS + HOF_EXTRA)}")
    out = []
    for i, row in enumerate(rows, 2):
        try:
            if tuple(row) not in known or None in row.values():
                raise ValueError(f"columns {list(row)} != {list(HOF_COLUMNS + HOF_EXTRA)}")
            out.append({"rank": int(row["rank"]), "fitness": float(row["fitness_mean"]),
                        "std": float(row["fitness_std"]), "n": int(row["n"]),
                        "canonical": row["canonical"], "infix": row["infix"],
                        "size": int(row["size"])})
            if row.get("nearest"):
                out[-1]["nearest"] = float(row["nearest"])
        except (ValueError, TypeError) as exc:
            raise RunFileError(f"{path}: line {i}: {exc}") from None
    return out


# --- checkpoint ----------------------------------------------------------------------------------

def random_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def random_state_from_json(data, path: Path) -> tuple:
    try:
        version, internal, gauss = data
        if not (isinstance(version, int) and len(internal) == 625
                and all(isinstance(x, int) and 0 <= x < 2**32 for x in internal)
                and (gauss is None or isinstance(gauss, float))):
            raise ValueError
    except (TypeError, ValueError):
        raise RunFileError(f"{path}: 'random_state' is not a Python random state") from None
    return (version, tuple(internal), gauss)


def write_checkpoint(run_dir: Path, state: dict) -> None:
    write_atomic(RunDir(run_dir).checkpoint, json.dumps({"format": CHECKPOINT_FORMAT, **state},
                                                          allow_nan=False))


def read_checkpoint(run_dir: Path) -> dict:
    """Read and check ``checkpoint.json``; a corrupt one is an error, never skipped."""
    path = RunDir(run_dir).checkpoint
    data = read_json(path, "checkpoint")
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise RunFileError(f"{path}: not a gp-search checkpoint (format must be "
                           f"{CHECKPOINT_FORMAT!r})")
    need = {"generation": int, "population": list, "random_state": list, "hall_of_fame": list,
            "elapsed": (int, float)}
    for key, type_ in need.items():
        if not isinstance(data.get(key), type_) or isinstance(data.get(key), bool):
            raise RunFileError(f"{path}: field {key!r} missing or of the wrong type")
    for i, ind in enumerate(data["population"]):
        if not (isinstance(ind, dict) and isinstance(ind.get("prefix"), str)
                and (ind.get("fitness") is None or isinstance(ind.get("fitness"), (int, float)))):
            raise RunFileError(f"{path}: population[{i}] must be {{'prefix': str, 'fitness': "
                               "number or null}")
    for i, e in enumerate(data["hall_of_fame"]):
        if not (isinstance(e, dict) and all(_is(e.get(k), t) for k, t in _HOF_ENTRY.items())):
            raise RunFileError(f"{path}: hall_of_fame[{i}] must have "
                               f"{', '.join(f'{k} ({t})' for k, t in _HOF_ENTRY.items())}")
    if data["generation"] < 0 or data["elapsed"] < 0:
        raise RunFileError(f"{path}: 'generation' and 'elapsed' must be >= 0")
    optional = {"finished": "bool", "train_seeds": "int list", "scores": "score list",
                "scorer": "scorer"}
    for key, kind in optional.items():
        if data.get(key) is not None and not _is(data[key], kind):
            raise RunFileError(f"{path}: field {key!r} is not a {kind}")
    if data.get("scores") is not None and len(data["scores"]) != len(data["population"]):
        raise RunFileError(f"{path}: 'scores' has {len(data['scores'])} entries for "
                           f"{len(data['population'])} individuals")
    data["random_state"] = random_state_from_json(data["random_state"], path)
    return data


_SCORE = {"fitness": "number", "std": "number", "n": "int", "status": "status",
          "fidelity": "fidelity", "message": "str"}
FIDELITIES = tuple(f.value for f in Fidelity)
_HOF_ENTRY = {"prefix": "str", "canonical": "str", "infix": "str", "fitness": "number",
              "std": "number", "n": "int", "size": "int"}


def _is(value, kind: str) -> bool:
    """Whether a JSON value is of one of the kinds the run files use (the plain kinds are
    :func:`gp_search.core.checks.is_kind`'s, as for every dataclass field)."""
    if kind in ("number", "int", "str", "bool"):
        return is_kind(value, kind)
    if kind == "status":
        return value in STATUSES
    if kind == "fidelity":
        return value in FIDELITIES
    if kind == "int list":
        return isinstance(value, list) and all(_is(v, "int") for v in value)
    if kind == "score":  # gp_search.engine.score.Score as JSON
        return isinstance(value, dict) and _is(value.get("fitness"), "number") and all(
            k in _SCORE and _is(v, _SCORE[k]) for k, v in value.items())
    if kind == "score list":
        return isinstance(value, list) and all(v is None or _is(v, "score") for v in value)
    if kind == "scorer":
        return (isinstance(value, dict)
                and isinstance(value.get("by_key", {}), dict)
                and all(_is(v, "score") for v in value.get("by_key", {}).values())
                and isinstance(value.get("by_fingerprint", {}), dict)
                and all(isinstance(v, str) for v in value.get("by_fingerprint", {}).values())
                and all(_is(value.get(k, 0), "int") for k in ("full_trainings", "short_trainings")))
    raise ValueError(kind)


# --- generations log -----------------------------------------------------------------------------

def append_generation(run_dir: Path, record: dict) -> None:
    with open(RunDir(run_dir).generations, "a") as f:
        f.write(json.dumps(record, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_generations(run_dir: Path) -> list[dict]:
    path = RunDir(run_dir).generations
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise RunFileError(f"{path}: unreadable generations log ({exc})") from None
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = _loads(line)
        except ValueError as exc:
            if i == len(lines):  # no newline yet: an append in progress, or torn by a kill
                break
            raise RunFileError(f"{path}: line {i} is not JSON ({exc})") from None
        if not isinstance(rec, dict) or not _is(rec.get("generation"), "int") \
                or rec["generation"] < 0:
            raise RunFileError(f"{path}: line {i} has no integer 'generation' >= 0")
        bad = [k for k, kind in _GENERATION_FIELDS.items()
               if k in rec and not (_is(rec[k], kind)
                                    or (k in _MAY_BE_NULL and rec[k] is None))]
        if bad:
            raise RunFileError(f"{path}: line {i}: field(s) {bad} of the wrong type "
                               f"(expected {', '.join(_GENERATION_FIELDS[k] for k in bad)})")
        out.append(rec)
    return out


_GENERATION_FIELDS = {"best": "number", "median": "number", "best_canonical": "str",
                      "hof_best": "number",
                      **{route.value: "int" for route in Route},
                      **{k: "number" for k in ("seconds", "seconds_vary", "seconds_scoring",
                                               "seconds_training")}}


_MAY_BE_NULL = ("best_canonical", "hof_best")
"""Generation fields that are null while the hall of fame is empty."""


def truncate_generations(run_dir: Path, last_generation: int) -> None:
    """Drop log lines after the checkpointed generation (a kill can fall between the two)."""
    recs = [r for r in read_generations(run_dir) if r["generation"] <= last_generation]
    write_atomic(RunDir(run_dir).generations,
                 "".join(json.dumps(r, allow_nan=False) + "\n" for r in recs))


# --- reopening a run -----------------------------------------------------------------------------

@dataclass
class Run:
    """A run directory reopened: its config, log, hall of fame and checkpoint."""

    path: Path
    config: SearchConfig
    generations: list = field(default_factory=list)
    hall_of_fame: list = field(default_factory=list)
    checkpoint: dict | None = None

    @property
    def best(self) -> dict | None:
        return self.hall_of_fame[0] if self.hall_of_fame else None

    @property
    def finished(self) -> bool:
        return bool(self.checkpoint and self.checkpoint.get("finished"))


def load_config(run_dir: Path) -> SearchConfig:
    path = RunDir(run_dir).config
    data = read_json(path, "run config")
    if isinstance(data, dict) and "fitness_split" not in data:
        data["fitness_split"] = Split.TEST.value  # written before the field existed: scored on test
    if isinstance(data, dict) and "transfer_suite" not in data:
        data["transfer_suite"] = "none"  # written before the transfer stage existed
    try:
        return SearchConfig.from_dict(data, str(path))
    except ValueError as exc:
        raise RunFileError(str(exc)) from None


def load_run(path: "str | Path") -> Run:
    """Reopen a run directory (any state: running, killed, finished).

    Raises:
        RunFileError: naming the file and the problem.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunFileError(f"{path}: not a run directory")
    cfg, files = load_config(path), RunDir(path)
    ckpt = read_checkpoint(path) if files.checkpoint.exists() else None
    if ckpt is not None:  # a checkpoint that does not belong to this config.json
        where = files.checkpoint
        if ckpt["generation"] > cfg.generations:
            raise RunFileError(f"{where}: generation {ckpt['generation']} is past config.json's "
                               f"{cfg.generations} generations")
        if len(ckpt["population"]) != cfg.population:
            raise RunFileError(f"{where}: {len(ckpt['population'])} individuals, but "
                               f"config.json's population is {cfg.population}")
    return Run(path, cfg, read_generations(path),
               read_hof_csv(files.hall_of_fame) if files.hall_of_fame.exists() else [], ckpt)
