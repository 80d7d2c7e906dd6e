"""The SQLite fitness cache: one result per (loss key, proxy key, seed, budget), shared by runs.

A run keeps it as ``RUN_DIR/cache.sqlite`` (:mod:`gp_search.engine.rundir`), or in a file that
several runs share (``--cache PATH``). Results are stored as :class:`EvalResult` JSON, never pickle,
and every read is checked; another program's database is refused untouched.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from gp_search.proxies import EvalResult
from gp_search.engine.rundir import RunFileError

__all__ = ["Cache"]


class Cache:
    """SQLite fitness cache keyed by (loss key, proxy key, seed, budget).

    One writer (the search process); results are committed as they arrive, so a killed run
    retrains nothing it had finished.
    """

    COLUMNS = ("loss", "proxy", "seed", "budget", "result")

    def __init__(self, path: "str | Path"):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path)
            # Look before writing anything: another program's database is refused untouched.
            tables = [r[0] for r in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")]
            if tables:
                columns = tuple(r[1] for r in self.db.execute("PRAGMA table_info(results)"))
                if columns != self.COLUMNS:
                    self.db.close()
                    raise RunFileError(
                        f"{self.path}: not a gp-search fitness cache (tables {tables}; a cache "
                        f"has one table 'results' with columns {list(self.COLUMNS)}); give "
                        f"another --cache path or move the file away")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS results (loss TEXT, proxy TEXT, seed INTEGER,"
                            " budget INTEGER, result TEXT, PRIMARY KEY (loss, proxy, seed, budget))")
            self.db.commit()
        except sqlite3.DatabaseError as exc:
            raise RunFileError(f"{self.path}: not a usable SQLite fitness cache ({exc})") from None

    def get(self, loss: str, proxy: str, seed: int, budget: int) -> EvalResult | None:
        row = self.db.execute("SELECT result FROM results WHERE loss=? AND proxy=? AND seed=? "
                              "AND budget=?", (loss, proxy, seed, budget)).fetchone()
        if row is None:
            return None
        try:
            return EvalResult.from_dict(json.loads(row[0]))
        except (ValueError, TypeError, RecursionError) as exc:
            raise RunFileError(f"{self.path}: corrupt cache entry for {loss!r} ({exc})") from None

    def put_many(self, rows: list[tuple[str, str, int, int, EvalResult]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
                            [(lk, pk, s, b, json.dumps(r.to_dict())) for lk, pk, s, b, r in rows])
        self.db.commit()

    def results_at(self, proxy: str, budget: int) -> dict[tuple[str, int], EvalResult]:
        """Every cached result of one proxy (key) at one budget, by ``(loss key, seed)``."""
        out = {}
        for loss, seed, text in self.db.execute(
                "SELECT loss, seed, result FROM results WHERE proxy=? AND budget=?",
                (proxy, budget)):
            try:
                out[(loss, seed)] = EvalResult.from_dict(json.loads(text))
            except (ValueError, TypeError, RecursionError) as exc:
                raise RunFileError(f"{self.path}: corrupt cache entry for {loss!r} "
                                   f"({exc})") from None
        return out

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self.db.close()
