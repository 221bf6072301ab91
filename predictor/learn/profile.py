"""A trained hardware profile: ML regressors + aggregator + metadata, saved as versioned data.

File format (``.irene.joblib``): ``joblib.dump`` of a plain dict
``{"format": "irene-profile", "version": 1, "sha256": <hex>, "payload": <JSON text>}``.
The payload is JSON (numbers, strings, lists, dicts: no pickled estimator class), so a file
loads under any scikit-learn/numpy version; the sha256 of the payload text detects corruption
or tampering. Loading refuses, with a :class:`~predictor.errors.ProfileError`, a file that is
truncated, not a profile, of an unknown version, or whose checksum does not match.

Loading never executes code from the file. A joblib file is a pickle (compressed: zlib for
``compress=3``; gzip, bz2, lzma/xz also read), and unpickling can call any importable function.
So :func:`load_profile` does not call ``joblib.load``: it decompresses the container itself
(output capped at :data:`MAX_PAYLOAD_BYTES`) and unpickles with an unpickler that refuses every
global (class or function reference). The record holds only a dict, strings and an int, which
need none; a file that names any global (a crafted ``__reduce__``, a numpy array, a pickled
estimator) is refused with a :class:`~predictor.errors.ProfileError` before anything runs.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import lzma
import os
import pickle
import platform
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from predictor.errors import DataError, ProfileError
from predictor.files import write_bytes_atomic
from predictor.learn.aggregate import (
    DEFAULT_RECONCILE,
    Aggregator,
    Flat,
    IreneAggregator,
    ResidualAggregator,
    aggregator_from_dict,
    reconcile_mode,
)
from predictor.learn.regressors import FEATURE_SETS, Array, MLRegressors, feature_columns
from predictor.trace.tree import RUNTIME_FEATURES, EnergyTree

__all__ = [
    "DEFAULT_PROFILE",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_PAYLOAD_BYTES",
    "PROFILES_DIR",
    "SUFFIX",
    "Profile",
    "Settings",
    "attach_num_parameters",
    "fit_components",
    "list_profiles",
    "load_profile",
    "predict_flat",
    "runtime_columns",
    "train_profile",
]

FORMAT = "irene-profile"
FORMAT_VERSION = 1
SUFFIX = ".irene.joblib"
PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
#: Largest decompressed profile record read (a shipped profile is well under 1 MiB); a larger
#: one is refused instead of exhausting memory (a "zip bomb").
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
#: The profile used when none is named: static features, so it works on any CPU-only runner.
DEFAULT_PROFILE = "irene-device-1"


@dataclass(frozen=True)
class Settings:
    """How a profile is trained (chosen by leave-one-model-out, see benchmarks/results)."""

    #: Static ML regressor: the free cubic correction (``poly-free``) meets the ML target under
    #: leave-one-model-out (2.65 %); the monotone one (``poly``: more work never predicts less
    #: energy) costs ~1.1 points on device_1 (3.77 %, over the 3 % target) because the
    #: measurements are not monotone themselves. See benchmarks/results/ablation.md.
    ml_method: str = "poly-free"
    aggregator: str = "residual"
    residual_terms: tuple[str, ...] = ("resid_flops", "resid_mem", "intercept")
    per_level: bool = True
    refits: int = 0
    split_children: bool = False
    model_terms: tuple[str, ...] | None = None
    #: Hierarchical consistency of predictions (:func:`predictor.learn.aggregate.reconcile`).
    reconcile: str = DEFAULT_RECONCILE
    #: Pull of each children-sum weight toward 1 (:class:`ResidualAggregator`).
    weight_prior: float = 0.0
    irene_epochs: int = 8
    seed: int = 0

    @classmethod
    def default(cls, feature_set: str) -> Settings:
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
        return cls(ml_method="irene", aggregator="irene", residual_terms=(), reconcile="none")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ml_method": self.ml_method,
            "aggregator": self.aggregator,
            "residual_terms": list(self.residual_terms),
            "per_level": self.per_level,
            "refits": self.refits,
            "split_children": self.split_children,
            "model_terms": None if self.model_terms is None else list(self.model_terms),
            "reconcile": self.reconcile,
            "weight_prior": self.weight_prior,
            "irene_epochs": self.irene_epochs,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        return cls(
            ml_method=str(data["ml_method"]),
            aggregator=str(data["aggregator"]),
            residual_terms=tuple(str(t) for t in data["residual_terms"]),
            per_level=bool(data["per_level"]),
            refits=int(data["refits"]),
            split_children=bool(data["split_children"]),
            model_terms=None
            if data["model_terms"] is None
            else tuple(str(t) for t in data["model_terms"]),
            reconcile=reconcile_mode(data),
            weight_prior=float(data.get("weight_prior", 0.0)),
            irene_epochs=int(data["irene_epochs"]),
            seed=int(data["seed"]),
        )


def attach_num_parameters(trees: Sequence[EnergyTree]) -> int:
    """Fill ``num_parameters`` (absent from the IrEne CSVs) from traced zoo trees, by node name.

    Returns how many nodes were filled. Without :mod:`predictor.trace.zoo` (or for a model it does not
    know) nothing changes: the regressors ignore a column that is constant in training.
    """
    try:
        from predictor.trace import zoo
    except ImportError:
        return 0
    from predictor.learn.data import FUNCTIONAL_OPS

    # Keyed by fqn: class names changed between transformers 4.2 (the dataset) and 5.
    cache: dict[str, tuple[int, dict[str, int]] | None] = {}
    filled = 0
    for tree in trees:
        model = tree.model_name
        if model not in cache:
            try:
                traced = zoo.build_zoo_tree(model, 1, 8, counting_mode="irene")
            except Exception:  # a model the zoo cannot build: leave its counts at 0
                cache[model] = None
            else:
                by_fqn = {
                    n.fqn: n.num_parameters
                    for n in traced.walk()
                    if n.level != "model" and n.type not in FUNCTIONAL_OPS
                }
                cache[model] = (traced.root.num_parameters, by_fqn)
        entry = cache[model]
        if entry is None:
            continue
        root_params, by_fqn = entry
        for node in tree.walk():
            if node.level == "model":
                node.num_parameters = root_params
            elif node.type in FUNCTIONAL_OPS:
                node.num_parameters = 0
            elif node.fqn in by_fqn:
                node.num_parameters = by_fqn[node.fqn]
            else:
                continue
            filled += 1
    return filled


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
    ml = MLRegressors.fit(ml_nodes, feature_set, method=settings.ml_method, runtime=runtime)
    leaf_pred, _ = _leaf_predictions(flat, ml)
    # Terms on runtime columns the data lacks are dropped (a CPU-metered dataset has no gpu_*).
    terms = tuple(
        t for t in settings.residual_terms if not t.startswith("own:") or t[4:] in runtime
    )
    agg: Aggregator
    if settings.aggregator == "irene":
        agg = IreneAggregator(
            columns=feature_columns(feature_set, runtime), reconcile=settings.reconcile
        ).fit(trees, leaf_pred, epochs=settings.irene_epochs, seed=settings.seed)
    elif settings.aggregator == "residual":
        agg = ResidualAggregator(
            terms=terms,
            per_level=settings.per_level,
            refits=settings.refits,
            split_children=settings.split_children,
            model_terms=settings.model_terms,
            reconcile=settings.reconcile,
            weight_prior=settings.weight_prior,
        ).fit(trees, leaf_pred)
    else:
        raise ValueError(f"unknown aggregator {settings.aggregator!r}")
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


def _leaf_predictions(flat: Flat, ml: MLRegressors) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Predicted energy of every leaf (ML regressors; a leaf module uses the fallback)."""
    pred = np.zeros(len(flat.nodes), dtype=np.float64)
    extrapolated = np.zeros(len(flat.nodes), dtype=bool)
    ml_idx = [i for i, n in enumerate(flat.nodes) if n.level == "ml"]
    if ml_idx:
        values, ext = ml.predict([flat.nodes[i] for i in ml_idx])
        pred[ml_idx] = values
        extrapolated[ml_idx] = ext
    odd = [i for i in np.flatnonzero(flat.is_leaf).tolist() if flat.nodes[i].level != "ml"]
    if odd:
        pred[odd] = ml.fallback.predict([flat.nodes[i] for i in odd])
        extrapolated[odd] = True
    return pred, extrapolated


def predict_flat(
    flat: Flat, ml: MLRegressors, agg: Aggregator
) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Energy of every node of ``flat`` and the extrapolated mask."""
    leaf_pred, extrapolated = _leaf_predictions(flat, ml)
    return agg.predict_flat(flat, leaf_pred), extrapolated


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
        """Fill ``energy_j`` (J) on every node; flag fallback-predicted nodes ``extrapolated``."""
        self.check_tree(tree)
        flat = Flat.of([tree])
        energy, extrapolated = predict_flat(flat, self.ml, self.aggregator)
        for node, e, ext in zip(flat.nodes, energy.tolist(), extrapolated.tolist(), strict=True):
            node.energy_j = float(e)
            node.extrapolated = bool(ext)
        if tree.counting_mode != self.counting_mode:
            tree.meta["profile_warning"] = (
                f"tree counted in {tree.counting_mode!r} mode, profile trained on "
                f"{self.counting_mode!r} features"
            )
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
            "unseen_types_fallback": "pooled linear regressor; such nodes are flagged extrapolated",
            "known_types": sorted(self.ml.by_type),
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
        return _digest(self.payload_text())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (:func:`predictor.files.write_bytes_atomic`); returns the path."""
        import joblib

        out = Path(path)
        text = self.payload_text()
        record = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "sha256": _digest(text),
            "payload": text,
        }
        buf = io.BytesIO()
        joblib.dump(record, buf, compress=3)
        write_bytes_atomic(out, buf.getvalue())
        return out

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
        )


class _PlainDataUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any global (class, function) is refused, so no code runs."""

    def find_class(self, module: str, name: str) -> Any:
        raise ProfileError(
            f"profile files hold only plain data; refusing {module}.{name} (the file asks to "
            "import and call code, which loading a profile never does)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise ProfileError("profile files hold only plain data; refusing a persistent reference")


def _decompress(data: bytes) -> bytes:
    """The pickle inside a joblib file: raw (not compressed) or a zlib/gzip/bz2/xz/lzma stream,
    recognised by joblib's magic prefixes; at most :data:`MAX_PAYLOAD_BYTES` of output."""
    limit = MAX_PAYLOAD_BYTES
    decomp: Any
    if data[:1] == b"\x80":  # pickle protocol >= 2 opcode: joblib.dump without compression
        return data
    if data[:1] == b"\x78":  # zlib (joblib compress=3, the default compressor)
        decomp = zlib.decompressobj(zlib.MAX_WBITS)
    elif data[:2] == b"\x1f\x8b":
        decomp = zlib.decompressobj(31)  # gzip
    elif data[:2] == b"BZ":
        decomp = bz2.BZ2Decompressor()
    elif data[:5] == b"\xfd7zXZ" or data[:2] == b"\x5d\x00":
        decomp = lzma.LZMADecompressor()  # xz or legacy .lzma
    else:
        raise ValueError("unrecognised file header (not a joblib pickle)")
    out = decomp.decompress(data, limit + 1)
    if len(out) > limit:
        raise ValueError(f"decompresses to more than {limit} bytes")
    if not decomp.eof:
        raise ValueError("compressed stream ends early")
    return bytes(out)


def _load_record(path: Path) -> Any:
    """``joblib.load`` without its code execution: decompress, then unpickle plain data only."""
    raw = path.read_bytes()
    return _PlainDataUnpickler(io.BytesIO(_decompress(raw))).load()


def _read(path: Path) -> Profile:
    hint = "re-create it with `irene train DATA -o PROFILE` or use a shipped profile"
    try:
        record = _load_record(path)
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc}; {hint}") from None
    except Exception as exc:  # zlib/pickle raise many types on garbage or truncation
        raise ProfileError(
            f"{path}: not a readable profile file (corrupt or truncated: {type(exc).__name__}: {exc}); {hint}"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ProfileError(f"{path}: not an {FORMAT} file; {hint}")
    version = record.get("version")
    if version != FORMAT_VERSION:
        raise ProfileError(
            f"{path}: profile format version {version!r} is not supported by this pytest-irene "
            f"(it reads version {FORMAT_VERSION}); upgrade pytest-irene or {hint}"
        )
    text = record.get("payload")
    digest = record.get("sha256")
    if not isinstance(text, str) or not isinstance(digest, str):
        raise ProfileError(f"{path}: profile record lacks its payload or checksum; {hint}")
    if _digest(text) != digest:
        raise ProfileError(
            f"{path}: checksum mismatch: the profile was modified or corrupted after it was saved; {hint}"
        )
    try:
        return Profile.from_payload(json.loads(text), path=path)
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(
            f"{path}: profile payload is malformed ({type(exc).__name__}: {exc}); {hint}"
        ) from None


def list_profiles() -> list[str]:
    """Names of the profiles shipped inside the package."""
    return sorted(p.name.removesuffix(SUFFIX) for p in PROFILES_DIR.glob(f"*{SUFFIX}"))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_profile(name_or_path: str | os.PathLike[str] | None = None) -> Profile:
    """A shipped profile by name (default :data:`DEFAULT_PROFILE`) or a profile file by path."""
    if name_or_path is None:
        name_or_path = DEFAULT_PROFILE
    candidate = Path(name_or_path)
    if candidate.is_file():
        return _read(candidate)
    shipped = PROFILES_DIR / f"{name_or_path}{SUFFIX}"
    if isinstance(name_or_path, str) and "/" not in name_or_path and shipped.is_file():
        return _read(shipped)
    raise ProfileError(
        f"no profile {str(name_or_path)!r}: not a file, and not a shipped profile "
        f"(shipped: {', '.join(list_profiles()) or 'none'})"
    )


def _library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("pytest-irene", "numpy", "scikit-learn", "joblib", "torch"):
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
    )
