"""Shared test helpers: the repository root and a CLI runner in a real subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd=None, timeout=600, env=None):
    """Run ``python -m gp_search ARGS`` in a subprocess; returns CompletedProcess (text)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}  # env may set PYTHONPATH
    return subprocess.run([sys.executable, "-m", "gp_search", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.fixture
def cli():
    return run_cli


def reproduce_cli(argv):
    """``gp-search reproduce-ngl …`` in this process (its exceptions propagate), recording the
    command line as :func:`gp_search.cli.main.main` does."""
    import argparse

    from gp_search.cli.reproduce import add_commands
    from gp_search.core.environment import recording

    ap = argparse.ArgumentParser(prog="gp-search")
    add_commands(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    with recording(["gp-search", *argv]):
        return args.func(args)


@pytest.fixture
def one_torch_thread():
    """One torch thread (results do not depend on it; the shared test machine is faster so)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
