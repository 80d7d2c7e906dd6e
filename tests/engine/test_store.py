"""Run files: checkpoint, cache, hall of fame and logs — round trips and clear errors."""

import json
import os
import random

import pytest

from gp_search.engine.cache import Cache
from gp_search.engine import rundir as store
from gp_search.engine.config import SearchConfig
from gp_search.proxies.spec import EvalResult


def test_checkpoint_round_trip_and_corruption(tmp_path):
    random.seed(7)
    state = {"generation": 3, "elapsed": 1.5, "population": [{"prefix": "y_pred", "fitness": 0.5}],
             "random_state": store.random_state_to_json(random.getstate()), "hall_of_fame": []}
    store.write_checkpoint(tmp_path, state)
    back = store.read_checkpoint(tmp_path)
    assert back["generation"] == 3 and back["random_state"] == random.getstate()
    text = (tmp_path / "checkpoint.json").read_text()
    for bad in (text[: len(text) // 2], "[]", json.dumps({**json.loads(text), "generation": "3"}),
                json.dumps({**json.loads(text), "format": "pickle"}),
                json.dumps({**json.loads(text), "population": [{"prefix": 1}]})):
        (tmp_path / "checkpoint.json").write_text(bad)
        with pytest.raises(store.RunFileError, match="checkpoint.json"):
            store.read_checkpoint(tmp_path)


def test_cache_round_trip_and_corrupt_file(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    r = EvalResult("ok", accuracy=0.9, steps=10, loss="y_pred", proxy="p", seed=1, budget=10)
    cache.put_many([("k", "p@1", 1, 10, r)])
    assert cache.get("k", "p@1", 1, 10).same_outcome(r)
    assert cache.get("k", "p@1", 2, 10) is None and len(cache) == 1
    cache.close()
    (tmp_path / "bad.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(store.RunFileError, match="bad.sqlite"):
        Cache(tmp_path / "bad.sqlite")


def test_cache_entry_with_a_text_number_is_corrupt(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    r = EvalResult("ok", accuracy=0.9, steps=10, loss="y_pred", proxy="p", seed=1, budget=10)
    cache.put_many([("k", "p@1", 1, 10, r)])
    cache.db.execute("UPDATE results SET result = replace(result, '0.9', '\"0.9\"')")
    cache.db.commit()
    with pytest.raises(store.RunFileError, match="accuracy.*must be a number"):
        cache.get("k", "p@1", 1, 10)
    cache.close()


def test_a_config_written_before_fitness_split_reads_as_test(tmp_path):
    from gp_search.engine.config import SearchConfig

    data = json.loads(SearchConfig().to_json())
    assert data.pop("fitness_split") == "val"  # new runs score on the validation part
    (tmp_path / "config.json").write_text(json.dumps(data))
    assert store.load_config(tmp_path).fitness_split == "test"


def test_hof_csv_round_trip(tmp_path):
    entries = [{"fitness": 0.91, "std": 0.01, "n": 2, "canonical": "a, b", "infix": "x", "size": 3}]
    (tmp_path / "hall_of_fame.csv").write_text(store.hof_csv(entries))
    back = store.read_hof_csv(tmp_path / "hall_of_fame.csv")
    assert back[0]["canonical"] == "a, b" and back[0]["rank"] == 1
    assert "nearest" not in back[0]  # an entry without the distance: the column left empty
    entries[0]["nearest"] = 0.4321
    (tmp_path / "hall_of_fame.csv").write_text(store.hof_csv(entries))
    assert store.read_hof_csv(tmp_path / "hall_of_fame.csv")[0]["nearest"] == 0.4321
    old = "rank,fitness_mean,fitness_std,n,canonical,infix,size\n1,0.91,0.01,2,a,x,3\n"
    (tmp_path / "hall_of_fame.csv").write_text(old)  # written before the nearest column
    assert store.read_hof_csv(tmp_path / "hall_of_fame.csv")[0]["fitness"] == 0.91
    (tmp_path / "hall_of_fame.csv").write_text("rank,x\n1,2\n")
    with pytest.raises(store.RunFileError, match="hall_of_fame.csv: line 2"):
        store.read_hof_csv(tmp_path / "hall_of_fame.csv")


def test_unwritable_output_is_refused_before_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(store.RunFileError, match="cannot write run directory"):
        store.new_run_dir(blocker / "runs", SearchConfig())
    if os.geteuid() != 0:  # root ignores directory permissions
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(store.RunFileError):
            store.new_run_dir(ro, SearchConfig())


def test_load_run_errors_name_files(tmp_path):
    with pytest.raises(store.RunFileError, match="not a run directory"):
        store.load_run(tmp_path / "nope")
    (tmp_path / "config.json").write_text('{"population": -1}')
    with pytest.raises(store.RunFileError, match="config.json"):
        store.load_run(tmp_path)


def test_generations_log_truncation(tmp_path):
    for g in range(4):
        store.append_generation(tmp_path, {"generation": g})
    store.truncate_generations(tmp_path, 1)
    assert [r["generation"] for r in store.read_generations(tmp_path)] == [0, 1]
    (tmp_path / "generations.jsonl").write_text('{"generation": 0}\nnot json\n')
    with pytest.raises(store.RunFileError, match="line 2"):
        store.read_generations(tmp_path)


def test_run_dir_names_are_the_contract(tmp_path):
    # Old runs resume only while these names stay as they were written.
    files = store.RunDir(tmp_path)
    names = {"config": "config.json", "env": "env.json", "generations": "generations.jsonl",
             "hall_of_fame": "hall_of_fame.csv", "checkpoint": "checkpoint.json",
             "cache": "cache.sqlite", "best": "best.py", "tasks_record": "tasks.json",
             "tasks": "tasks", "transfer": "transfer", "report": "report",
             "choice": "transfer/choice.json", "transfer_report": "transfer/report",
             "rediscovery_config": "rediscovery_config.json", "result": "result.json"}
    assert {k: getattr(files, k).relative_to(tmp_path).as_posix() for k in names} == names
