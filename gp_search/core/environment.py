"""The machine a result was made on (CPU, its kernels, threads, versions) and what that changes.

Every run directory and every results directory written by ``compare`` / ``reproduce-ngl``
gets an ``env.json`` (:func:`write_env`): the exact command line (:func:`command`, recorded as
given, never rebuilt from parsed arguments) and :func:`cpu_fingerprint`; the Markdown files quote
:func:`command_line` and :func:`versions`.

What is bit-for-bit: on one machine (the same ``fingerprint["hash"]``), a training gives the
same numbers for any worker count and any backend (one torch thread per training, seeds drawn
before dispatch). What is not: on another CPU, MKL and oneDNN pick other kernels (other SIMD
widths, other summation orders); the rounding differences grow through a training and flip
borderline predictions. Measured (issue 11, Intel Xeon against the AMD EPYC that made
``results/ngl``): 500-step ``mnist1d-cnn`` trainings moved by up to 12 of 1,000 test images
(10 of 14 differed), ``digits-mlp`` trainings not at all. :func:`cross_cpu_tolerance` turns
that into a per-training tolerance.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import re
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ENV_FILE = "env.json"
"""The file :func:`write_env` writes into a run or results directory."""
CROSS_CPU_DRIFT = {"cnn": 12 / 1000, "mlp": 0.0}
"""Largest fraction of evaluated images whose prediction moved between two CPUs, per training,
by model family (``mnist1d-cnn``: 12 of 1,000 test images; ``digits-mlp``: none of 360)."""
DRIFT_MARGIN = 1.5
"""Factor on the measured drift: two CPUs measured are not every CPU."""


def _cpu_model() -> tuple[str, str]:
    vendor, model = "", platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "vendor_id" and not vendor:
                vendor = value.strip()
            elif key.strip() == "model name":
                model = value.strip()
                break
    except OSError:
        pass
    return vendor, model


def _mkl_and_onednn(config: str) -> dict:
    """MKL and oneDNN versions from ``torch.__config__.show()`` (which ISA they dispatch to is
    decided at run time from the CPU; the capability below says which one torch uses)."""
    mkl = re.search(r"Math Kernel Library Version ([^\s]+)", config)
    dnn = re.search(r"MKL-DNN (v[\d.]+)", config)
    return {"mkl": mkl[1] if mkl else None, "onednn": dnn[1] if dnn else None}


def cpu_fingerprint() -> dict:
    """What decides float results on this machine, as JSON-able data, with a short hash.

    Returns:
        ``vendor``, ``model`` (from /proc/cpuinfo), ``cores``, ``torch_cpu_capability`` (the SIMD
        level torch's kernels use, e.g. ``AVX2``), ``mkl``, ``onednn``, ``mkldnn_enabled``,
        ``torch_threads``, ``torch``, ``numpy``, ``python``, ``os``; and ``hash``: 12 hex digits
        over the parts that decide float results (vendor, model, capability, MKL, oneDNN,
        torch, numpy). Equal hashes: numbers reproduce bit for bit.

    Example:
        >>> len(cpu_fingerprint()["hash"])
        12
    """
    import numpy
    import torch

    vendor, model = _cpu_model()
    out = {"vendor": vendor, "model": model, "cores": os.cpu_count(),
           "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
           **_mkl_and_onednn(torch.__config__.show()),
           "mkldnn_enabled": bool(torch.backends.mkldnn.is_available()
                                  and torch.backends.mkldnn.enabled),
           "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
           "numpy": numpy.__version__, "python": platform.python_version(),
           "os": platform.platform()}
    deciding = [out[k] for k in ("vendor", "model", "torch_cpu_capability", "mkl", "onednn",
                                 "torch", "numpy")]
    out["hash"] = hashlib.sha256(json.dumps(deciding).encode()).hexdigest()[:12]
    return out


_RECORDED: list[list[str]] = []  # the command lines gp_search.cli.main is running (a stack)


@contextmanager
def recording(argv: list[str]):
    """While inside, :func:`command` is ``argv`` (``gp-search`` called in-process with a list of
    arguments records those, not the caller's ``sys.argv``)."""
    _RECORDED.append(list(argv))
    try:
        yield
    finally:
        _RECORDED.pop()


def command(argv: list[str] | None = None) -> list[str]:
    """The command line being run: ``argv`` if given, else the one :func:`recording` holds,
    else ``sys.argv``; a ``gp-search`` entry point (console script or ``python -m gp_search``)
    is written ``gp-search``.

    Example:
        >>> command(["/venv/bin/gp-search", "compare", "--seeds", "5"])
        ['gp-search', 'compare', '--seeds', '5']
    """
    words = list(argv if argv is not None else _RECORDED[-1] if _RECORDED else sys.argv)
    if words and Path(words[0]).name in ("gp-search", "__main__.py"):
        words[0] = "gp-search"
    return words


def command_line(argv: list[str] | None = None) -> str:
    """:func:`command` as one shell-quoted line, for the Markdown files.

    Example:
        >>> command_line(["gp-search", "run", "--out", "my runs"])
        "gp-search run --out 'my runs'"
    """
    return shlex.join(command(argv))


def versions() -> dict:
    """Versions and machine in one flat record, for the last line of ``compare.md`` and
    ``rediscovery.md`` (the full record is ``env.json``'s :func:`cpu_fingerprint`).

    Returns:
        ``python``, ``torch``, ``numpy``, ``sympy``, ``deap``, ``cpu`` (model and cores), ``os``
        and ``date``.
    """
    import deap
    import numpy
    import sympy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "sympy": sympy.__version__, "deap": deap.__version__,
            "cpu": f"{_cpu_model()[1]} ({os.cpu_count()} cores)", "os": platform.platform(),
            "date": time.strftime("%Y-%m-%d")}


TF32_ENV = "GP_SEARCH_TF32"
"""Environment variable that turns TF32 on for CUDA trainings (``1``); off by default, so that
CUDA trainings do float32 arithmetic as the CPU does (read by every worker process)."""


def tf32_enabled() -> bool:
    """Whether CUDA trainings use TF32 (``GP_SEARCH_TF32=1``)."""
    return os.environ.get(TF32_ENV, "0") == "1"


def accelerator() -> dict:
    """The CUDA side of the machine: ``cuda`` (available), ``devices`` (names, by index),
    ``cuda_version``, ``cudnn`` and ``tf32`` (:func:`tf32_enabled`)."""
    import torch

    ok = torch.cuda.is_available()
    return {"cuda": ok, "devices": [torch.cuda.get_device_name(i)
                                    for i in range(torch.cuda.device_count())] if ok else [],
            "cuda_version": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if ok else None, "tf32": tf32_enabled()}


def write_env(directory: "str | Path", argv: list[str] | None = None) -> Path:
    """Write ``directory/env.json``: the command line (:func:`command`),
    :func:`cpu_fingerprint` and :func:`accelerator`. Returns its path."""
    path = Path(directory) / ENV_FILE
    record = {"command": command(argv), "fingerprint": cpu_fingerprint(),
              "accelerator": accelerator()}
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def read_fingerprint(directory: "str | Path") -> dict | None:
    """The fingerprint recorded in ``directory/env.json``, or None where there is none."""
    path = Path(directory) / ENV_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("fingerprint")


def same_machine(recorded: dict | None) -> bool:
    """Whether numbers recorded with ``recorded`` must reproduce bit for bit here (a missing
    fingerprint counts as another machine)."""
    return recorded is not None and recorded.get("hash") == cpu_fingerprint()["hash"]


def cross_cpu_tolerance(model: str, n_images: int) -> float:
    """Accuracy tolerance for one training of a proxy's ``model`` compared across CPUs, on
    ``n_images`` evaluated.

    ``ceil(DRIFT_MARGIN * CROSS_CPU_DRIFT[family] * n_images)`` images, at least one (family
    ``mlp`` for ``mlp`` models, ``cnn`` for every other, convolutional, model): predictions flip
    at a rate, so the count scales with the images of the split actually scored (validation
    accuracies: the validation split's size).

    Example:
        >>> round(cross_cpu_tolerance("cnn1d", 800) * 800)   # mnist1d-cnn, validation split
        15
        >>> round(cross_cpu_tolerance("mlp", 287) * 287)     # digits-mlp: one image
        1
    """
    rate = CROSS_CPU_DRIFT["mlp" if model == "mlp" else "cnn"]
    images = max(1, math.ceil(DRIFT_MARGIN * rate * n_images - 1e-9))
    return images / n_images
