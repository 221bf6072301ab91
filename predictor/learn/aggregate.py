"""Module and model level: a node's energy from its children's, recursively up the tree.

Two aggregators, both fitted on training trees whose ML leaves carry *predicted* energies
(the ML regressors' in-sample predictions), never on the held-out model:

- :class:`IreneAggregator`, the paper's eq. 1-3: ``E(n) = sum_c w(c) E(c)`` with
  ``w(c) = 1 + tanh(W . phi(c) + b) / tau``, ``tau = 10``, ``phi`` the degree-3 polynomial of the
  child's standardised features, one linear layer shared by all nodes, trained end to end through
  the tree with Adam (lr 1e-3, 8 epochs, one tree per step), loss = squared error / true^2 over
  the non-leaf nodes. Vectorised per depth with torch.
- :class:`ResidualAggregator` (default): ``E(n) = a * sum_c E(c) + theta . psi(n)``, a linear
  model fitted by relative least squares. ``psi`` holds what the children cannot see: the
  FLOPs and bytes of the node's own ops that are not primitives (adds, GELU functions, masks:
  the node's static features minus its children's), and with the ``full`` feature set the
  node's own runtime measurements. It is fitted on the true children's energies ("stepwise",
  one closed-form solve per level); ``refits > 0`` then refits it on the energies it predicts
  bottom-up. Leave-one-model-out preferred no refit: the refit iteration does not converge
  monotonically (benchmarks/results/ablation.md).

Both end with :func:`reconcile`, which makes the prediction hierarchically consistent: for every
node the children's energies sum to at most the node's (a parent runs all of its children plus
its own ops). The default, ``top-down``, keeps the root (the most accurate level under
leave-one-model-out) and cuts each overrun from the children's own-op energy first.

A forest of trees is flattened once into arrays (:class:`Flat`), so prediction is a handful of
numpy operations per depth, deterministic and bit-identical across runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from predictor.learn.regressors import Array, feature_matrix, poly_terms
from predictor.trace.tree import EnergyTree, Node

__all__ = [
    "AGGREGATORS",
    "DEFAULT_RECONCILE",
    "RECONCILE_MODES",
    "RESIDUAL_TERMS",
    "Flat",
    "IreneAggregator",
    "ResidualAggregator",
    "aggregator_from_dict",
    "reconcile",
    "reconcile_mode",
]

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


# -- hierarchical consistency -----------------------------------------------------------------

#: How :func:`reconcile` makes children sum to at most their parent (see its docstring).
RECONCILE_MODES: tuple[str, ...] = ("top-down", "bottom-up", "scale", "none")
#: What a profile saved before reconciliation existed gets: its predictions are made consistent.
DEFAULT_RECONCILE = "top-down"


def reconcile_mode(data: dict[str, Any]) -> str:
    """The ``reconcile`` entry of a saved aggregator/settings dict (absent: the default)."""
    mode = str(data.get("reconcile", DEFAULT_RECONCILE))
    if mode not in RECONCILE_MODES:
        raise ValueError(f"unknown reconcile mode {mode!r} (one of {', '.join(RECONCILE_MODES)})")
    return mode


def reconcile(flat: Flat, energy: Array, mode: str = DEFAULT_RECONCILE) -> Array:
    """Make ``energy`` (one value per node of ``flat``) hierarchically consistent.

    Afterwards every energy is >= 0 and, for every node, the sum of its children's energies is
    at most its own (up to float rounding, ~1e-16 relative). Modes:

    - ``top-down`` (default): the root keeps its prediction. Where a node's children overrun its
      (possibly already cut) energy by ``X``, each child is cut by ``X * E(c) / sum E(children)``
      (the same relative cut for every child: nothing says which one is wrong), and a child
      absorbs its cut from its own-op energy first (``E(c) - sum E(its children)``, the part its
      children do not explain); only the rest is passed to its children, the same way. Nodes that
      are consistent with their parent are left exactly as predicted.
    - ``bottom-up``: a parent is raised to its children's sum where it is below it (the root can
      only grow).
    - ``scale``: the root keeps its prediction; an overrun scales the whole subtree under the
      node by ``E(n) / sum E(children)``.
    - ``none``: unchanged (IrEne's method; children may exceed their parent).

    Negative predictions (a linear model far outside its data) are set to 0 first, except with
    ``none``.
    """
    if mode == "none":
        return energy
    if mode not in RECONCILE_MODES:
        raise ValueError(f"unknown reconcile mode {mode!r} (one of {', '.join(RECONCILE_MODES)})")
    e = np.maximum(np.asarray(energy, dtype=np.float64), 0.0)
    if mode == "bottom-up":
        for idx in flat.depths_bottom_up():
            e[idx] = np.maximum(e[idx], flat.child_sum(e)[idx])
        return e
    sums = flat.child_sum(e)
    # Fraction of each inner node's children's sum that must go: X / sum, X = overrun.
    fraction = np.zeros(len(e), dtype=np.float64)
    if mode == "scale":
        factor = np.ones(len(e), dtype=np.float64)  # cumulative scale of each node's subtree
        for d in range(int(flat.depth.max(initial=0)) + 1):
            idx = np.flatnonzero((flat.depth == d) & ~flat.is_leaf)
            over = sums[idx] > e[idx]
            fraction[idx] = np.where(over, e[idx] / np.where(over, sums[idx], 1.0), 1.0)
            kids = flat.children_of(idx)
            factor[kids] = factor[flat.parent[kids]] * fraction[flat.parent[kids]]
        return e * factor
    cut = np.zeros(len(e), dtype=np.float64)
    for d in range(int(flat.depth.max(initial=0)) + 1):
        idx = np.flatnonzero((flat.depth == d) & ~flat.is_leaf)
        if idx.size == 0:
            continue
        overrun = np.maximum(sums[idx] - (e[idx] - cut[idx]), 0.0)
        positive = sums[idx] > 0
        fraction[idx] = np.where(positive, overrun / np.where(positive, sums[idx], 1.0), 0.0)
        kids = flat.children_of(idx)
        cut[kids] = e[kids] * fraction[flat.parent[kids]]
    return np.asarray(e - cut, dtype=np.float64)


# -- IrEne's aggregator -----------------------------------------------------------------------


@dataclass
class IreneAggregator:
    """The paper's recursive weighted sum with tanh weights (see the module docstring)."""

    columns: tuple[str, ...]
    degree: int = 3
    tau: float = 10.0
    mean: Array = field(default_factory=lambda: np.zeros(0))
    scale: Array = field(default_factory=lambda: np.zeros(0))
    weight: Array = field(default_factory=lambda: np.zeros(0))
    bias: float = 0.0
    reconcile: str = "none"
    kind: str = "irene"

    def _phi(self, nodes: Sequence[Node]) -> Array:
        z = (feature_matrix(nodes, self.columns) - self.mean) / self.scale
        return poly_terms(z, self.degree)[:, 1:]

    def fit(
        self,
        trees: Sequence[EnergyTree],
        leaf_pred: Array,
        *,
        epochs: int = 8,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> IreneAggregator:
        """Train end to end; ``leaf_pred`` = predicted energy per node of ``Flat.of(trees)``
        (only leaf entries are used)."""
        import torch

        flat = Flat.of(trees)
        x = feature_matrix(flat.nodes, self.columns)
        self.mean = x.mean(axis=0)
        sd = x.std(axis=0)
        self.scale = np.where(sd > 0, sd, 1.0)
        phi_all = poly_terms((x - self.mean) / self.scale, self.degree)[:, 1:]
        y_all = flat.measured()
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        lin = torch.nn.Linear(phi_all.shape[1], 1, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.uniform_(-0.01, 0.01, generator=gen)
            lin.bias.zero_()
        opt = torch.optim.Adam(lin.parameters(), lr=lr)
        per_tree = [
            _TreeTensors.of(flat, t, phi_all, y_all, leaf_pred) for t in range(flat.n_trees)
        ]
        order = np.random.default_rng(seed)
        for _ in range(epochs):
            for t in order.permutation(len(per_tree)):
                tt = per_tree[t]
                opt.zero_grad()
                w = 1.0 + torch.tanh(lin(tt.phi).squeeze(1)) / self.tau
                energy = tt.leaf.clone()
                for parents, children in tt.levels:
                    contrib = w[children] * energy[children]
                    energy = energy.index_add(0, parents, contrib)
                pred = energy[tt.inner]
                loss = (((pred - tt.y) / tt.y) ** 2).sum()
                loss.backward()
                opt.step()
        self.weight = lin.weight.detach().numpy().reshape(-1).astype(np.float64)
        self.bias = float(lin.bias.detach().numpy()[0])
        return self

    def predict_flat(self, flat: Flat, leaf_pred: Array) -> Array:
        """Energies of every node of ``flat`` from the leaves' predictions, bottom-up."""
        w = 1.0 + np.tanh(self._phi(flat.nodes) @ self.weight + self.bias) / self.tau
        energy = np.where(flat.is_leaf, leaf_pred, 0.0)
        for idx in flat.depths_bottom_up():
            kids = flat.children_of(idx)
            np.add.at(energy, flat.parent[kids], w[kids] * energy[kids])
        return reconcile(flat, energy, self.reconcile)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "columns": list(self.columns),
            "degree": self.degree,
            "tau": self.tau,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "weight": self.weight.tolist(),
            "bias": self.bias,
            "reconcile": self.reconcile,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IreneAggregator:
        return cls(
            columns=tuple(str(c) for c in data["columns"]),
            degree=int(data["degree"]),
            tau=float(data["tau"]),
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            weight=np.asarray(data["weight"], dtype=np.float64),
            bias=float(data["bias"]),
            reconcile=reconcile_mode(data),
        )


@dataclass
class _TreeTensors:
    phi: Any
    leaf: Any
    y: Any
    inner: Any
    levels: list[tuple[Any, Any]]

    @classmethod
    def of(cls, flat: Flat, t: int, phi_all: Array, y_all: Array, leaf_pred: Array) -> _TreeTensors:
        import torch

        idx = np.flatnonzero(flat.tree == t)
        base = int(idx[0])
        local_parent = flat.parent[idx] - base
        leaf = np.where(flat.is_leaf[idx], leaf_pred[idx], 0.0)
        inner_local = np.flatnonzero(~flat.is_leaf[idx])
        depth = flat.depth[idx]
        levels = []
        for d in sorted(set(depth[inner_local].tolist()), reverse=True):
            parents = inner_local[depth[inner_local] == d]
            kids = np.flatnonzero(np.isin(local_parent, parents))
            levels.append((torch.from_numpy(local_parent[kids]), torch.from_numpy(kids)))
        return cls(
            phi=torch.from_numpy(phi_all[idx]),
            leaf=torch.from_numpy(leaf),
            y=torch.from_numpy(y_all[idx][inner_local]),
            inner=torch.from_numpy(inner_local),
            levels=levels,
        )


# -- our aggregator ---------------------------------------------------------------------------

#: Terms ``psi(n)`` the residual aggregator may use (besides the children's sum).
RESIDUAL_TERMS: tuple[str, ...] = ("resid_flops", "resid_mem", "input_size", "intercept")


def _psi(nodes: Sequence[Node], terms: Sequence[str], flat: Flat | None = None) -> Array:
    """Per node the values of ``terms``: residual static features or ``own:<runtime>``."""
    cols: list[Array] = []
    need_resid = any(t.startswith("resid_") for t in terms)
    if need_resid:
        child_flops = np.asarray(
            [sum(c.flops for c in n.children) for n in nodes], dtype=np.float64
        )
        child_mem = np.asarray(
            [sum(c.mem_bytes for c in n.children) for n in nodes], dtype=np.float64
        )
    for term in terms:
        if term == "resid_flops":
            own = np.asarray([n.flops for n in nodes], dtype=np.float64)
            cols.append(np.maximum(own - child_flops, 0.0))
        elif term == "resid_mem":
            own = np.asarray([n.mem_bytes for n in nodes], dtype=np.float64)
            cols.append(np.maximum(own - child_mem, 0.0))
        elif term == "input_size":
            cols.append(np.asarray([float(n.input_size) for n in nodes], dtype=np.float64))
        elif term == "intercept":
            cols.append(np.ones(len(nodes)))
        elif term.startswith("own:"):
            cols.append(feature_matrix(nodes, [term[4:]])[:, 0])
        elif term.startswith("ownx:"):  # product of two own features, "ownx:a*b"
            a, b = term[5:].split("*")
            m = feature_matrix(nodes, [a, b])
            cols.append(m[:, 0] * m[:, 1])
        else:
            raise ValueError(f"unknown aggregator term {term!r}")
    if not cols:
        return np.zeros((len(nodes), 0))
    return np.column_stack(cols)


@dataclass
class ResidualAggregator:
    """``E(n) = a . S(n) + theta . psi(n)``, one linear model per level (module, model).

    ``S(n)`` is the children's predicted energy: one sum, or with ``split_children`` two (ML
    children, module children), so a container of modules can keep a weight near 1 while a
    module running primitives pays their launch and synchronisation overhead. ``psi(n)`` holds
    ``terms`` (``model_terms`` at the root when given).
    """

    terms: tuple[str, ...]
    per_level: bool = True
    refits: int = 0
    ridge: float = 1e-8
    split_children: bool = False
    model_terms: tuple[str, ...] | None = None
    reconcile: str = DEFAULT_RECONCILE
    #: Strength of the prior that each children-sum weight is 1 (a parent is its children plus
    #: its own ops). A weight the data barely identifies (e.g. the root's few ML children in
    #: the IrEne trees) stays near 1 instead of taking an extreme value that a model of
    #: another shape (a root made of primitives) would pay for. 0 = plain least squares.
    weight_prior: float = 0.0
    coef: dict[str, Array] = field(default_factory=dict)
    scale: dict[str, Array] = field(default_factory=dict)
    kind: str = "residual"

    def _groups(self, flat: Flat, idx: IntArray) -> dict[str, IntArray]:
        if not self.per_level:
            return {"all": idx}
        levels = np.asarray([flat.nodes[i].level for i in idx])
        return {lvl: idx[levels == lvl] for lvl in ("module", "model") if np.any(levels == lvl)}

    def _terms(self, group: str) -> tuple[str, ...]:
        if group == "model" and self.model_terms is not None:
            return self.model_terms
        return self.terms

    def _child_sums(self, flat: Flat, values: Array, kids: IntArray | None = None) -> Array:
        """Per node, the children's sum of ``values`` (two columns with ``split_children``)."""
        if kids is None:
            kids = np.flatnonzero(flat.parent >= 0)
        is_ml = np.asarray([flat.nodes[k].level == "ml" for k in kids.tolist()], dtype=bool)
        cols = (is_ml, ~is_ml) if self.split_children else (np.ones(len(kids), dtype=bool),)
        out = np.zeros((len(flat.nodes), len(cols)), dtype=np.float64)
        for j, mask in enumerate(cols):
            np.add.at(out[:, j], flat.parent[kids[mask]], values[kids[mask]])
        return out

    def _psi(self, flat: Flat, groups: dict[str, IntArray]) -> dict[str, Array]:
        return {g: _psi([flat.nodes[i] for i in idx], self._terms(g)) for g, idx in groups.items()}

    def _fit_once(
        self, sums: Array, psi: dict[str, Array], y: Array, groups: dict[str, IntArray]
    ) -> None:
        for lvl, idx in groups.items():
            design = np.column_stack([sums[idx], psi[lvl]])
            sc = np.abs(design).max(axis=0)
            sc = np.where(sc > 0, sc, 1.0)
            w = 1.0 / y[idx]
            a = (design / sc) * w[:, None]
            b = y[idx] * w
            n, n_sums = a.shape[1], sums.shape[1]
            a = np.vstack([a, np.sqrt(self.ridge) * np.eye(n)])
            b = np.concatenate([b, np.zeros(n)])
            if self.weight_prior > 0:
                # One row per children-sum column: sqrt(prior) * (weight - 1), where
                # weight = scaled coefficient / column scale.
                rows = np.zeros((n_sums, n))
                rows[np.arange(n_sums), np.arange(n_sums)] = (
                    np.sqrt(self.weight_prior) / sc[:n_sums]
                )
                a = np.vstack([a, rows])
                b = np.concatenate([b, np.full(n_sums, np.sqrt(self.weight_prior))])
            self.coef[lvl] = np.asarray(np.linalg.lstsq(a, b, rcond=None)[0], dtype=np.float64)
            self.scale[lvl] = sc

    def fit(self, trees: Sequence[EnergyTree], leaf_pred: Array) -> ResidualAggregator:
        flat = Flat.of(trees)
        y = flat.measured()
        groups = self._groups(flat, np.flatnonzero(~flat.is_leaf))
        psi = self._psi(flat, groups)
        # Stepwise first (true children), then on our own bottom-up predictions.
        self._fit_once(self._child_sums(flat, y), psi, y, groups)
        for _ in range(self.refits):
            energy = self._bottom_up(flat, leaf_pred)
            self._fit_once(self._child_sums(flat, energy), psi, y, groups)
        return self

    def _bottom_up(self, flat: Flat, leaf_pred: Array) -> Array:
        energy = np.where(flat.is_leaf, leaf_pred, 0.0)
        for idx in flat.depths_bottom_up():
            sums = self._child_sums(flat, energy, flat.children_of(idx))
            groups = self._groups(flat, idx)
            psi = self._psi(flat, groups)
            for lvl, gidx in groups.items():
                coef = self.coef.get(lvl)
                if coef is None:  # a level never seen in training: plain sum
                    energy[gidx] = sums[gidx].sum(axis=1)
                    continue
                design = np.column_stack([sums[gidx], psi[lvl]]) / self.scale[lvl]
                energy[gidx] = design @ coef
        return energy

    def predict_flat(self, flat: Flat, leaf_pred: Array) -> Array:
        return reconcile(flat, self._bottom_up(flat, leaf_pred), self.reconcile)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "terms": list(self.terms),
            "model_terms": None if self.model_terms is None else list(self.model_terms),
            "per_level": self.per_level,
            "refits": self.refits,
            "ridge": self.ridge,
            "split_children": self.split_children,
            "reconcile": self.reconcile,
            "weight_prior": self.weight_prior,
            "coef": {k: v.tolist() for k, v in sorted(self.coef.items())},
            "scale": {k: v.tolist() for k, v in sorted(self.scale.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResidualAggregator:
        mt = data.get("model_terms")
        return cls(
            terms=tuple(str(t) for t in data["terms"]),
            model_terms=None if mt is None else tuple(str(t) for t in mt),
            per_level=bool(data["per_level"]),
            refits=int(data["refits"]),
            ridge=float(data["ridge"]),
            split_children=bool(data["split_children"]),
            reconcile=reconcile_mode(data),
            weight_prior=float(data.get("weight_prior", 0.0)),
            coef={str(k): np.asarray(v, dtype=np.float64) for k, v in data["coef"].items()},
            scale={str(k): np.asarray(v, dtype=np.float64) for k, v in data["scale"].items()},
        )


Aggregator = IreneAggregator | ResidualAggregator
AGGREGATORS: tuple[str, ...] = ("irene", "residual")


def aggregator_from_dict(data: dict[str, Any]) -> Aggregator:
    kind = data.get("kind")
    if kind == "irene":
        return IreneAggregator.from_dict(data)
    if kind == "residual":
        return ResidualAggregator.from_dict(data)
    raise ValueError(f"unknown aggregator kind {kind!r}")
