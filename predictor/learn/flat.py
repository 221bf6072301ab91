"""A forest of energy trees flattened into arrays, so a level is a handful of numpy operations.

Nodes are stored in pre-order, tree after tree; each has its parent's index (-1 for a root), its
depth and its tree's index. Aggregation and reconciliation walk it depth by depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from predictor.trace.tree import EnergyTree, Node

__all__ = ["Array", "Flat", "IntArray"]

#: Per-node float64 values (energies, features), and node indices.
Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass
class Flat:
    """Trees flattened in pre-order: parent index (-1 for roots), depth, tree index per node."""

    nodes: list[Node]
    parent: IntArray
    depth: IntArray
    tree: IntArray
    is_leaf: npt.NDArray[np.bool_]
    n_trees: int

    @classmethod
    def of(cls, trees: Sequence[EnergyTree]) -> Flat:
        nodes: list[Node] = []
        parent: list[int] = []
        depth: list[int] = []
        tree_idx: list[int] = []
        for t, tree in enumerate(trees):
            stack: list[tuple[Node, int, int]] = [(tree.root, -1, 0)]
            while stack:
                node, par, d = stack.pop()
                me = len(nodes)
                nodes.append(node)
                parent.append(par)
                depth.append(d)
                tree_idx.append(t)
                stack.extend((c, me, d + 1) for c in reversed(node.children))
        return cls(
            nodes=nodes,
            parent=np.asarray(parent, dtype=np.int64),
            depth=np.asarray(depth, dtype=np.int64),
            tree=np.asarray(tree_idx, dtype=np.int64),
            is_leaf=np.asarray([not n.children for n in nodes], dtype=bool),
            n_trees=len(trees),
        )

    def measured(self) -> Array:
        return np.asarray(
            [np.nan if n.measured_energy_j is None else n.measured_energy_j for n in self.nodes],
            dtype=np.float64,
        )

    def child_sum(self, values: Array) -> Array:
        """Per node, the sum of ``values`` over its children (0 for leaves)."""
        out = np.zeros(len(self.nodes), dtype=np.float64)
        has_parent = self.parent >= 0
        np.add.at(out, self.parent[has_parent], values[has_parent])
        return out

    def depths_bottom_up(self) -> list[IntArray]:
        """Indices of non-leaf nodes grouped by depth, deepest first."""
        inner = np.flatnonzero(~self.is_leaf)
        out: list[IntArray] = []
        for d in sorted(set(self.depth[inner].tolist()), reverse=True):
            out.append(inner[self.depth[inner] == d])
        return out

    def children_of(self, idx: IntArray) -> IntArray:
        """Indices of all nodes whose parent is in ``idx``."""
        mask = np.isin(self.parent, idx)
        return np.flatnonzero(mask)
