"""Population training: P losses trained side by side in one stacked model, one step for all.

:func:`train_population` trains a population (the hand-written MLP stack, or ``torch.func``
for every other model) and :func:`pays_off` says where that beats one training at a time.
"""

from gp_search.proxies.population.choose import pays_off, train_population
from gp_search.proxies.population.loop import Population
from gp_search.proxies.population.programs import LossProgram

__all__ = ["LossProgram", "Population", "pays_off", "train_population"]
