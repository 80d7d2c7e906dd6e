"""Hostile files: config files and run files that are truncated, of the wrong schema or types, or
hold text that looks like code. Each gives a clear error naming the file and the problem; no code
runs and no file of the run is changed. Also: a full disk is refused before any work, and nothing
the project reads or writes is pickle (a scan of the source).

Cases already covered elsewhere are not repeated: a truncated checkpoint and an unwritable output
directory (tests/engine/test_search.py), a non-SQLite cache and a bad hall-of-fame row
(tests/engine/test_store.py), code in an expression (tests/cli/test_cli.py, tests/lang/test_fuzz.py).
"""

import csv
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from gp_search.engine.cache import Cache
from gp_search.engine import config as C
from gp_search.engine import rundir as store
from gp_search.engine.config import SearchConfig
from gp_search.engine.runner import resume, run_search
from gp_search.engine import Score
from gp_search.proxies.spec import EvalResult

DEEP = "[" * 100_000 + "]" * 100_000


def _marker_code(marker: Path) -> str:
    return f"__import__('os').system('touch {marker}')"


# --- config files --------------------------------------------------------------------------------

CONFIG_CASES = {  # file name -> (content, what the error must say besides the file name)
    "truncated.toml": ('population = 8\nproxies = ["synthetic-mlp"', "not valid toml"),
    "truncated.json": ('{"population": 8, "proxies": ["synth', "not valid json"),
    "list.json": ("[1, 2, 3]", "expected a table of fields"),
    "unknown.toml": ('populaton = 8\n', "unknown config field(s) ['populaton']"),
    "types.toml": ('population = "8"\n', "'population' must be int"),
    "float_int.json": ('{"population": 8.5}', "'population' must be int"),
    "proxies.json": ('{"proxies": "digits-mlp"}', "'proxies' must be tuple"),
    "nan.json": ('{"parsimony": NaN}', "'parsimony' must be >= 0"),
    "huge.json": ('{"population": 1e400}', "'population' must be int"),
    "date.toml": ("population = 1979-05-27\n", "'population' must be int"),
    "code_backend.json": (None, "'backend' must be 'loky', 'sequential' or 'dask'"),
    "code_seed.json": (None, "'seed_individuals'"),
}


CLI_CASES = ("truncated.json", "code_seed.json")


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_bad_config_files_are_refused_naming_the_file(tmp_path, name):
    content, says = CONFIG_CASES[name]
    marker = tmp_path / "hacked"
    if name == "code_backend.json":
        content = json.dumps({"backend": _marker_code(marker)})
    if name == "code_seed.json":
        content = json.dumps({"seed_individuals": [_marker_code(marker)],
                              "proxies": ["synthetic-mlp"]})
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "runs"
    if name != "code_seed.json":  # that one is refused by run_search, not when read
        with pytest.raises(ValueError, match=re.escape(says)) as info:
            C.build(None, path)
        assert name in str(info.value)
    if name in CLI_CASES:  # the command line reports it in one line, before any work
        res = run_cli("run", "--config", path, "--out", out, "--quiet")
        assert res.returncode == 2, res.stderr
        assert says.lower() in res.stderr.lower() and "Traceback" not in res.stderr
        assert name in res.stderr or name == "code_seed.json"
    assert not out.exists() and not marker.exists()


@pytest.mark.parametrize("name,content", [("deep.json", DEEP.encode()),
                                          ("deep.toml", b"a = " + DEEP.encode()),
                                          ("binary.json", b"\xff\xfe\x00\x01garbage")])
def test_deep_or_binary_config_file_is_a_clear_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(name)):
        C.build(None, path)


# --- run files -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("hostile")
    cfg = SearchConfig(population=6, generations=1, proxies=("synthetic-mlp",), steps=5,
                       seeds=1, jobs=1, backend="sequential", out=str(base / "runs"), seed=3,
                       hall_of_fame=4, max_height=6, max_size=20, seed_individuals=("ngl",))
    return run_search(cfg, quiet=True)


def _snapshot(run_dir: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.iterdir())}


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / run.name
    shutil.copytree(run, dst)
    return dst


def _checkpoint_with(run_dir: Path, **changes) -> None:
    data = json.loads((run_dir / "checkpoint.json").read_text())
    data.update(changes)
    (run_dir / "checkpoint.json").write_text(json.dumps(data))


def _cache_with_table(run_dir: Path, ddl: str) -> None:
    for p in run_dir.glob("cache.sqlite*"):
        p.unlink()
    db = sqlite3.connect(run_dir / "cache.sqlite")
    db.execute(ddl)
    db.commit()
    db.close()


def _tamper(case: str, d: Path, marker: Path) -> None:
    ck = json.loads((d / "checkpoint.json").read_text())
    code = _marker_code(marker)
    if case == "checkpoint: code as an individual":
        _checkpoint_with(d, population=[{"prefix": code, "fitness": 0.5}] * len(ck["population"]))
    elif case == "checkpoint: scorer of the wrong shape":
        _checkpoint_with(d, scorer={"by_key": {"y_pred": {"fitness": "high", "evil": code}}})
    elif case == "checkpoint: scores of the wrong length":
        _checkpoint_with(d, scores=ck["scores"][:2])
    elif case == "checkpoint: hall of fame entry missing fields":
        _checkpoint_with(d, hall_of_fame=[{"prefix": "y_pred", "fitness": 0.5}])
    elif case == "checkpoint: generation past the config":
        _checkpoint_with(d, generation=10**9)
    elif case == "checkpoint: population of the wrong size":
        _checkpoint_with(d, population=ck["population"][:3], scores=ck["scores"][:3])
    elif case == "checkpoint: NaN":
        (d / "checkpoint.json").write_text(json.dumps({**ck, "elapsed": float("nan")}))
    elif case == "checkpoint: deeply nested":
        (d / "checkpoint.json").write_text(DEEP)
    elif case == "checkpoint: finished is text":
        _checkpoint_with(d, finished="yes")
    elif case == "config.json: code as the backend":
        cfg = json.loads((d / "config.json").read_text())
        (d / "config.json").write_text(json.dumps({**cfg, "backend": code}))
    elif case == "config.json: not UTF-8":
        (d / "config.json").write_bytes(b"\xff\xfe\x00{")
    elif case == "config.json: deeply nested":
        (d / "config.json").write_text(DEEP)
    elif case == "hall_of_fame.csv: wrong header, no rows":
        (d / "hall_of_fame.csv").write_text("a,b\n")
    elif case == "hall_of_fame.csv: empty":
        (d / "hall_of_fame.csv").write_text("")
    elif case == "hall_of_fame.csv: text in a number column":
        text = (d / "hall_of_fame.csv").read_text().splitlines()
        text[1] = text[1].replace(text[1].split(",")[1], code.replace(",", ";"), 1)
        (d / "hall_of_fame.csv").write_text("\n".join(text) + "\n")
    elif case == "generations.jsonl: wrong type":
        (d / "generations.jsonl").write_text('{"generation": 0, "best": "' + code + '"}\n')
    elif case == "generations.jsonl: negative generation":
        (d / "generations.jsonl").write_text('{"generation": -1}\n')
    elif case == "generations.jsonl: a bad line in the middle":
        lines = (d / "generations.jsonl").read_text().splitlines()
        (d / "generations.jsonl").write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    elif case == "cache.sqlite: wrong columns":
        _cache_with_table(d, "CREATE TABLE results (x TEXT)")
    elif case == "cache.sqlite: another program's database":
        _cache_with_table(d, "CREATE TABLE users (name TEXT, password TEXT)")
    else:
        raise AssertionError(case)


RUN_CASES = {  # case -> file the error must name
    "checkpoint: code as an individual": "checkpoint.json",
    "checkpoint: scorer of the wrong shape": "checkpoint.json",
    "checkpoint: scores of the wrong length": "checkpoint.json",
    "checkpoint: hall of fame entry missing fields": "checkpoint.json",
    "checkpoint: generation past the config": "checkpoint.json",
    "checkpoint: population of the wrong size": "checkpoint.json",
    "checkpoint: NaN": "checkpoint.json",
    "checkpoint: deeply nested": "checkpoint.json",
    "checkpoint: finished is text": "checkpoint.json",
    "config.json: code as the backend": "config.json",
    "config.json: not UTF-8": "config.json",
    "config.json: deeply nested": "config.json",
    "hall_of_fame.csv: wrong header, no rows": "hall_of_fame.csv",
    "hall_of_fame.csv: empty": "hall_of_fame.csv",
    "hall_of_fame.csv: text in a number column": "hall_of_fame.csv",
    "generations.jsonl: wrong type": "generations.jsonl",
    "generations.jsonl: negative generation": "generations.jsonl",
    "generations.jsonl: a bad line in the middle": "generations.jsonl",
    "cache.sqlite: wrong columns": "cache.sqlite",
    "cache.sqlite: another program's database": "cache.sqlite",
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_bad_run_files_stop_resume_before_anything_is_written(finished_run, tmp_path, case):
    run_dir = _copy(finished_run, tmp_path)
    marker = tmp_path / "hacked"
    _tamper(case, run_dir, marker)
    before = _snapshot(run_dir)
    with pytest.raises(store.RunFileError, match=re.escape(RUN_CASES[case])):
        resume(run_dir, quiet=True)
    # load_run reads every file but the cache, and does not parse the individuals
    if not case.startswith("cache.sqlite") and case != "checkpoint: code as an individual":
        with pytest.raises(store.RunFileError, match=re.escape(RUN_CASES[case])):
            store.load_run(run_dir)
    assert _snapshot(run_dir) == before  # nothing rewritten, nothing added
    assert not marker.exists()


def test_the_untampered_copy_resumes_and_a_finished_run_is_left_alone(finished_run, tmp_path):
    # The control for the cases above: the copy itself is a valid run, and being finished,
    # resuming it changes nothing.
    run_dir = _copy(finished_run, tmp_path)
    before = _snapshot(run_dir)
    assert resume(run_dir, quiet=True) == run_dir
    assert store.load_run(run_dir).finished and _snapshot(run_dir) == before


def test_cli_resume_reports_bad_run_files_in_one_line(finished_run, tmp_path):
    run_dir = _copy(finished_run, tmp_path)
    _tamper("cache.sqlite: another program's database", run_dir, tmp_path / "hacked")
    res = run_cli("resume", run_dir)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "cache.sqlite: not a gp-search fitness cache" in res.stderr


def test_text_that_looks_like_code_stays_text(finished_run, tmp_path):
    # Where a field is free text (a canonical form, a message), hostile text is read back as
    # text and never run.
    run_dir = _copy(finished_run, tmp_path)
    marker = tmp_path / "hacked"
    code = _marker_code(marker)
    rows = list(csv.reader(io.StringIO((run_dir / "hall_of_fame.csv").read_text())))
    rows[1][4:7] = [code, code, "3"]  # canonical, infix, size; later columns kept as written
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    (run_dir / "hall_of_fame.csv").write_text(out.getvalue())
    assert store.load_run(run_dir).hall_of_fame[0]["canonical"] == code
    cache = Cache(run_dir / "cache.sqlite")
    evil = EvalResult("error", message=code, loss=code, proxy="p", seed=1, budget=1)
    cache.put_many([(code, "p@1", 1, 1, evil)])
    assert cache.get(code, "p@1", 1, 1).message == code
    cache.db.execute("UPDATE results SET result = ? WHERE loss = ?", (code, code))
    with pytest.raises(store.RunFileError, match="cache.sqlite: corrupt cache entry"):
        cache.get(code, "p@1", 1, 1)
    cache.db.execute("UPDATE results SET result = ? WHERE loss = ?",
                     ('{"status": "ok", "accuracy": [1], "steps": 1}', code))
    with pytest.raises(store.RunFileError, match="cache.sqlite: corrupt cache entry"):
        cache.get(code, "p@1", 1, 1)
    cache.close()
    assert not marker.exists()


def test_a_torn_last_log_line_is_dropped_not_fatal(finished_run, tmp_path):
    # A kill in the middle of an append leaves a line without its newline: the log reads
    # without it, and resume rewrites the log without it.
    run_dir = _copy(finished_run, tmp_path)
    _checkpoint_with(run_dir, finished=False)  # killed after its last generation, say
    log = run_dir / "generations.jsonl"
    whole = log.read_text()
    log.write_text(whole + '{"generation": 2, "be')
    assert [g["generation"] for g in store.load_run(run_dir).generations] == [0, 1]
    resume(run_dir, quiet=True)
    assert log.read_text() == whole


def test_checkpoint_schema_matches_score():
    assert set(store._SCORE) == {f.name for f in fields(Score)}


# --- a full disk ---------------------------------------------------------------------------------

def _can_mount_tmpfs(where: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-r", "-m", "mount", "-t", "tmpfs", "-o", "size=16k",
                            "tmpfs", str(where)], check=False, capture_output=True)
    return probe.returncode == 0


def test_full_disk_is_refused_before_any_work(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_tmpfs(disk):
        pytest.skip("cannot mount a small tmpfs here (needs `unshare -r -m` and user namespaces)")
    # A 48 KiB filesystem, private to the command: the 64 KiB write probe cannot fit.
    script = ('mount -t tmpfs -o size=48k tmpfs "$1" && shift && exec "$@"')
    res = subprocess.run(["unshare", "-r", "-m", "sh", "-c", script, "sh", str(disk),
                          sys.executable, "-m", "gp_search", "run", "--proxy", "synthetic-mlp",
                          "--out", str(disk / "runs"), "--quiet"],
                         check=False, capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 2, res.stderr
    assert "cannot write run directory" in res.stderr and "No space left on device" in res.stderr
    assert "Traceback" not in res.stderr


# --- no pickle, no eval --------------------------------------------------------------------------

FORBIDDEN = {
    "pickle": r"\bimport pickle\b|\bfrom pickle\b|\bpickle\.|\bcPickle\b",
    "other serialisers that run code": r"\b(dill|cloudpickle|marshal|shelve)\b|joblib\.(load|dump)\(",
    "torch.load/save": r"torch\.(load|save)\(",
    "numpy pickles": r"allow_pickle\s*=\s*True",
    "eval/exec": r"(?<![\w.])(?<!def )(eval|exec)\(",
    "code from text": r"\bsympify\(|\bparse_expr\(|__import__\(|(?<![\w.])compile\(|yaml\.load\(",
}
# The CIFAR batch reader's allow-list unpickler:
ALLOWED = {("pickle", "gp_search/proxies/data/readers.py")}


def _sources() -> list[Path]:
    return sorted(p for d in ("gp_search", "proxies", "benchmarks")
                  for p in (ROOT / d).rglob("*.py"))


def _uses() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if code.strip().startswith(('"', "'")):  # prose in docstrings
                continue
            for what, pattern in FORBIDDEN.items():
                if re.search(pattern, code):
                    found.setdefault((what, rel), []).append(i)
    return found


def test_no_pickle_eval_or_exec_outside_the_allowed_places():
    uses = _uses()
    # The scan does see the one allowed use:
    assert ("pickle", "gp_search/proxies/data/readers.py") in uses
    unexpected = {k: v for k, v in uses.items() if k not in ALLOWED}
    assert not unexpected, f"forbidden uses (kind, file): lines {unexpected}"


def test_run_directory_holds_no_pickle(finished_run):
    for path in finished_run.iterdir():
        head = path.read_bytes()[:16]
        if path.name.startswith("cache.sqlite"):
            assert path.name != "cache.sqlite" or head.startswith(b"SQLite format 3\0")
            continue
        assert not head.startswith(b"\x80"), path  # every pickle protocol >= 2 starts so
        path.read_text(encoding="utf-8")  # text files: JSON, JSONL, CSV, Python source
