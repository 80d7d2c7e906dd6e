"""The flags several commands share (``--seeds``, ``--jobs``, ``--device``), declared once.

Every command reads them as text and parses them with :func:`gp_search.seeds.seed_list` and
:func:`gp_search.seeds.job_count` inside the command, so a bad value is one line and exit code 2
(:func:`gp_search.cli.main.main`), whichever command it was given to.
"""

from __future__ import annotations

JOBS_DEFAULT = "1"
DEVICE_DEFAULT = "auto"


def add_seeds(p, default: "str | None" = "5", minimum: int = 1, extra: str = "") -> None:
    """``--seeds``: a count N (seeds 0..N-1) or a list such as 3,7,9."""
    least = f", at least {minimum}" if minimum > 1 else ""
    p.add_argument("--seeds", default=default,
                   help=f"number of seeds (0..N-1{least}) or a list such as 3,7,9"
                        f"{extra} (default {default})")


def add_jobs(p, extra: str = "") -> None:
    """``--jobs``: worker processes, -1 for one per core."""
    p.add_argument("--jobs", default=JOBS_DEFAULT,
                   help=f"worker processes (-1: one per core){extra} (default {JOBS_DEFAULT})")


def add_device(p) -> None:
    """``--device``: where trainings run."""
    p.add_argument("--device", default=DEVICE_DEFAULT,
                   help=f"cpu, cuda, cuda:N or auto (default {DEVICE_DEFAULT})")


def write_outputs(write, out, counts: str, seconds: float) -> None:
    """Call ``write()`` (which returns the files written) and print where they went; a failed
    write is a ``ValueError`` naming ``out`` (one line, exit code 2)."""
    try:
        files = write()
    except OSError as exc:
        raise ValueError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"\n{counts} in {seconds:.0f} s; written to {out}: {', '.join(f.name for f in files)}")
