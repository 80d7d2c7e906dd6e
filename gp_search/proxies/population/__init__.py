"""Population training: P losses trained side by side in one stacked model, one step for all.

:func:`train_population` trains a population (the hand-written MLP stack, or ``torch.func``
for every other model); :func:`path_for` says how a proxy trains on a device (by proxy and
device alone) and :func:`result_key` keys its results by that path.
"""

from gp_search.proxies.population.choose import path_for, pays_off, result_key, train_population
from gp_search.proxies.population.loop import Population
from gp_search.proxies.population.programs import LossProgram

__all__ = ["LossProgram", "Population", "path_for", "pays_off", "result_key", "train_population"]
