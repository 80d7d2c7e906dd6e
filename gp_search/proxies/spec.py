"""The proxy contract: a named task (data + model + budget) and the EvalResult every evaluation returns.

A proxy turns a loss into a number: train a small network with the loss for a fixed, short
budget and measure held-out accuracy. An evaluation never raises for a bad loss: the failure is
an :class:`EvalResult` status (Optuna's ``TrialState`` habit).

Statuses:

* ``ok`` — trained for the whole budget; ``accuracy`` is the held-out score, of the metric
  named in ``metric`` (accuracy, balanced accuracy, macro F1 or mIoU: the proxy's own).
* ``rejected`` — not trained: the loss cannot teach anything (e.g. it ignores ``y_pred``) or
  failed screening; costs no training.
* ``nan`` — the loss or its gradient became non-finite; training stopped at once.
* ``diverged`` — a parameter became non-finite (or exploded); training stopped at once.
* ``timeout`` — the training passed its time limit.
* ``error`` — anything else (message says what); the search goes on.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, fields
from enum import Enum

from gp_search.core import Status, rule, validate
from gp_search.proxies.metrics import METRICS

class TrainPath(str, Enum):
    """How a training ran: the path :func:`gp_search.proxies.population.path_for` chooses by
    proxy and device alone (never by how many candidates train together), recorded in every
    :class:`EvalResult` and, with the device kind and TF32, in the cache key
    (:func:`gp_search.proxies.population.result_key`). A ``str`` enum: ``TrainPath.SEQUENTIAL ==
    "sequential"`` and it writes to JSON as its value."""

    __str__ = str.__str__
    __format__ = str.__format__

    SEQUENTIAL = "sequential"
    """One candidate at a time (:func:`gp_search.proxies.train.train_one`)."""
    MLP_STACK = "mlp-stack"
    """The hand-written MLP stack (:mod:`gp_search.proxies.population.mlp`)."""
    CONV_STACK = "conv-stack"
    """The hand-written convolution stack (:mod:`gp_search.proxies.population.conv`)."""
    FUNC_STACK = "func-stack"
    """The ``torch.func`` stack (:mod:`gp_search.proxies.population.func`)."""


PATHS = tuple(p.value for p in TrainPath)
"""The training paths as plain strings, in :class:`TrainPath` order."""
STATUSES = tuple(s.value for s in Status)
"""The statuses as plain strings, in :class:`Status` order."""
METRIC_NAMES = tuple(METRICS)
"""The held-out metrics, in :data:`gp_search.proxies.metrics.METRICS` order (printed with
:func:`gp_search.proxies.metrics.label`)."""
OPTIMIZERS = ("adam", "sgd")
"""The optimisers a training can use (SGD with momentum 0.9: see gp_search.proxies.train)."""
TRANSFORM_DEFAULTS = {"relabel": "", "subsample": 0, "label_noise": 0.0, "data_seed": 0,
                      "long_tail": 0.0}
"""The task-transform fields of :class:`ProxySpec` and the values that mean "no transform"."""
RELABELS: dict[str, tuple[int, str]] = {
    "parity": (2, "even / odd class id (digits: even / odd digit)"),
    "half": (2, "class id < 5 / >= 5"),
    "mod3": (3, "class id mod 3"),
    "mod5": (5, "class id mod 5"),
}
"""Named class maps of a 10-class dataset into fewer classes: name -> (classes, rule); the values
of ``ProxySpec.relabel`` (applied by :func:`gp_search.proxies.data.transforms.relabel_map`)."""


@dataclass(frozen=True)
class EvalResult:
    """One evaluation of one loss on one proxy with one seed.

    Attributes:
        status: one of :data:`STATUSES`.
        accuracy: the held-out score in [0, 1], of the metric ``metric`` names (the field
            keeps its old name so that old JSON and caches read); ``nan`` unless ``status ==
            "ok"``.
        train_loss: mean training loss over the last steps (``nan`` when not trained).
        steps: optimiser steps taken.
        seconds: wall time of this evaluation (excluded from anything compared for equality).
        message: why, for any status but ``ok``.
        loss: the loss's key (reference name or canonical expression).
        proxy: proxy name.
        seed: the seed it trained with.
        budget: the step budget it was asked for (successive halving asks for less).
        metric: what ``accuracy`` holds, a :data:`METRIC_NAMES` name (the proxy's
            ``ProxySpec.metric``). JSON and caches written before it was recorded read as
            ``"accuracy"``.
        ece, temperature, ece_scaled: calibration on the held-out split
            (:func:`gp_search.proxies.calibration.measure`: expected calibration error, the
            fitted temperature, the ECE after temperature scaling fitted on the other half);
            ``nan`` when not measured (dense tasks, a validation split, a result cached before).
        path: the :data:`PATHS` name of how it trained. Results of one loss and seed are bit for
            bit equal on one machine only along one path (they agree in distribution across
            paths). JSON and caches written before it was recorded read as ``"sequential"``:
            the cache keys that did not change are the CPU sequential ones
            (:func:`gp_search.proxies.population.result_key`).
    """

    status: str = field(metadata={"help": "what became of the evaluation",
                                  "choices": tuple(Status)})
    accuracy: float = math.nan
    train_loss: float = math.nan
    steps: int = 0
    seconds: float = 0.0
    message: str = ""
    loss: str = ""
    proxy: str = ""
    seed: int = 0
    budget: int = 0
    metric: str = rule("accuracy", "what the accuracy field holds", choices=METRIC_NAMES)
    ece: float = math.nan
    temperature: float = math.nan
    ece_scaled: float = math.nan
    path: str = rule("sequential", "how it trained", choices=PATHS)

    def __post_init__(self):
        validate(self, "EvalResult field")

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN floats become ``None``)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "EvalResult":
        """Inverse of :meth:`to_dict`; unknown keys are refused with a clear error."""
        if not isinstance(data, dict):
            raise ValueError(f"an EvalResult must be a JSON object, got {type(data).__name__}")
        names = {f.name: f for f in fields(cls)}
        unknown = set(data) - set(names)
        if unknown:
            raise ValueError(f"unknown EvalResult field(s) {sorted(unknown)}")
        # JSON writes NaN as null; every other check is the fields' own (validate).
        kw = {k: (math.nan if v is None and names[k].type == "float" else v)
              for k, v in data.items()}
        if "status" not in kw:
            raise ValueError("an EvalResult needs a 'status'")
        return cls(**kw)

    def same_outcome(self, other: "EvalResult") -> bool:
        """Equal in everything but wall time (what reproducibility promises)."""
        a, b = self.to_dict(), other.to_dict()
        a.pop("seconds"), b.pop("seconds")
        return a == b


@dataclass(frozen=True)
class ProxySpec:
    """Everything that decides a proxy's result; its :meth:`key` keys the fitness cache.

    Attributes:
        name: registry name, e.g. ``"digits-mlp"``.
        dataset: :func:`gp_search.proxies.data.dataset.load` name.
        model: :func:`gp_search.proxies.models.build` kind.
        model_kw: keyword arguments of the model (as a sorted tuple of pairs, hashable).
        steps: optimiser steps of the full budget.
        batch_size: training batch size.
        lr: learning rate of ``optimizer`` (Adam: betas 0.9/0.999, eps 1e-8, no weight decay;
            SGD: momentum 0.9, no weight decay).
        eval_batch: batch size for the held-out evaluation (memory only; never the result).
        time_limit: seconds after which a training stops with status ``timeout``.
        description: one line for listings.
        data_root: where file-backed datasets live (None for embedded data).
        split: what the accuracy is measured on: ``"test"`` (the dataset's test split) or
            ``"val"`` (a fixed, stratified fifth of the training split held out and not trained
            on — :func:`gp_search.proxies.data.dataset.validation_split` — for model selection such as a search's
            fitness, so the test split stays unseen).
        optimizer: ``"adam"`` (most registered proxies) or ``"sgd"`` (SGD with momentum 0.9, no
            weight decay; an expression loss trains multiplied by its scale
            :func:`gp_search.lang.losses.loss_scale`; set ``lr`` too: SGD needs a larger one,
            see :mod:`gp_search.proxies.train`).
        relabel: a class map of :data:`RELABELS` applied to both splits
            (e.g. ``"parity"``: digits even / odd, 2 classes); ``""`` keeps the labels.
        subsample: training samples kept (stratified, drawn with ``data_seed``); 0 keeps all.
        label_noise: fraction of training labels replaced by another class, drawn uniformly
            with ``data_seed`` (symmetric noise); test labels stay clean. 0 means none.
        data_seed: seeds ``subsample``, ``long_tail`` and ``label_noise``: fixed per task, so
            every loss and every training seed sees the same data (the comparison stays paired).
        long_tail: class imbalance of the training split: the ratio (>= 1) of the most to the
            least frequent class, counts falling geometrically with the class id
            (:func:`gp_search.proxies.data.transforms.transform`); the test split stays as it is. 0 means
            none.
        mixup: mixup's Beta(α, α) parameter α: every training batch is replaced by convex
            combinations of itself and a permutation of itself, inputs and one-hot targets
            alike, one weight per batch (:func:`gp_search.proxies.data.transforms.mixup_plan`), so losses
            train on probability targets. 0 means none.
        metric: what :attr:`EvalResult.accuracy` holds: a :data:`gp_search.proxies.metrics.
            METRICS` name (``"accuracy"``, ``"balanced_accuracy"``, ``"macro_f1"``, ``"miou"``),
            read from the confusion matrix of the held-out split.
    """

    name: str
    dataset: str
    model: str
    model_kw: tuple = ()
    steps: int = rule(300, "optimiser steps of the full budget", min=1)
    batch_size: int = rule(64, "training batch size", min=1)
    lr: float = rule(1e-3, "learning rate of the optimizer (Adam or SGD)", above=0.0)
    eval_batch: int = rule(2048, "batch size of the held-out evaluation", min=1)
    time_limit: float = rule(600.0, "seconds before a training stops with 'timeout'", above=0.0)
    description: str = ""
    data_root: str | None = field(default=None, compare=False)
    split: str = rule("test", "what the accuracy is measured on", choices=("test", "val"))
    optimizer: str = rule("adam", "the optimiser (SGD: momentum 0.9, loss times its scale)",
                          choices=OPTIMIZERS)
    relabel: str = rule("", "a class map of RELABELS ('' keeps the labels)",
                        choices=("", *RELABELS))
    subsample: int = rule(0, "training samples kept", min=0,
                          note="(0: the whole training split, else a number of samples)")
    label_noise: float = rule(0.0, "fraction of training labels replaced by another class",
                              check=(lambda _, v: 0 <= v < 1, "be a fraction in [0, 1) of "
                                     "training labels to corrupt"))
    data_seed: int = rule(0, "seeds subsample, long_tail and label_noise", min=0)
    metric: str = rule("accuracy", "the held-out metric", choices=METRIC_NAMES)
    long_tail: float = rule(0.0, "most / least frequent training class",
                            check=(lambda _, v: v == 0 or 1 <= v <= 1000, "be 0 (balanced as "
                                   "loaded) or the ratio in [1, 1000] of the most to the least "
                                   "frequent training class"))
    mixup: float = rule(0.0, "mixup's Beta(alpha, alpha) parameter", min=0, max=100,
                        note="(0: none, else alpha)")

    def __post_init__(self):
        validate(self, "proxy field")

    def key(self) -> str:
        """Stable hash of what changes results (not the time limit, the description or paths)."""
        payload = {"dataset": self.dataset, "model": self.model, "model_kw": list(self.model_kw),
                   "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr,
                   "name": self.name}
        if self.split != "test":  # keys of test-split results stay what they always were
            payload["split"] = self.split
        if self.optimizer != "adam":  # keys of Adam results stay what they always were
            payload["optimizer"] = self.optimizer
        if self.metric != "accuracy":  # keys of accuracy results stay what they always were
            payload["metric"] = self.metric
        if self.mixup:  # likewise: only mixup changes it
            payload["mixup"] = self.mixup
        for name, default in TRANSFORM_DEFAULTS.items():  # likewise: only a transform changes it
            if getattr(self, name) != default:
                payload[name] = getattr(self, name)
        blob = json.dumps(payload, sort_keys=True).encode()
        return f"{self.name}@" + hashlib.sha1(blob).hexdigest()[:12]


def check_transform(**settings) -> None:
    """Refuse bad task-transform settings (``relabel``, ``subsample``, ``label_noise``,
    ``data_seed``, ``long_tail``, ``mixup``) by :class:`ProxySpec`'s own rules.

    Raises:
        ValueError: ``proxy field '<name>' must …; got <value>``.

    Example:
        >>> check_transform(label_noise=1.0)
        Traceback (most recent call last):
        ...
        ValueError: proxy field 'label_noise' must be a fraction in [0, 1) of training labels to corrupt; got 1.0
    """
    unknown = set(settings) - {*TRANSFORM_DEFAULTS, "mixup"}
    if unknown:
        raise TypeError(f"not a transform setting: {', '.join(sorted(unknown))}")
    ProxySpec("transform", "", "", **settings)
