"""The :class:`Proxy` handle: a registered proxy by name (:func:`get`), rebuilt in another process
(:func:`from_dict`), scoring one loss or several.

Every loss is applied as its own definition says (expression losses: the mean over batch ×
classes, as in the published NGL code). The file-backed proxies read from ``data_root``
(default ``./data``) and never download: :meth:`Proxy.check_data` fails up front with the data
module's error naming the expected files (``gp_search.parallel.evaluate`` and the CLI call it before any
training), while a direct :meth:`Proxy.evaluate` without the files returns status ``error``
carrying that message, like any other failed evaluation.

Example:
    >>> from gp_search import proxies
    >>> proxies.get("synthetic-mlp", steps=50).evaluate("ce", seed=0).status
    'ok'
"""

from __future__ import annotations

import dataclasses
import os

from gp_search.lang import resolve
from gp_search.proxies import population
from gp_search.proxies.catalog import SPECS
from gp_search.proxies.data import DATASETS
from gp_search.proxies.spec import EvalResult, ProxySpec
from gp_search.proxies.train import dataset_for, one_thread, resolve_device, train_one

__all__ = ["Proxy", "batched_module", "from_dict", "get", "names"]

_FIELDS = {f.name: f for f in dataclasses.fields(ProxySpec)}


def names() -> list[str]:
    """The registered proxy names, in registry order."""
    return list(SPECS)


def _hashable(value):
    """Lists (e.g. from JSON) as tuples, so that a ProxySpec stays hashable."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def _normalised(field: str, value):
    """An override in the form a ProxySpec holds (``model_kw`` as sorted pairs, ``data_root`` as
    text); every rule is then checked by ProxySpec's own validator."""
    if field == "model_kw":
        items = value.items() if isinstance(value, dict) else value
        return tuple(sorted((str(k), _hashable(v)) for k, v in items))
    if field == "data_root" and value is not None:
        return os.fspath(value)
    return value


def get(name: str, /, **overrides) -> Proxy:
    """The registered proxy ``name``, with some of its :class:`ProxySpec` fields replaced.

    Args:
        name: one of :func:`names`.
        **overrides: ProxySpec fields, e.g. ``steps=50``, ``data_root="/data"``,
            ``model_kw={"hidden": (256,)}``; ``name`` itself cannot be overridden.

    Returns:
        The :class:`Proxy`.

    Raises:
        ValueError: unknown name or field (the message lists the valid ones), or a value that
            breaks the field's rule (ProxySpec's validator names the field and the rule).

    Example:
        >>> get("digits-mlp", steps=100).spec.steps
        100
    """
    if name not in SPECS:
        raise ValueError(f"unknown proxy {name!r}; known proxies: {', '.join(SPECS)}")
    bad = sorted(set(overrides) - set(_FIELDS) | ({"name"} & set(overrides)))
    if bad:
        valid = ", ".join(f for f in _FIELDS if f != "name")
        raise ValueError(f"unknown proxy field(s) {', '.join(bad)} for {name!r}; "
                         f"fields that can be overridden: {valid}")
    clean = {k: _normalised(k, v) for k, v in overrides.items()}
    return Proxy(dataclasses.replace(SPECS[name], **clean), clean)


def from_dict(data: dict) -> Proxy:
    """Inverse of :meth:`Proxy.to_dict`: how a worker process rebuilds its proxy.

    Args:
        data: ``{"name": ..., "overrides": {...}}`` for a registered proxy, or
            ``{"spec": {...ProxySpec fields...}}`` for one built by hand.

    Returns:
        The same proxy.
    """
    if "spec" in data:
        fields = {k: _hashable(v) if k == "model_kw" else v for k, v in data["spec"].items()}
        return Proxy(ProxySpec(**fields))
    return get(data["name"], **data.get("overrides", {}))


def batched_module():
    """The population training's face, :mod:`gp_search.proxies.population` (``pays_off``,
    ``train_population``); it always ships (kept for callers that asked for it by this name)."""
    return population


class Proxy:
    """A proxy task ready to score losses: ``evaluate(loss, seed) -> EvalResult``.

    Attributes:
        spec: the :class:`ProxySpec` (what decides results; ``spec.key()`` keys caches).
        overrides: the fields changed from the registered spec (what :meth:`to_dict` sends).
    """

    def __init__(self, spec: ProxySpec, overrides: dict | None = None):
        self.spec = spec
        self.overrides = dict(overrides or {})

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def budget(self) -> str:
        """The training budget in words with the optimiser it uses, e.g. ``"300 steps x batch 64,
        Adam lr 0.001"`` or ``"1200 steps x batch 64, SGD (momentum 0.9) lr 0.1"``."""
        s = self.spec
        optimiser = "SGD (momentum 0.9)" if s.optimizer == "sgd" else "Adam"
        return f"{s.steps} steps x batch {s.batch_size}, {optimiser} lr {s.lr:g}"

    @property
    def data_source(self) -> str:
        """Where the data comes from (the data module's description)."""
        return DATASETS.get(self.spec.dataset, self.spec.dataset)

    def to_dict(self) -> dict:
        """Plain data that rebuilds this proxy with :func:`from_dict` in another process."""
        if self.name in SPECS:
            same = get(self.name, **self.overrides).spec
            # data_root is not part of ProxySpec equality (it does not change results); compare it.
            if (same, same.data_root) == (self.spec, self.spec.data_root):
                return {"name": self.name, "overrides": dict(self.overrides)}
        return {"spec": dataclasses.asdict(self.spec)}

    def check_data(self) -> None:
        """Load the proxy's data now (once per process).

        Raises:
            FileNotFoundError: a file-backed dataset's files are missing; the message names
                them and the directories searched.
        """
        dataset_for(self.spec, "cpu")

    def _loss_or_error(self, loss, seed: int, steps: int | None):
        """The :class:`Loss` for ``loss``, or an ``error`` EvalResult when it cannot be read."""
        try:
            return resolve(loss)
        except Exception as exc:  # noqa: BLE001 - unreadable text is a status of that candidate
            return EvalResult("error", message=f"cannot read loss {str(loss)!r}: {exc}",
                              loss=str(loss), proxy=self.name, seed=int(seed),
                              budget=self.spec.steps if steps is None else int(steps),
                              metric=self.spec.metric)

    def evaluate(self, loss, seed: int, steps: int | None = None,
                 device: str = "cpu") -> EvalResult:
        """Train with ``loss`` for the budget and score it (sequential path, one torch thread).

        Args:
            loss: a :class:`gp_search.lang.losses.Loss`, a ``LossExpr``, or text (a reference name
                such as ``"ngl"`` or an expression).
            seed: decides initial weights and batch order (common random numbers).
            steps: optimiser steps instead of ``spec.steps``.
            device: ``"cpu"``, ``"cuda"`` or ``"auto"``.

        Returns:
            The :class:`EvalResult`; text that does not parse gives status ``error``.
        """
        found = self._loss_or_error(loss, seed, steps)
        if isinstance(found, EvalResult):
            return found
        with one_thread():
            return train_one(self.spec, found, seed, steps, resolve_device(device))

    def evaluate_many(self, losses, seed: int, steps: int | None = None, device: str = "cpu",
                      batched: bool | str = "auto") -> list[EvalResult]:
        """Score several losses with one seed along the proxy's path (one torch thread).

        Args:
            losses: losses as for :meth:`evaluate`.
            seed: one seed for all of them (same initial weights and batches).
            steps: optimiser steps instead of ``spec.steps``.
            device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
            batched: True (population-batched training), False (one training per loss), or
                ``"auto"``: the path :func:`gp_search.proxies.population.path_for` chooses by
                proxy and device alone (a population of one trains as a stack when that is the
                path), so a loss's result does not depend on the losses beside it.

        Returns:
            One :class:`EvalResult` per loss, in order.
        """
        if batched not in (True, False, "auto"):
            raise ValueError(f"batched must be True, False or 'auto', got {batched!r}")
        device = resolve_device(device)
        found = [self._loss_or_error(loss, seed, steps) for loss in losses]
        todo = [i for i, f in enumerate(found) if not isinstance(f, EvalResult)]
        with one_thread():
            if todo and (batched is True or (batched == "auto"
                                             and population.pays_off(self.spec, 1, device))):
                done = population.train_population(self.spec, [found[i] for i in todo], seed,
                                                   steps, device)
            else:
                done = [train_one(self.spec, found[i], seed, steps, device) for i in todo]
        for i, res in zip(todo, done):
            found[i] = res
        return found

    def __repr__(self) -> str:
        return f"Proxy({self.name!r}, {self.budget}, data={self.spec.dataset})"
