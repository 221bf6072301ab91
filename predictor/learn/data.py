"""IrEne datasets <-> EnergyTree.

Two layouts are read:

- the original CSV layout of the authors' ``datasets/device_N/`` folders (four files, one row
  per node per configuration, parents implied by the fqn);
- the authors' JSONL layout (one configuration a line, nested ``frontend_tree``).

and the CSV layout is written (by ``irene calibrate``), with the same columns and units, so a
dataset measured here trains and evaluates exactly like the authors' one.
:func:`attach_num_parameters` fills in the parameter counts the authors' files lack.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predictor.errors import DataError
from predictor.files import write_text_atomic
from predictor.trace.tree import RUNTIME_FEATURES, EnergyTree, Level, Node

__all__ = [
    "CSV_FILES",
    "FUNCTIONAL_OPS",
    "REQUIRED_COLUMNS",
    "Dataset",
    "attach_num_parameters",
    "load_csv_dataset",
    "load_dataset",
    "load_jsonl_dataset",
    "write_csv_dataset",
]

#: level -> file of the CSV layout; "ml" is split into leaf modules (ml1) and functional ops (ml2).
CSV_FILES: dict[str, str] = {
    "model": "model_level_features.csv",
    "module": "module_level_features.csv",
    "ml1": "ml1_level_features.csv",
    "ml2": "ml2_level_features.csv",
}
#: Primitive types that are functional ops called inside a module (named after that module).
FUNCTIONAL_OPS: frozenset[str] = frozenset({"MatMul", "Softmax"})

REQUIRED_COLUMNS: tuple[str, ...] = (
    "batch_size",
    "seq_len",
    "flops",
    "mem_bytes",
    "energy_mean",
    "level_name",
    "model_name",
)
_COLUMNS: tuple[str, ...] = (
    "batch_size",
    "seq_len",
    "flops",
    "mem_bytes",
    *RUNTIME_FEATURES,
    "energy_mean",
    "level_name",
    "model_name",
)

Config = tuple[str, int, int]


@dataclass
class Dataset:
    """Trees of one dataset, one per (model, batch_size, seq_len) configuration.

    ``skipped`` lists configurations that could not form a tree, with the reason (e.g. the
    authors' data has ML rows for (openai-gpt, 32, 128) but no model row).
    """

    path: Path
    trees: list[EnergyTree]
    skipped: list[str] = field(default_factory=list)
    hardware: dict[str, Any] = field(default_factory=dict)

    @property
    def model_names(self) -> list[str]:
        """Model names in order of first appearance."""
        return list(dict.fromkeys(t.model_name for t in self.trees))

    def by_model(self, name: str) -> list[EnergyTree]:
        return [t for t in self.trees if t.model_name == name]


def load_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a dataset folder (CSV layout) or a ``.jsonl`` file (JSONL layout)."""
    p = Path(path)
    if p.is_file() and p.suffix == ".jsonl":
        return load_jsonl_dataset(p)
    if p.is_dir():
        return load_csv_dataset(p)
    raise DataError(
        f"{p}: no such dataset; give a folder with {', '.join(CSV_FILES.values())} "
        "or a .jsonl file in the IrEne JSONL layout"
    )


# -- CSV layout -------------------------------------------------------------------------------


@dataclass
class _Row:
    config: Config
    name: str
    flops: float
    mem_bytes: float
    energy_j: float
    runtime: dict[str, float]


def _read_csv(path: Path) -> Iterator[_Row]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(
                f"{path}: the file is empty; expected a header with {', '.join(REQUIRED_COLUMNS)}"
            ) from None
        index = {name.strip(): i for i, name in enumerate(header)}
        missing = [c for c in REQUIRED_COLUMNS if c not in index]
        if missing:
            raise DataError(
                f"{path}:1: missing column(s) {', '.join(missing)}; the IrEne layout needs "
                f"{', '.join(REQUIRED_COLUMNS)} (runtime columns {', '.join(RUNTIME_FEATURES)} optional)"
            )
        runtime_cols = [c for c in RUNTIME_FEATURES if c in index]
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise DataError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")

            def num(col: str, row: list[str] = row, line: int = line) -> float:
                raw = row[index[col]].strip()
                try:
                    value = float(raw)
                except ValueError:
                    raise DataError(
                        f"{path}:{line}: column {col!r} must be a number (got {raw!r})"
                    ) from None
                if not math.isfinite(value):
                    raise DataError(f"{path}:{line}: column {col!r} must be finite (got {raw!r})")
                return value

            runtime = {c: num(c) for c in runtime_cols if row[index[c]].strip() != ""}
            model = row[index["model_name"]].strip()
            config = (model, int(num("batch_size")), int(num("seq_len")))
            yield _Row(
                config=config,
                name=row[index["level_name"]].strip(),
                flops=num("flops"),
                mem_bytes=num("mem_bytes"),
                energy_j=num("energy_mean"),
                runtime=runtime,
            )


def _split_name(name: str) -> tuple[str, str]:
    fqn, sep, cls = name.rpartition(":")
    if not sep:
        return "", name
    return fqn, cls


def _node(row: _Row, level: Level) -> Node:
    fqn, cls = _split_name(row.name)
    model, batch, seq = row.config
    return Node(
        name=row.name if level != "model" else model,
        level=level,
        type=cls if level != "model" else model,
        fqn=fqn,
        flops=row.flops,
        mem_bytes=row.mem_bytes,
        batch_size=batch,
        seq_len=seq,
        runtime=row.runtime,
        measured_energy_j=row.energy_j,
    )


def _enclosing(fqn: str, modules: dict[str, Node], inclusive: bool) -> Node | None:
    """The nearest module whose fqn is a dotted prefix of ``fqn`` (itself too if inclusive)."""
    parts = fqn.split(".") if fqn else []
    start = len(parts) if inclusive else len(parts) - 1
    for cut in range(start, 0, -1):
        found = modules.get(".".join(parts[:cut]))
        if found is not None:
            return found
    return None


def load_csv_dataset(folder: str | os.PathLike[str]) -> Dataset:
    """Read the authors' CSV layout; each node is linked to the nearest enclosing module."""
    root_dir = Path(folder)
    missing = [f for f in CSV_FILES.values() if not (root_dir / f).is_file()]
    if missing:
        raise DataError(f"{root_dir}: missing file(s) {', '.join(missing)} of the IrEne CSV layout")

    rows: dict[str, dict[Config, list[_Row]]] = {}
    for key, fname in CSV_FILES.items():
        per_config: dict[Config, list[_Row]] = {}
        for row in _read_csv(root_dir / fname):
            per_config.setdefault(row.config, []).append(row)
        rows[key] = per_config

    trees: list[EnergyTree] = []
    skipped: list[str] = []
    configs = list(dict.fromkeys(c for key in ("model", "module", "ml1", "ml2") for c in rows[key]))
    for config in configs:
        model_rows = rows["model"].get(config, [])
        if len(model_rows) != 1:
            skipped.append(
                f"{config[0]} batch {config[1]} seq {config[2]}: "
                f"{len(model_rows)} model-level rows (need exactly 1)"
            )
            continue
        root = _node(model_rows[0], "model")
        modules: dict[str, Node] = {}
        module_nodes = [_node(r, "module") for r in rows["module"].get(config, [])]
        for node in module_nodes:
            modules[node.fqn] = node
        for node in module_nodes:
            parent = _enclosing(node.fqn, modules, inclusive=False) or root
            parent.children.append(node)
        for key, inclusive in (("ml1", False), ("ml2", True)):
            for r in rows[key].get(config, []):
                node = _node(r, "ml")
                (_enclosing(node.fqn, modules, inclusive) or root).children.append(node)
        trees.append(EnergyTree(root=root, counting_mode="irene", meta={"source": str(root_dir)}))

    hardware: dict[str, Any] = {}
    hw_file = root_dir / "hardware.json"
    if hw_file.is_file():
        try:
            hardware = json.loads(hw_file.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{hw_file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    # a dataset measured here (irene calibrate) records the counting of its features
    mode = hardware.get("counting_mode") if isinstance(hardware, dict) else None
    if isinstance(mode, str) and mode:
        for tree in trees:
            tree.counting_mode = mode
    return Dataset(path=root_dir, trees=trees, skipped=skipped, hardware=hardware)


def write_csv_dataset(
    trees: Iterable[EnergyTree],
    folder: str | os.PathLike[str],
    hardware: dict[str, Any] | None = None,
) -> Path:
    """Write trees with measured energy in the CSV layout (same columns and units).

    Each file is written to a temporary name and renamed, so a crash leaves no half file.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    buckets: dict[str, list[list[str]]] = {key: [] for key in CSV_FILES}
    for tree in trees:
        model = tree.model_name
        for node in tree.walk():
            if node.measured_energy_j is None:
                raise DataError(
                    f"{model}: node {node.name!r} has no measured energy; only measured trees "
                    "can be written as a dataset"
                )
            if node.level == "model":
                key = "model"
            elif node.level == "module":
                key = "module"
            else:
                key = "ml2" if node.type in FUNCTIONAL_OPS else "ml1"
            values: dict[str, Any] = {
                "batch_size": float(node.batch_size),
                "seq_len": float(node.seq_len),
                "flops": node.flops,
                "mem_bytes": node.mem_bytes,
                **{c: node.runtime.get(c, "") for c in RUNTIME_FEATURES},
                "energy_mean": node.measured_energy_j,
                "level_name": model if node.level == "model" else node.name,
                "model_name": model,
            }
            buckets[key].append(
                [repr(v) if isinstance(v, float) else str(v) for v in values.values()]
            )
    for key, fname in CSV_FILES.items():
        _atomic_write_csv(out / fname, [list(_COLUMNS), *buckets[key]])
    if hardware is not None:
        write_text_atomic(
            out / "hardware.json", json.dumps(hardware, indent=2, sort_keys=True) + "\n"
        )
    return out


def _atomic_write_csv(path: Path, rows: list[list[str]]) -> None:
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    write_text_atomic(path, buf.getvalue())


# -- num_parameters from the zoo -------------------------------------------------------------


def attach_num_parameters(trees: Iterable[EnergyTree]) -> int:
    """Fill ``num_parameters`` (absent from the IrEne CSVs) from traced zoo trees, by node name.

    Returns how many nodes were filled. Without :mod:`predictor.trace.zoo` (or for a model it does not
    know) nothing changes: the regressors ignore a column that is constant in training.
    """
    try:
        from predictor.trace import zoo
    except ImportError:
        return 0
    # Keyed by fqn: class names changed between transformers 4.2 (the dataset) and 5.
    cache: dict[str, tuple[int, dict[str, int]] | None] = {}
    filled = 0
    for tree in trees:
        model = tree.model_name
        if tree.meta.get("retraced"):  # traced trees carry their own counts
            continue
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


# -- JSONL layout -----------------------------------------------------------------------------

_JSONL_LEVELS: dict[str, Level] = {"model": "model", "module": "module", "ml": "ml"}


def load_jsonl_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read the authors' JSONL layout: one configuration a line with a nested ``frontend_tree``."""
    p = Path(path)
    trees: list[EnergyTree] = []
    with p.open() as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                batch, seq = int(record["batch_size"]), int(record["seq_len"])
                model = str(record["model_name"])
                root = _jsonl_node(record["frontend_tree"], model, batch, seq, parent_fqn="")
            except json.JSONDecodeError as exc:
                raise DataError(f"{p}:{line_no}: not valid JSON ({exc.msg})") from None
            except KeyError as exc:
                raise DataError(f"{p}:{line_no}: missing key {exc.args[0]!r}") from None
            except (TypeError, ValueError) as exc:
                raise DataError(f"{p}:{line_no}: {exc}") from None
            trees.append(EnergyTree(root=root, counting_mode="irene", meta={"source": str(p)}))
    return Dataset(path=p, trees=trees)


def _jsonl_node(obj: dict[str, Any], model: str, batch: int, seq: int, parent_fqn: str) -> Node:
    kind = str(obj["type"])
    if kind not in _JSONL_LEVELS:
        raise ValueError(
            f"node {obj.get('scope')!r}: type must be model, module or ml (got {kind!r})"
        )
    level = _JSONL_LEVELS[kind]
    cls = str(obj["instance_type"])
    scope = str(obj.get("scope", ""))
    fqn = scope.removeprefix("root").removeprefix(".")
    if level == "ml" and cls in FUNCTIONAL_OPS:
        fqn = parent_fqn
    runtime = {
        c: float(obj[c]) for c in RUNTIME_FEATURES if obj.get(c) is not None and obj.get(c) != ""
    }
    energy = obj.get("ground_truth_energy")
    node = Node(
        name=model if level == "model" else f"{fqn}:{cls}",
        level=level,
        type=cls,
        fqn="" if level == "model" else fqn,
        flops=float(obj.get("flops", 0.0)),
        mem_bytes=float(obj.get("mem_bytes", 0.0)),
        num_parameters=int(float(obj.get("num_parameters", 0) or 0)),
        batch_size=batch,
        seq_len=seq,
        runtime=runtime,
        measured_energy_j=None if energy is None else float(energy),
        energy_j=None if obj.get("predicted_energy") is None else float(obj["predicted_energy"]),
    )
    node.children = [
        _jsonl_node(child, model, batch, seq, parent_fqn=node.fqn)
        for child in obj.get("child_nodes_obj", [])
    ]
    return node
