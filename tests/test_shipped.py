"""The shipped results in results/ngl: every command regenerate.sh runs parses with today's CLI,
the lever summaries are complete and listed, and the proxy rediscovery's NGL reference
regenerates."""

import json
import re
import shlex

import pytest
from conftest import ROOT

from gp_search.cli.main import build_parser
from gp_search.rediscovery.targeted import RediscoveryConfig

SHIPPED = ROOT / "results" / "ngl"
SCRIPT = SHIPPED / "regenerate.sh"


def _commands() -> list[list[str]]:
    """The gp-search command lines of regenerate.sh, continuation lines joined, each lever of
    its here-document expanded the way the loop expands it."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines()]
    out = []
    for ln in lines:
        if ln.startswith("gp-search ") and "--help" not in ln:
            out.append(shlex.split(ln.replace('"${args[@]}"', "").replace('"$name"', "NAME")))
    levers = text.split("<<'LEVERS'\n", 1)[1].split("\nLEVERS", 1)[0].splitlines()
    lever_cmd = next(c for c in out if "NAME" in c)
    for lever in levers:
        name, *sets = lever.split()
        cmd = [name if a == "NAME" else a for a in lever_cmd]
        out.append(cmd + [x for s in sets for x in ("--set", s)])
    return [c for c in out if "NAME" not in c]


def test_every_regenerate_command_parses():
    commands = _commands()
    assert len(commands) == 3 + 8  # compare, target, proxy and the 8 levers
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv[1:])
        assert callable(args.func), argv
        if argv[1] == "reproduce-ngl" and args.mode == "target" and args.set:
            from gp_search.cli.reproduce import parse_settings

            RediscoveryConfig(**parse_settings(args.set))  # every --set names a real lever


def test_lever_summaries_are_complete_and_listed():
    fields = set(RediscoveryConfig().to_dict()) - {"seed", "out"}
    main = (SHIPPED / "rediscovery.md").read_text()
    names = [c[c.index("--table-name") + 1] for c in _commands() if "rediscovery_levers" in
             " ".join(c)]
    for name in names:
        summary = json.loads((SHIPPED / "rediscovery_levers" / f"{name}.json").read_text())
        assert set(summary["settings"]) == fields, name
        assert 1 <= summary["n"] and 0 <= summary["exact"] <= summary["behavioural"] <= summary["n"]
        assert f"| {name} | " in main, f"rediscovery.md does not list the lever {name}"


def test_shipped_target_table_counts_match_its_rows():
    rows = (SHIPPED / "rediscovery.csv").read_text().splitlines()[1:]
    levels = [r.split(",")[1] for r in rows]
    md = (SHIPPED / "rediscovery.md").read_text()
    exact = re.search(r"exact success: (\d+)/(\d+) seeds", md)
    assert exact and int(exact[1]) == levels.count("exact") and int(exact[2]) == len(rows) == 10


def test_proxy_rediscovery_ngl_reference_regenerates():
    """NGL's proxy fitness on the search's own training seeds: 4 trainings (2 proxies x 2
    seeds). Tolerance: one test image per training (1/1000 on mnist1d, 1/360 on digits), as in
    the golden test."""
    from gp_search.rediscovery import proxy as PR
    from gp_search.search.config import SearchConfig
    from gp_search.search.runner import draw_training_seeds

    shipped = json.loads((SHIPPED / "proxy_rediscovery.json").read_text())
    cfg = SearchConfig.from_dict(shipped["config"], "proxy_rediscovery.json")
    assert cfg == PR.proxy_config(seed=cfg.seed, jobs=cfg.jobs, out=cfg.out)  # the paper preset
    seeds = draw_training_seeds(cfg)
    assert seeds == shipped["search_seeds"]
    values = PR.weighted(PR.accuracies(["ngl"], cfg, seeds)["ngl"], cfg)
    tol = (2 / 1000 + 1 / 360) / 3 + 1e-9  # one image per training, weighted 2:1
    assert values == pytest.approx(shipped["ngl_fitness"]["values"], abs=tol)
