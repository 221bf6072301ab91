"""pytest-irene's library: model trees, IrEne energy prediction, profiles, budgets and meters.

The four stages, one subpackage each: ``predictor.trace`` (a model and its inputs -> a tree),
``predictor.learn`` (per-node energies: regressors, aggregation, profiles), ``predictor.gate``
(budgets, checks, reports: the engine under the pytest plugin and ``irene budgets check``) and
``predictor.measure`` (meters and calibration on real hardware). Nothing here imports pytest.

The small public API, imported lazily (``import predictor`` loads no torch):

- :func:`predict` (``predictor.api``): a model and its inputs -> the predicted tree;
- :func:`predict_generation` (``predictor.api``) with a :class:`Workload`
  (``predictor.trace.workload``): a causal LM's generation -> joules per phase, per output
  token and per request, and the per-module energy of a decode step;
- :func:`build_tree` (``predictor.trace.tracer``): the tree with static features only;
- :func:`load_profile` (``predictor.learn.profile``), :func:`load_budgets`
  (``predictor.gate.budgets``), :func:`check_tree` (``predictor.gate.checks``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from predictor.errors import IreneError
from predictor.trace.tree import EnergyTree, Node

if TYPE_CHECKING:
    from predictor.api import predict, predict_generation
    from predictor.gate.budgets import load_budgets
    from predictor.gate.checks import check_tree
    from predictor.learn.profile import load_profile
    from predictor.trace.tracer import build_tree
    from predictor.trace.workload import Workload

try:
    __version__ = version("pytest-irene")
except PackageNotFoundError:  # running from a source tree that is not installed
    from predictor._version import __version__

__all__ = [
    "EnergyTree",
    "IreneError",
    "Node",
    "Workload",
    "__version__",
    "build_tree",
    "check_tree",
    "load_budgets",
    "load_profile",
    "predict",
    "predict_generation",
]

_LAZY: dict[str, str] = {
    "predict": "predictor.api",
    "predict_generation": "predictor.api",
    "Workload": "predictor.trace.workload",
    "build_tree": "predictor.trace.tracer",
    "load_profile": "predictor.learn.profile",
    "load_budgets": "predictor.gate.budgets",
    "check_tree": "predictor.gate.checks",
}


def __getattr__(name: str) -> Any:
    """The public functions, imported on first use (their modules import torch or numpy)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'predictor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
