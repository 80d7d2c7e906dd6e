"""Held-out tasks that reflect how people train: long-tailed training sets and soft targets.

Registered with the other proxies (:data:`gp_search.proxies.registry.SPECS`) and placed in the
nested suites by :data:`gp_search.proxies.data.transforms.SUITES` (why each: ``TASK_NOTES``). The
transforms they use, ``long_tail`` and ``mixup``, are :mod:`gp_search.proxies.data.transforms`'.
"""

from __future__ import annotations

from gp_search.proxies.spec import ProxySpec

PRACTICE_TASKS: tuple[ProxySpec, ...] = (
    ProxySpec("t-digits-lt-mlp", "digits", "mlp", (("hidden", (128,)),), steps=1200,
              batch_size=64, lr=1e-3, long_tail=20.0, metric="balanced_accuracy",
              description="transfer, long-tailed: digits, training classes 20:1 (139 ... 7 "
              "samples), balanced test split, MLP 64-128-10, Adam lr 1e-3, batch 64, 1200 steps, "
              "balanced accuracy"),
    ProxySpec("t-tabular20-lt-mlp", "tabular-20", "mlp", (("hidden", (64, 64)),), steps=1200,
              batch_size=64, lr=1e-3, long_tail=20.0, metric="balanced_accuracy",
              description="transfer, long-tailed, 20 classes: make_classification tabular data, "
              "training classes 20:1, balanced test split, MLP 20-64-64-20, Adam lr 1e-3, batch "
              "64, 1200 steps, balanced accuracy"),
    ProxySpec("t-digits-mixup-mlp", "digits", "mlp", (("hidden", (128,)),), steps=1200,
              batch_size=64, lr=1e-3, mixup=0.4, description="transfer, soft targets: digits "
              "with mixup (alpha 0.4), MLP 64-128-10, Adam lr 1e-3, batch 64, 1200 steps"),
    ProxySpec("t-tabular3-mixup-mlp", "tabular-3", "mlp", (("hidden", (64, 64)),), steps=1200,
              batch_size=64, lr=1e-3, mixup=0.4, description="transfer, soft targets, 3 "
              "classes: make_classification tabular data with mixup (alpha 0.4), MLP "
              "20-64-64-3, Adam lr 1e-3, batch 64, 1200 steps"),
)
"""Held-out tasks that reflect how people train, registered with the other proxies
(:data:`gp_search.proxies.registry.SPECS`): long-tailed training splits (class counts falling
geometrically 20:1, the test split balanced as loaded, scored by balanced accuracy) and soft
targets (mixup with α = 0.4, as Zhang et al. 2018 used on ImageNet; one λ per batch)."""

