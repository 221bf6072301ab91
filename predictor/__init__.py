"""pytest-irene's library: model trees, IrEne energy prediction, profiles and meters.

Nothing here imports pytest; the ``irene`` CLI and the pytest plugin both sit on top of it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from predictor.errors import IreneError
from predictor.trace.tree import EnergyTree, Node

try:
    __version__ = version("pytest-irene")
except PackageNotFoundError:  # running from a source tree that is not installed
    from predictor._version import __version__

__all__ = ["EnergyTree", "IreneError", "Node", "__version__"]
