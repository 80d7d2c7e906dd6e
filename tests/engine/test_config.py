"""Search config: presets, validation messages, TOML/JSON files, CLI flags derived from fields."""

import argparse
import json

import pytest

from gp_search.engine import config as C
from gp_search.cli.search import add_config_flags, config_from_args


@pytest.mark.parametrize("name", sorted(C.PRESETS))
def test_presets_are_valid_and_round_trip(name):
    cfg = C.preset(name)
    assert C.SearchConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_paper_preset_uses_the_paper_primitives():
    assert C.preset("paper").primitive_set == "paper"


@pytest.mark.parametrize("field, value, words", [
    ("population", 1, "'population' must be in 2..100000; got 1"),
    ("population", 10**7, "'population' must be in 2..100000; got 10000000"),
    ("generations", 10**9, "'generations' must be in 0..100000"),
    ("crossover_prob", 1.5, "'crossover_prob' must be in [0, 1]; got 1.5"),
    ("backend", "mpi", "'backend' must be 'loky', 'sequential' or 'dask'"),
    ("proxy_weights", (1.0, 2.0), "'proxy_weights' must be empty or one positive weight per proxy"),
    ("seeds", "3", "'seeds' must be int, got '3'"),
    ("elitism", 40, "'elitism' must be in 0..population-1"),
    ("scheduler", "localhost:8786", "'scheduler' must be empty or an address"),
])
def test_bad_values_name_field_rule_and_value(field, value, words):
    with pytest.raises(ValueError) as info:
        C.SearchConfig(**{field: value})
    assert words in str(info.value)


def test_unknown_field_and_unknown_preset():
    with pytest.raises(ValueError, match=r"unknown config field\(s\) \['populaton'\]"):
        C.SearchConfig.from_dict({"populaton": 10})
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        C.preset("fast")


def test_toml_and_json_files(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('population = 10\nproxies = ["synthetic-mlp"]\nparsimony = 0\n')
    cfg = C.build(None, toml)
    assert cfg.population == 10 and cfg.proxies == ("synthetic-mlp",) and cfg.parsimony == 0.0
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"generations": 3}))
    assert C.build("quick", js, seed=5).generations == 3
    assert C.build("quick", js, seed=5).seed == 5


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("population = [")
    with pytest.raises(ValueError, match="bad.toml is not valid toml"):
        C.build(None, bad)
    code = tmp_path / "code.json"
    code.write_text('{"population": "__import__(\'os\').system(\'true\')"}')
    with pytest.raises(ValueError, match="code.json: config field 'population' must be int"):
        C.build(None, code)
    with pytest.raises(ValueError, match="cannot read config file"):
        C.build(None, tmp_path / "missing.toml")


def test_cli_flags_override_preset():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset")
    ap.add_argument("--config")
    add_config_flags(ap)
    args = ap.parse_args(["--population", "6", "--proxy", "synthetic-mlp", "--proxy", "digits-mlp",
                          "--no-successive-halving", "--seed-individual", "ngl"])
    cfg = config_from_args(args)
    assert cfg.preset == "quick" and cfg.population == 6
    assert cfg.proxies == ("synthetic-mlp", "digits-mlp")
    assert cfg.successive_halving is False and cfg.seed_individuals == ("ngl",)
