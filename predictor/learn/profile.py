"""A trained hardware profile: ML regressors + aggregator + metadata, saved as versioned data.

:class:`Settings` say how a profile is trained (chosen by leave-one-model-out: ours per feature
set, or IrEne's method); :func:`train_profile` fits one on a dataset; :class:`Profile` predicts
a tree and saves itself. The file is plain JSON in a checksummed container that loading never
runs code from (:mod:`predictor.learn.profile_file`).
"""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import numpy as np
import numpy.typing as npt

from predictor.errors import DataError, PredictionError, ProfileError
from predictor.learn.aggregate import (
    Aggregator,
    IreneAggregator,
    ResidualAggregator,
    aggregator_from_dict,
)
from predictor.learn.data import attach_num_parameters
from predictor.learn.flat import Array, Flat
from predictor.learn.profile_file import (
    FORMAT_VERSION,
    SUFFIX,
    payload_digest,
    read_profile_file,
    write_profile_file,
)
from predictor.learn.reconcile import DEFAULT_RECONCILE, reconcile_mode
from predictor.learn.regressors import FEATURE_SETS, MLRegressors, feature_columns
from predictor.trace.tree import RUNTIME_FEATURES, EnergyTree

if TYPE_CHECKING:
    from predictor.devices.profile import DeviceProfile

__all__ = [
    "AGGREGATORS",
    "DEFAULT_PROFILE",
    "PROFILES_DIR",
    "PROFILE_KINDS",
    "AggregatorFit",
    "AggregatorTraining",
    "AnyProfile",
    "Profile",
    "Settings",
    "check_prediction",
    "find_profile",
    "fit_components",
    "list_profiles",
    "load_profile",
    "predict_flat",
    "profile_counting",
    "profile_from_payload",
    "register_aggregator",
    "runtime_columns",
    "train_profile",
]

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
#: The profile used when none is named: static features, so it works on any CPU-only runner.
DEFAULT_PROFILE = "irene-device-1"


@dataclass(frozen=True)
class Settings:
    """How a profile is trained. The defaults are ours for static features
    (:meth:`default` adjusts them per feature set); :meth:`irene` is the authors' method. Each
    choice was made by leave-one-model-out, see benchmarks/results/ablation.md."""

    #: ML method (:data:`predictor.learn.regressors.ML_METHODS`). Static: the cubic correction
    #: ``poly-free`` meets the ML target under leave-one-model-out (2.65 %).
    ml_method: str = "poly-free"
    #: Aggregator (:data:`AGGREGATORS`): ``residual`` (ours) or ``irene``.
    aggregator: str = "residual"
    residual_terms: tuple[str, ...] = ("resid_flops", "resid_mem", "intercept")
    split_children: bool = False
    model_terms: tuple[str, ...] | None = None
    #: Hierarchical consistency of predictions (:func:`predictor.learn.reconcile.reconcile`).
    reconcile: str = DEFAULT_RECONCILE
    #: Pull of each children-sum weight toward 1 (:class:`ResidualAggregator`).
    weight_prior: float = 0.0
    irene_epochs: int = 8
    seed: int = 0
    #: How ML nodes share regressors (:data:`predictor.learn.regressors.ML_KEYS`): ``type``
    #: (a primitive type with training data keeps its own regressor; every other node, e.g. a
    #: ``FalconLinear``, an ``F.linear`` call or a convolution, its base type's or its kernel
    #: class's, fitted on every training node of that class) or ``kernel`` (one regressor per
    #: kernel class). LOMO chose ``type``: device_1's ``Linear`` (a GEMM then a separate bias
    #: add under torch 1.x) and ``Conv1D`` (one fused addmm) are one class but two executions,
    #: and one GEMM regressor for both costs 0.2 points at ML level (2.88 vs 2.68 %).
    ml_key: str = "type"

    @classmethod
    def default(cls, feature_set: str) -> Settings:
        """Ours for ``feature_set``: what the shipped profiles are trained with."""
        feature_columns(feature_set)  # validates the name
        if feature_set == "full":
            return cls(
                ml_method="linear",
                residual_terms=(
                    "resid_flops",
                    "resid_mem",
                    *(f"own:{c}" for c in RUNTIME_FEATURES),
                ),
            )
        # Static: ML and module children weighed apart, each weight pulled toward 1; the root
        # is its children plus the memory traffic of its own ops (embedding adds, masks).
        # Without the pull, the root's weight on its few ML children (GPT's wte/wpe/ln_f)
        # came out near 6.7 and stood in for the root's own ops: a model whose root holds
        # only primitives (a plain MLP) was then predicted at 6.7x its children.
        return cls(split_children=True, model_terms=("resid_mem",), weight_prior=1.0)

    @classmethod
    def irene(cls) -> Settings:
        """The authors' method: per-type standardised OLS + tanh-weighted sum, as published
        (no reconciliation: a child may exceed its parent)."""
        return cls(
            ml_method="irene",
            aggregator="irene",
            residual_terms=(),
            reconcile="none",
            ml_key="type",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ml_method": self.ml_method,
            "aggregator": self.aggregator,
            "residual_terms": list(self.residual_terms),
            "split_children": self.split_children,
            "model_terms": None if self.model_terms is None else list(self.model_terms),
            "reconcile": self.reconcile,
            "weight_prior": self.weight_prior,
            "irene_epochs": self.irene_epochs,
            "seed": self.seed,
            "ml_key": self.ml_key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Settings a profile recorded (earlier profiles' ``per_level``/``refits``, training
        options of the aggregator only, are not kept)."""
        return cls(
            ml_method=str(data["ml_method"]),
            aggregator=str(data["aggregator"]),
            residual_terms=tuple(str(t) for t in data["residual_terms"]),
            split_children=bool(data["split_children"]),
            model_terms=None
            if data["model_terms"] is None
            else tuple(str(t) for t in data["model_terms"]),
            reconcile=reconcile_mode(data),
            weight_prior=float(data.get("weight_prior", 0.0)),
            irene_epochs=int(data["irene_epochs"]),
            seed=int(data["seed"]),
            # profiles written before kernel classes keyed their regressors by type
            ml_key=str(data.get("ml_key", "type")),
        )


R = TypeVar("R", bound=ResidualAggregator)


@dataclass(frozen=True)
class AggregatorTraining:
    """What an aggregator is fitted on (the argument of an :data:`AggregatorFit`)."""

    trees: Sequence[EnergyTree]
    #: The ML regressors' prediction per node of ``Flat.of(trees)`` (leaves used).
    leaf_pred: Array
    settings: Settings
    #: The feature columns of the profile's feature set.
    columns: tuple[str, ...]
    #: ``settings.residual_terms`` less the runtime columns the data lacks.
    terms: tuple[str, ...]

    def residual(self, cls: type[R], **extra: Any) -> R:
        """An unfitted residual aggregator of class ``cls`` (:class:`ResidualAggregator` or a
        subclass) set up as :attr:`settings` say, with the subclass's own options ``extra``."""
        s = self.settings
        return cls(
            terms=self.terms,
            split_children=s.split_children,
            model_terms=s.model_terms,
            reconcile=s.reconcile,
            weight_prior=s.weight_prior,
            **extra,
        )


#: An aggregator's training: fits and returns an aggregator.
AggregatorFit = Callable[[AggregatorTraining], Aggregator]


def _fit_irene(t: AggregatorTraining) -> Aggregator:
    agg = IreneAggregator(columns=t.columns, reconcile=t.settings.reconcile)
    return agg.fit(t.trees, t.leaf_pred, epochs=t.settings.irene_epochs, seed=t.settings.seed)


def _fit_residual(t: AggregatorTraining) -> Aggregator:
    return t.residual(ResidualAggregator).fit(t.trees, t.leaf_pred)


_BUILTIN_AGGREGATORS: Mapping[str, AggregatorFit] = {
    "irene": _fit_irene,
    "residual": _fit_residual,
}
#: Aggregators by name (``Settings.aggregator``): the built-ins and those added by
#: :func:`register_aggregator`.
AGGREGATORS: dict[str, AggregatorFit] = dict(_BUILTIN_AGGREGATORS)


def register_aggregator(name: str, fit: AggregatorFit) -> None:
    """Make ``fit`` the aggregator ``name`` (``Settings(aggregator=name)``).

    For experiments (benchmarks/ablation_methods.py); the aggregator it returns must be one of
    :data:`predictor.learn.aggregate.Aggregator` (a subclass will do). A built-in cannot be
    replaced; registering an experiment's name again replaces it.
    """
    if name in _BUILTIN_AGGREGATORS:
        raise ValueError(f"aggregator {name!r} is built in and cannot be replaced")
    AGGREGATORS[name] = fit


def fit_components(
    trees: Sequence[EnergyTree], feature_set: str, settings: Settings
) -> tuple[MLRegressors, Aggregator]:
    """Fit the ML regressors, then the aggregator on the training trees' predicted leaves.

    Every node needs a measured energy > 0 (errors are relative); a tree without one is a
    :class:`~predictor.errors.DataError` naming the node and its configuration.
    """
    for tree in trees:
        for node in tree.walk():
            e = node.measured_energy_j
            if e is None or not e > 0:
                raise DataError(
                    f"{tree.meta.get('source', tree.model_name)}: {tree.model_name} batch "
                    f"{tree.batch_size} seq {tree.seq_len}, node {node.name!r}: measured energy "
                    f"must be a positive number of joules to train on (got {e!r}); re-measure or "
                    "drop that configuration"
                )
    flat = Flat.of(trees)
    runtime = runtime_columns(trees) if feature_set == "full" else ()
    ml_nodes = [n for n in flat.nodes if n.level == "ml"]
    ml = MLRegressors.fit(
        ml_nodes, feature_set, method=settings.ml_method, runtime=runtime, key=settings.ml_key
    )
    leaf_pred, _ = _leaf_predictions(flat, ml)
    # Terms on runtime columns the data lacks are dropped (a CPU-metered dataset has no gpu_*).
    terms = tuple(
        t for t in settings.residual_terms if not t.startswith("own:") or t[4:] in runtime
    )
    fit = AGGREGATORS.get(settings.aggregator)
    if fit is None:
        raise ValueError(
            f"unknown aggregator {settings.aggregator!r}; use one of {', '.join(AGGREGATORS)}"
        )
    columns = feature_columns(feature_set, runtime)
    agg = fit(AggregatorTraining(trees, leaf_pred, settings, columns, terms))
    return ml, agg


def runtime_columns(trees: Sequence[EnergyTree]) -> tuple[str, ...]:
    """The runtime columns every node of ``trees`` has (in the IrEne layout's order).

    A ``full`` profile uses these; none at all is a :class:`DataError`.
    """
    present = set(RUNTIME_FEATURES)
    for tree in trees:
        for node in tree.walk():
            present &= node.runtime.keys()
    cols = tuple(c for c in RUNTIME_FEATURES if c in present)
    if not cols:
        source = trees[0].meta.get("source", "the dataset") if trees else "the dataset"
        raise DataError(
            f"{source}: the 'full' feature set needs runtime columns "
            f"({', '.join(RUNTIME_FEATURES)}) on every node, and no column is present on all of "
            "them; train with --features static"
        )
    return cols


def _leaf_predictions(
    flat: Flat, ml: MLRegressors, agg: Aggregator | None = None
) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Predicted energy of every leaf: ML nodes from the ML regressors; a module (or model)
    without children, which runs only its own ops, from the aggregator's own-op terms (ours)
    when they give a positive energy, else from the fallback regressor (extrapolated)."""
    pred = np.zeros(len(flat.nodes), dtype=np.float64)
    extrapolated = np.zeros(len(flat.nodes), dtype=bool)
    ml_idx = [i for i, n in enumerate(flat.nodes) if n.level == "ml"]
    if ml_idx:
        values, ext = ml.predict([flat.nodes[i] for i in ml_idx])
        pred[ml_idx] = values
        extrapolated[ml_idx] = ext
    odd = [i for i in np.flatnonzero(flat.is_leaf).tolist() if flat.nodes[i].level != "ml"]
    if odd:
        nodes = [flat.nodes[i] for i in odd]
        own = (
            agg.own_energy(nodes)
            if isinstance(agg, ResidualAggregator)
            else np.zeros(len(odd), dtype=np.float64)
        )
        fallback = ml.fallback.predict(nodes)
        good = np.isfinite(own) & (own > 0)
        pred[odd] = np.where(good, own, fallback)
        extrapolated[odd] = ~good
    return pred, extrapolated


def predict_flat(
    flat: Flat, ml: MLRegressors, agg: Aggregator
) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Energy of every node of ``flat`` and the extrapolated mask."""
    leaf_pred, extrapolated = _leaf_predictions(flat, ml, agg)
    return agg.predict_flat(flat, leaf_pred), extrapolated


def check_prediction(tree: EnergyTree) -> None:
    """Refuse a prediction that cannot be trusted: a node that does work (FLOPs or bytes above
    0) predicted at 0 J or below, or any energy that is not finite (NaN, infinity). Raises a
    :class:`~predictor.errors.PredictionError` naming the first such node (pre-order)."""
    for node in tree.walk():
        e = node.energy_j
        if e is None:
            continue
        if not math.isfinite(e):
            raise PredictionError(tree.model_name, node.name, e, "not a finite number")
        if e < 0:
            raise PredictionError(tree.model_name, node.name, e, "below zero")
        if e == 0 and (node.does_work or node.level == "model"):
            raise PredictionError(
                tree.model_name,
                node.name,
                e,
                f"it does work: {node.flops:.4g} MFLOPs, {node.mem_bytes:.4g} MiB",
            )


@dataclass
class Profile:
    """A trained predictor for one device. ``predict(tree)`` fills ``energy_j`` in place."""

    name: str
    feature_set: str
    counting_mode: str
    ml: MLRegressors
    aggregator: Aggregator
    settings: Settings
    description: str = ""
    hardware: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    cv_error: dict[str, Any] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    #: Runtime columns a ``full`` profile needs on every node (empty for ``static``).
    runtime_columns: tuple[str, ...] = ()
    version: int = FORMAT_VERSION
    path: Path | None = None
    #: The compute dtype of the training data's models (IrEne's device_1: fp32).
    dtype: str = "float32"

    # -- prediction ---------------------------------------------------------------------------

    def check_tree(self, tree: EnergyTree) -> None:
        if self.feature_set != "full":
            return
        for node in tree.walk():
            missing = [c for c in self.runtime_columns if c not in node.runtime]
            if missing:
                raise ProfileError(
                    f"profile {self.name!r} uses the 'full' feature set (static + runtime), but "
                    f"tree {tree.model_name!r} has no runtime features (node {node.name!r} lacks "
                    f"{', '.join(missing)}); traced trees only have static features: use a static "
                    f"profile such as {DEFAULT_PROFILE!r}"
                )

    def predict(self, tree: EnergyTree) -> EnergyTree:
        """Fill ``energy_j`` (J) on every node; flag fallback-predicted nodes ``extrapolated``
        (kernel classes without training data). Records in ``tree.meta`` the extrapolated share
        of the energy, and a warning when the tree's counting mode or compute dtype differs
        from the profile's training data. A node that does work predicted at 0 J or below, or a
        non-finite energy, is a :class:`~predictor.errors.PredictionError` naming the node."""
        self.check_tree(tree)
        flat = Flat.of([tree])
        energy, extrapolated = predict_flat(flat, self.ml, self.aggregator)
        for node, e, ext in zip(flat.nodes, energy.tolist(), extrapolated.tolist(), strict=True):
            node.energy_j = float(e)
            node.extrapolated = bool(ext)
        check_prediction(tree)
        if tree.counting_mode != self.counting_mode:
            tree.meta["profile_warning"] = (
                f"tree counted in {tree.counting_mode!r} mode, profile trained on "
                f"{self.counting_mode!r} features"
            )
        dtypes = [d for d in tree.dtypes() if d != self.dtype]
        if dtypes:
            tree.meta["dtype_warning"] = (
                f"the tree computes in {', '.join(tree.dtypes())}; profile {self.name!r} was "
                f"trained on {self.dtype} models: its joules for other dtypes follow their "
                "bytes, not their arithmetic"
            )
        tree.meta["extrapolated_share"] = tree.extrapolated_share()
        tree.meta["profile"] = self.summary()
        return tree

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature_set": self.feature_set,
            "counting_mode": self.counting_mode,
            "version": self.version,
            "description": self.description,
            "cv_error": self.cv_error,
            "unseen_types_fallback": "pooled linear regressor for kernel classes without "
            "training data; such nodes are flagged extrapolated",
            "known_types": sorted(self.ml.by_type),
            "kernel_classes": self.ml.covers(),
            "dtype": self.dtype,
            "runtime_columns": list(self.runtime_columns),
            "reconcile": self.aggregator.reconcile,
        }

    # -- persistence --------------------------------------------------------------------------

    def payload(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature_set": self.feature_set,
            "counting_mode": self.counting_mode,
            "description": self.description,
            "hardware": self.hardware,
            "training_data": self.training_data,
            "cv_error": self.cv_error,
            "library_versions": self.library_versions,
            "runtime_columns": list(self.runtime_columns),
            "dtype": self.dtype,
            "settings": self.settings.to_dict(),
            "ml": self.ml.to_dict(),
            "aggregator": self.aggregator.to_dict(),
        }

    def payload_text(self) -> str:
        """The canonical JSON of :meth:`payload`: what a profile file stores and checksums."""
        return json.dumps(self.payload(), sort_keys=True, allow_nan=False)

    @property
    def sha256(self) -> str:
        """Digest of :meth:`payload_text`, the checksum its file carries: two profiles of the
        same name but different training are told apart by it."""
        return payload_digest(self.payload_text())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (:func:`predictor.learn.profile_file.write_profile_file`); returns
        the path."""
        return write_profile_file(Path(path), self.payload_text())

    @classmethod
    def from_payload(cls, data: dict[str, Any], path: Path | None = None) -> Profile:
        feature_set = str(data["feature_set"])
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"unknown feature set {feature_set!r}")
        return cls(
            name=str(data["name"]),
            feature_set=feature_set,
            counting_mode=str(data["counting_mode"]),
            ml=MLRegressors.from_dict(data["ml"]),
            aggregator=aggregator_from_dict(data["aggregator"]),
            settings=Settings.from_dict(data["settings"]),
            description=str(data.get("description", "")),
            hardware=dict(data.get("hardware", {})),
            training_data=dict(data.get("training_data", {})),
            cv_error=dict(data.get("cv_error", {})),
            library_versions={str(k): str(v) for k, v in data.get("library_versions", {}).items()},
            runtime_columns=tuple(str(c) for c in data["runtime_columns"]),
            path=path,
            dtype=str(data.get("dtype", "float32")),
        )


def profile_counting(profile: AnyProfile) -> str:
    """The counting mode to trace a model in for ``profile``: the one it was trained on (a
    profile trained on mixed data: ``irene``)."""
    from predictor.trace.ops import COUNTING_MODES

    return profile.counting_mode if profile.counting_mode in COUNTING_MODES else "irene"


#: A profile of any kind :func:`load_profile` reads: trained (:class:`Profile`, and its
#: adapted subclass) or a device's physical model (:class:`~predictor.devices.profile.DeviceProfile`).
AnyProfile: TypeAlias = "Profile | DeviceProfile"
#: Profile kinds by their payload's ``kind`` (absent: ``trained``), and the module defining
#: each one's ``from_payload`` (imported when a file of that kind is read).
PROFILE_KINDS: Mapping[str, tuple[str, str]] = {
    "trained": ("predictor.learn.profile", "Profile"),
    "adapted": ("predictor.learn.adapt", "AdaptedProfile"),
    "device": ("predictor.devices.profile", "DeviceProfile"),
}


def profile_from_payload(data: dict[str, Any], path: Path | None = None) -> AnyProfile:
    """The profile a payload describes, by its ``kind`` (:data:`PROFILE_KINDS`)."""
    import importlib

    kind = str(data.get("kind", "trained"))
    where = PROFILE_KINDS.get(kind)
    if where is None:
        raise ValueError(f"unknown profile kind {kind!r} (known: {', '.join(PROFILE_KINDS)})")
    cls = getattr(importlib.import_module(where[0]), where[1])
    profile: AnyProfile = cls.from_payload(data, path=path)
    return profile


def _read(path: Path) -> AnyProfile:
    return read_profile_file(path, lambda data: profile_from_payload(data, path=path))


def list_profiles() -> list[str]:
    """Names of the profiles shipped inside the package."""
    return sorted(p.name.removesuffix(SUFFIX) for p in PROFILES_DIR.glob(f"*{SUFFIX}"))


def find_profile(
    ref: str | os.PathLike[str] | None = None, *, base: str | os.PathLike[str] | None = None
) -> Path:
    """The file a profile reference names: a profile file's path (relative to ``base``, the
    folder where the reference was written, default the current one), else the name of a
    shipped profile (default :data:`DEFAULT_PROFILE`). ProfileError when it names neither."""
    if ref is None:
        ref = DEFAULT_PROFILE
    text = os.path.expanduser(os.fspath(ref))
    candidate = Path(base or ".") / text
    if candidate.is_file():
        return candidate.resolve()
    shipped = PROFILES_DIR / f"{text}{SUFFIX}"
    if os.sep not in text and "/" not in text and shipped.is_file():
        return shipped
    where = f" (looked for {candidate.resolve()})" if os.sep in text or "/" in text else ""
    raise ProfileError(
        f"no profile {text!r}{where}: not a profile file, and not a shipped profile "
        f"(shipped: {', '.join(list_profiles()) or 'none'})"
    )


def load_profile(
    ref: str | os.PathLike[str] | None = None, *, base: str | os.PathLike[str] | None = None
) -> AnyProfile:
    """The profile a reference names (:func:`find_profile`), read and checked: a file that is
    corrupt, tampered with or of an unknown version is a ProfileError, one that cannot be read
    an OutputError. Loading never runs code from the file."""
    return _read(find_profile(ref, base=base))


def _library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("pytest-irene", "numpy", "scipy", "scikit-learn", "joblib", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def train_profile(
    dataset: Any,
    feature_set: str,
    name: str,
    *,
    settings: Settings | None = None,
    description: str = "",
    hardware: dict[str, Any] | None = None,
    cv_error: dict[str, Any] | None = None,
) -> Profile:
    """Train on every tree of ``dataset`` (a :class:`predictor.learn.data.Dataset`).

    ``cv_error`` (e.g. from :func:`predictor.learn.evaluate.cross_validate`) is stored as the profile's
    expected error per level; the profile does not compute it itself.
    """
    settings = settings or Settings.default(feature_set)
    trees: list[EnergyTree] = list(dataset.trees)
    if not trees:
        raise ProfileError(f"{dataset.path}: the dataset has no trees to train on")
    filled = attach_num_parameters(trees)
    ml, agg = fit_components(trees, feature_set, settings)
    modes = sorted({t.counting_mode for t in trees})
    # a dataset's trees carry no dtype (the IrEne data is fp32); a retraced one its models'
    dtypes = sorted({t.root.dtype or "float32" for t in trees})
    return Profile(
        name=name,
        feature_set=feature_set,
        counting_mode=modes[0] if len(modes) == 1 else "mixed",
        ml=ml,
        aggregator=agg,
        settings=settings,
        description=description,
        hardware=dict(hardware if hardware is not None else getattr(dataset, "hardware", {})),
        training_data={
            "source": str(dataset.path),
            "models": list(dataset.model_names),
            "trees": len(trees),
            "ml_rows": sum(len(t.nodes("ml")) for t in trees),
            "module_rows": sum(len(t.nodes("module")) for t in trees),
            "num_parameters_filled_nodes": filled,
            "skipped": list(getattr(dataset, "skipped", [])),
        },
        cv_error=dict(cv_error or {}),
        library_versions=_library_versions(),
        runtime_columns=runtime_columns(trees) if feature_set == "full" else (),
        dtype=dtypes[0] if len(dtypes) == 1 else "mixed",
    )
