"""Module and model level: a node's energy from its children's, recursively up the tree.

Two aggregators, both fitted on training trees whose ML leaves carry *predicted* energies
(the ML regressors' in-sample predictions), never on the held-out model:

- :class:`IreneAggregator`, the paper's eq. 1-3: ``E(n) = sum_c w(c) E(c)`` with
  ``w(c) = 1 + tanh(W . phi(c) + b) / tau``, ``tau = 10``, ``phi`` the degree-3 polynomial of the
  child's standardised features, one linear layer shared by all nodes, trained end to end through
  the tree with Adam (lr 1e-3, 8 epochs, one tree per step), loss = squared error / true^2 over
  the non-leaf nodes. Vectorised per depth with torch.
- :class:`ResidualAggregator` (ours): ``E(n) = a * sum_c E(c) + theta . psi(n)``, one linear
  model per level (module, model) fitted by relative least squares on the true children's
  energies ("stepwise", one bounded least-squares solve per level). ``psi`` holds what the
  children cannot see (:data:`RESIDUAL_TERMS`): the FLOPs and bytes of the node's own ops that
  are not primitives (adds, GELU functions, masks: the node's static features minus its
  children's), and with the ``full`` feature set the node's own runtime measurements
  (``own:<column>``). The children weights ``a`` and the coefficients of the own-op work terms
  are fitted non-negative, so a node's residual (own-op) energy is >= 0 by construction and a
  module is never predicted below ``a`` times its children.

Both end with :func:`predictor.learn.reconcile.reconcile`, which makes the prediction
hierarchically consistent (children sum to at most their parent): ``top-down`` for ours,
``none`` for IrEne's. The variants leave-one-model-out rejected (refits on the aggregator's own
predictions, one model for both levels, more residual terms) live in
benchmarks/ablation_methods.py, registered from there (:func:`register_residual_term`,
``predictor.learn.profile.register_aggregator``). Prediction walks a :class:`Flat` forest
depth by depth: deterministic and bit-identical across runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from predictor.learn.flat import Array, Flat, IntArray
from predictor.learn.reconcile import DEFAULT_RECONCILE, reconcile, reconcile_mode
from predictor.learn.regressors import feature_matrix, poly_terms
from predictor.trace.tree import EnergyTree, Node

__all__ = [
    "RESIDUAL_TERMS",
    "Aggregator",
    "IreneAggregator",
    "ResidualAggregator",
    "TermFn",
    "aggregator_from_dict",
    "register_residual_term",
]

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

#: A residual term: one value per node (the part of its energy its children do not explain).
TermFn = Callable[[Sequence[Node]], Array]


def _resid_flops(nodes: Sequence[Node]) -> Array:
    """MFLOPs of the node's own ops: its FLOPs minus its children's (>= 0)."""
    own = np.asarray([n.flops for n in nodes], dtype=np.float64)
    kids = np.asarray([sum(c.flops for c in n.children) for n in nodes], dtype=np.float64)
    return np.maximum(own - kids, 0.0)


def _resid_mem(nodes: Sequence[Node]) -> Array:
    """MiB moved by the node's own ops: its bytes minus its children's (>= 0)."""
    own = np.asarray([n.mem_bytes for n in nodes], dtype=np.float64)
    kids = np.asarray([sum(c.mem_bytes for c in n.children) for n in nodes], dtype=np.float64)
    return np.maximum(own - kids, 0.0)


def _intercept(nodes: Sequence[Node]) -> Array:
    return np.ones(len(nodes))


_BUILTIN_TERMS: Mapping[str, TermFn] = {
    "resid_flops": _resid_flops,
    "resid_mem": _resid_mem,
    "intercept": _intercept,
}
#: Terms ``psi(n)`` the residual aggregator may use besides the children's sum, by name: the
#: built-ins, those added by :func:`register_residual_term`, and ``own:<column>`` for any
#: runtime column (the node's own measurement).
RESIDUAL_TERMS: dict[str, TermFn] = dict(_BUILTIN_TERMS)


def register_residual_term(name: str, fn: TermFn) -> None:
    """Make ``fn`` the residual term ``name`` (``Settings(residual_terms=(..., name))``).

    For experiments (benchmarks/ablation_methods.py). A built-in term cannot be replaced;
    registering an experiment's name again replaces it.
    """
    if name in _BUILTIN_TERMS:
        raise ValueError(f"residual term {name!r} is built in and cannot be replaced")
    if name.startswith("own:"):
        raise ValueError(f"residual term {name!r}: the prefix 'own:' names a runtime column")
    RESIDUAL_TERMS[name] = fn


def _psi(nodes: Sequence[Node], terms: Sequence[str]) -> Array:
    """Per node (rows) the values of ``terms`` (columns)."""
    cols: list[Array] = []
    for term in terms:
        if term.startswith("own:"):
            cols.append(feature_matrix(nodes, [term[4:]])[:, 0])
            continue
        fn = RESIDUAL_TERMS.get(term)
        if fn is None:
            raise ValueError(
                f"unknown aggregator term {term!r}; use own:<runtime column> or one of "
                f"{', '.join(RESIDUAL_TERMS)}"
            )
        cols.append(fn(nodes))
    if not cols:
        return np.zeros((len(nodes), 0))
    return np.column_stack(cols)


@dataclass
class ResidualAggregator:
    """``E(n) = a . S(n) + theta . psi(n)``, one linear model per level (module, model).

    ``S(n)`` is the children's predicted energy: one sum, or with ``split_children`` two (ML
    children, module children), so a container of modules can keep a weight near 1 while a
    module running primitives pays their launch and synchronisation overhead. ``psi(n)`` holds
    ``terms`` (``model_terms`` at the root when given). Fitted stepwise: on the true children's
    energies, one solve per level (:meth:`fit_on`); predicted bottom-up from the leaves.
    """

    terms: tuple[str, ...]
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

    def groups(self, flat: Flat, idx: IntArray) -> dict[str, IntArray]:
        """The nodes of ``idx`` that share one linear model, by model key: one per level."""
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

    def fit_on(self, flat: Flat, child_energy: Array) -> ResidualAggregator:
        """Fit each model on ``flat``'s measured energies, its children-sum columns taken from
        ``child_energy`` (one value per node: the measured energies for the stepwise fit).

        Per model: relative least squares (rows weighted by 1 / energy) on the columns scaled
        to a maximum of 1, with a ridge ``ridge`` and the prior ``weight_prior * (weight - 1)^2``
        on each children-sum weight. That is Tikhonov regularisation toward a non-zero target
        (weight 1, coefficient 0), which no scikit-learn estimator takes, so it is solved as one
        least-squares problem with the prior's rows stacked under the data.
        """
        y = flat.measured()
        groups = self.groups(flat, np.flatnonzero(~flat.is_leaf))
        psi = self._psi(flat, groups)
        sums = self._child_sums(flat, child_energy)
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
            self.coef[lvl] = _bounded_lstsq(a, b, self._nonneg(lvl, n_sums))
            self.scale[lvl] = sc
        return self

    def _nonneg(self, group: str, n_sums: int) -> list[int]:
        """Columns whose coefficient must be >= 0: the children-sum weights and every own-op
        work term (``resid_flops``, ``resid_mem``, ``intercept``, registered terms), so a node is never predicted below zero from its
        children and its own ops (a negative own-FLOPs coefficient once predicted a module that
        computes through ``F.linear`` at 0 J). A node's own runtime measurements
        (``own:<column>``, the full feature set) are unconstrained: a clock or utilisation may
        enter with either sign."""
        terms = self._terms(group)
        return list(range(n_sums)) + [
            n_sums + j for j, t in enumerate(terms) if not t.startswith("own:")
        ]

    def fit(self, trees: Sequence[EnergyTree], leaf_pred: Array) -> ResidualAggregator:
        """Stepwise fit on the true children's energies (``leaf_pred`` is not needed)."""
        del leaf_pred
        flat = Flat.of(trees)
        return self.fit_on(flat, flat.measured())

    def own_energy(self, nodes: Sequence[Node]) -> Array:
        """Energies of module or model nodes without children (only their own ops): their
        level's own-op terms alone (0 where the level was never fitted)."""
        out = np.zeros(len(nodes), dtype=np.float64)
        for lvl in ("module", "model"):
            idx = [i for i, n in enumerate(nodes) if n.level == lvl]
            coef = self.coef.get(lvl)
            if not idx or coef is None:
                continue
            n_sums = 2 if self.split_children else 1
            psi = _psi([nodes[i] for i in idx], self._terms(lvl))
            design = np.column_stack([np.zeros((len(idx), n_sums)), psi]) / self.scale[lvl]
            out[idx] = design @ coef
        return out

    def predict_unreconciled(self, flat: Flat, leaf_pred: Array) -> Array:
        """Energies of every node of ``flat`` bottom-up from the leaves', before
        :func:`reconcile`."""
        energy = np.where(flat.is_leaf, leaf_pred, 0.0)
        for idx in flat.depths_bottom_up():
            sums = self._child_sums(flat, energy, flat.children_of(idx))
            groups = self.groups(flat, idx)
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
        return reconcile(flat, self.predict_unreconciled(flat, leaf_pred), self.reconcile)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "terms": list(self.terms),
            "model_terms": None if self.model_terms is None else list(self.model_terms),
            "ridge": self.ridge,
            "split_children": self.split_children,
            "reconcile": self.reconcile,
            "weight_prior": self.weight_prior,
            "coef": {k: v.tolist() for k, v in sorted(self.coef.items())},
            "scale": {k: v.tolist() for k, v in sorted(self.scale.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResidualAggregator:
        if not data.get("per_level", True):
            raise ValueError(
                "this aggregator fits one model for module and model levels (per_level false), "
                "an experiment of benchmarks/ablation_methods.py that the library does not "
                "predict with; retrain the profile"
            )
        mt = data.get("model_terms")
        return cls(
            terms=tuple(str(t) for t in data["terms"]),
            model_terms=None if mt is None else tuple(str(t) for t in mt),
            ridge=float(data["ridge"]),
            split_children=bool(data["split_children"]),
            reconcile=reconcile_mode(data),
            weight_prior=float(data.get("weight_prior", 0.0)),
            coef={str(k): np.asarray(v, dtype=np.float64) for k, v in data["coef"].items()},
            scale={str(k): np.asarray(v, dtype=np.float64) for k, v in data["scale"].items()},
        )


def _bounded_lstsq(a: Array, b: Array, nonneg: Sequence[int]) -> Array:
    """``argmin |a x - b|^2`` with ``x[j] >= 0`` for ``j`` in ``nonneg`` (scipy's bounded least
    squares, BVLS active set: where no bound binds, the plain least-squares solution)."""
    from scipy.optimize import lsq_linear

    n = a.shape[1]
    lower = np.full(n, -np.inf)
    lower[list(nonneg)] = 0.0
    res = lsq_linear(a, b, bounds=(lower, np.full(n, np.inf)), method="bvls")
    if not res.success:
        raise ValueError(f"aggregator least squares did not converge: {res.message}")
    return np.asarray(res.x, dtype=np.float64)


#: A fitted aggregator (an experiment's subclass of one of these included).
Aggregator = IreneAggregator | ResidualAggregator


def aggregator_from_dict(data: dict[str, Any]) -> Aggregator:
    """The aggregator a profile stored (by its ``kind``)."""
    kind = data.get("kind")
    if kind == "irene":
        return IreneAggregator.from_dict(data)
    if kind == "residual":
        return ResidualAggregator.from_dict(data)
    raise ValueError(f"unknown aggregator kind {kind!r}")
