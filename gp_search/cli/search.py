"""The ``gp-search run`` and ``gp-search resume`` commands, their flags derived from SearchConfig."""

from __future__ import annotations

import argparse
from dataclasses import fields

from gp_search.cli import options
from gp_search.engine import PRESETS, SearchConfig, build

_LIST_FLAGS = {"proxies": "--proxy", "proxy_weights": "--proxy-weight",
               "seed_individuals": "--seed-individual"}
_LIST_TYPES = {"proxies": str, "proxy_weights": float, "seed_individuals": str}
DEFAULT_PRESET = "quick"
"""The preset ``gp-search run`` uses with neither ``--preset`` nor ``--config``."""


def _shown(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value)) or "none"
    return repr(value)


def defaults_text(name: str, default) -> str:
    """What a flag's help says of its value when it is not given, read from :data:`PRESETS`
    at run time: where a preset sets the field, the value with no arguments (the default
    preset's), each other preset's and a preset-less ``--config``'s; elsewhere ``default X``.

    Example:
        >>> defaults_text("seed", 0)
        'default 0'
    """
    if not any(name in values for values in PRESETS.values()):
        return f"default {_shown(default)}"
    parts = [f"with no arguments {_shown(PRESETS[DEFAULT_PRESET].get(name, default))} "
             f"({DEFAULT_PRESET} preset)"]
    parts += [f"--preset {p}: {_shown(values.get(name, default))}"
              for p, values in PRESETS.items() if p != DEFAULT_PRESET]
    parts.append(f"--config without --preset: {_shown(default)}")
    return "; ".join(parts)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per SearchConfig field (default None = keep the preset/file value)."""
    g = p.add_argument_group("search configuration (override preset and --config)")
    for f in fields(SearchConfig):
        if f.name in ("preset", "tasks"):  # tasks: --task and its options (options.add_task)
            continue
        help_ = f"{f.metadata['help']} ({defaults_text(f.name, f.default)})".replace("%", "%%")
        if f.name in _LIST_FLAGS:
            g.add_argument(_LIST_FLAGS[f.name], dest=f.name, action="append",
                           type=_LIST_TYPES[f.name], default=None, help=help_ + "; repeatable")
        elif f.type == "bool":
            g.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                           action=argparse.BooleanOptionalAction, help=help_)
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            g.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None,
                           help=help_)


def config_from_args(args) -> SearchConfig:
    """The config: preset, then ``--config``, then the flags; ``--task`` adds tasks to the
    config's, and without ``--proxy`` the search scores the tasks (and ``--objective``) alone."""
    overrides = {f.name: getattr(args, f.name) for f in fields(SearchConfig)
                 if f.name not in ("preset", "tasks")}
    preset = args.preset if args.preset or args.config else DEFAULT_PRESET
    tables = options.task_tables(args)
    if (tables or args.objective) and args.proxies is None:
        overrides["proxies"] = []
    if args.objective:  # a script's path made absolute, so that workers find it
        from gp_search.engine import objective_path as path_of

        overrides["objective"] = path_of(args.objective)
    return build(preset, args.config, tasks=tables, **overrides)


def _exit_status(start) -> int:
    """Run ``start()``; 0 when it finishes, 130 / 143 when a signal stopped it."""
    from gp_search.engine import Interrupted

    try:
        start()
    except Interrupted as exc:  # SIGINT or SIGTERM during the search: checkpointed
        return exc.exit_status
    except KeyboardInterrupt:  # Ctrl-C before the search started
        return 130
    return 0


def cmd_run(args) -> int:
    from gp_search.api import run

    cfg = config_from_args(args)
    return _exit_status(lambda: run(cfg, quiet=args.quiet))


def cmd_resume(args) -> int:
    from gp_search.api import resume

    return _exit_status(lambda: resume(args.run_dir, quiet=args.quiet))


def add_commands(sub) -> None:
    p = sub.add_parser("run", help="search for a loss function (default: the quick preset)",
                       description="Evolve loss functions. With no arguments: the quick preset on "
                                   "embedded data (a few minutes on 2 CPU cores).")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help=f"start from a preset (default {DEFAULT_PRESET}; none with --config)")
    p.add_argument("--config", help="TOML or JSON file of config fields")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-generation lines")
    add_config_flags(p)
    options.add_task(p, steps=False)  # --steps is the config's (every proxy's and task's budget)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="continue a killed or interrupted run from its checkpoint")
    p.add_argument("run_dir", help="the run directory (results/runs/<run-id>)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_resume)
