"""The budgets file, ``energy_budgets.yaml``: its schema and its parser.

The file (``version: 1``)::

    version: 1
    profile: irene-device-1          # optional: the hardware profile that predicts
    defaults:
      tolerance: 5%                  # allowed growth against a base report (--energy-compare)
      headroom: 10%                  # margin `--energy-update` adds over a prediction
    models:
      bert-base-uncased:             # the name; also the spec unless `model:` is given
        model: bert-base-uncased     # optional: zoo name or "package.module:factory"
        inputs: {batch_size: 8, seq_len: 128}   # or named shapes: {pixel_values: [8, 3, 224, 224]}
        budget: 16 J                 # whole model
        max_extrapolated: 5%         # optional: fail beyond this share of extrapolated energy
        tolerance: 2%                # optional: overrides defaults.tolerance
        modules:
          "encoder.layer.*": 1.2 J   # every module matching the glob must be within it

A model entry with ``inputs`` is built and checked by the gate itself; an entry without
``inputs`` only holds budgets for a model that a test builds and hands to the ``energy`` fixture
under that name. Energies are strings with a unit (:mod:`predictor.gate.units`); module globs
are described in :mod:`predictor.gate.checks`.

Every error names the file and line: ``energy_budgets.yaml:14: budget for 'encoder.layer.*'
must be an energy like '1.5 J' (got 'fast')``. Writing a budgets file is
:mod:`predictor.gate.budgets_write`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from predictor.errors import ConfigError, OutputError
from predictor.gate.checks import glob_to_regex
from predictor.gate.generation import BUDGET_QUANTITIES, quantity_label
from predictor.gate.units import parse_energy, parse_percent
from predictor.trace.dtypes import MODEL_DTYPES
from predictor.trace.input_specs import TensorSpec, parse_input_specs
from predictor.trace.workload import ONE_TOKEN, Workload, prefill_batch_problem

__all__ = [
    "BUDGETS_VERSION",
    "DEFAULT_BUDGETS_FILE",
    "DEFAULT_HEADROOM",
    "DEFAULT_TOLERANCE",
    "Budgets",
    "Inputs",
    "ModelBudget",
    "ModuleBudget",
    "QuantityBudget",
    "iter_collected",
    "load_budgets",
    "name_problem",
    "parse_budgets",
    "read_budgets_text",
]

#: The budgets file the gate reads when none is named (at pytest's rootdir, or the current
#: folder for ``irene budgets check``).
DEFAULT_BUDGETS_FILE = "energy_budgets.yaml"
BUDGETS_VERSION = 1
#: Allowed growth against a base report when the file sets none.
DEFAULT_TOLERANCE = 0.05
#: Margin over a prediction that ``--energy-update`` and ``irene budgets init`` give a budget
#: when neither the command line nor the file sets one.
DEFAULT_HEADROOM = 0.10

#: Where a value is in the file's text: (start, end) character offsets, end exclusive.
Span = tuple[int, int]


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Inputs:
    """The inputs a collected model is built with: ``batch_size`` and ``seq_len`` (the short
    form for token models: token ids of that shape) and / or ``tensors``, named input shapes
    with dtypes (``pixel_values: [8, 3, 224, 224]``), built on the meta device. With
    ``new_tokens`` a generation (:class:`~predictor.trace.workload.Workload`: ``batch_size``
    sequences, prompts of ``prompt_len`` tokens, ``new_tokens`` generated; ``seq_len`` is
    then the prompt's)."""

    batch_size: int | None
    seq_len: int | None
    tensors: tuple[tuple[str, TensorSpec], ...] = ()
    #: The dtype the model is built in (:data:`predictor.trace.dtypes.MODEL_DTYPES`); None:
    #: the model's own.
    dtype: str | None = None
    prompt_len: int | None = None
    new_tokens: int | None = None
    #: A generation's prompts per prefill pass (None: the whole batch at once).
    prefill_batch: int | None = None

    @property
    def generation(self) -> bool:
        """Whether these inputs are a generation workload."""
        return self.new_tokens is not None

    def workload(self) -> Workload:
        """The generation workload (ValueError for a forward pass's inputs)."""
        if self.new_tokens is None or self.batch_size is None or self.seq_len is None:
            raise ValueError("these inputs are a forward pass, not a generation")
        return Workload(
            self.batch_size,
            self.prompt_len if self.prompt_len is not None else self.seq_len,
            self.new_tokens,
            self.dtype,
            self.prefill_batch,
        )

    def named(self) -> dict[str, TensorSpec] | None:
        """The named tensors, or None when there are none (token ids only)."""
        return dict(self.tensors) if self.tensors else None

    def yaml(self) -> str:
        """The inputs as a budgets file writes them: ``{batch_size: 8, seq_len: 128}`` (a
        generation: ``{batch_size: 8, prompt_len: 128, new_tokens: 256}``)."""
        parts = []
        if self.generation:
            w = self.workload()
            parts += [
                f"batch_size: {w.batch_size}",
                f"prompt_len: {w.prompt_len}",
                f"new_tokens: {w.new_tokens}",
            ]
            if w.prefill_batch is not None:
                parts.append(f"prefill_batch: {w.prefill_batch}")
            if self.dtype is not None:
                parts.append(f"dtype: {self.dtype}")
            return "{" + ", ".join(parts) + "}"
        if self.batch_size is not None and self.seq_len is not None:
            parts += [f"batch_size: {self.batch_size}", f"seq_len: {self.seq_len}"]
        for name, spec in self.tensors:
            shape = f"[{', '.join(str(d) for d in spec.shape)}]"
            parts.append(
                f"{name}: {shape}"
                if spec.dtype is None
                else f"{name}: {{shape: {shape}, dtype: {spec.dtype}}}"
            )
        if self.dtype is not None:
            parts.append(f"dtype: {self.dtype}")
        return "{" + ", ".join(parts) + "}"

    def describe(self) -> str:
        """``batch_size=8, seq_len=128`` (and ``pixel_values=float32[8, 3, 224, 224]``,
        ``dtype=bf16``; a generation: ``batch_size=8, prompt_len=128, new_tokens=256``): how
        reports record (and compare) the inputs."""
        if self.generation:
            return self.workload().describe()
        parts = []
        if self.batch_size is not None and self.seq_len is not None:
            parts += [f"batch_size={self.batch_size}", f"seq_len={self.seq_len}"]
        for name, spec in self.tensors:
            shape = ", ".join(str(d) for d in spec.shape)
            parts.append(f"{name}={spec.dtype or 'default'}[{shape}]")
        if self.dtype is not None:
            parts.append(f"dtype={self.dtype}")
        return ", ".join(parts)


@dataclass(frozen=True)
class ModuleBudget:
    """Every module whose fqn matches ``pattern`` must predict at most ``budget_j``. ``line``
    is the line of its key; ``span`` where its value is in the file's text (for updates)."""

    pattern: str
    budget_j: float
    line: int = 0
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class QuantityBudget:
    """A generation's ``per_token`` or ``per_request`` budget (joules per output token, per
    request: :data:`predictor.gate.generation.QUANTITIES`), at ``line``, its value at ``span``."""

    quantity: str
    budget_j: float
    line: int = 0
    span: Span | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ModelBudget:
    """The budgets of one model. ``spec`` is a zoo name or ``package.module:factory``.
    ``line`` is the line of its name; ``budget_line`` and ``budget_span`` where its whole-model
    ``budget:`` is (0 and None without one)."""

    name: str
    spec: str
    inputs: Inputs | None = None
    budget_j: float | None = None
    modules: tuple[ModuleBudget, ...] = ()
    tolerance: float = DEFAULT_TOLERANCE
    line: int = 0
    budget_line: int = 0
    budget_span: Span | None = field(default=None, compare=False)
    #: The largest share (0..1) of the predicted energy that may come from extrapolated nodes
    #: (kernel classes the profile has no training data for); None: not checked.
    max_extrapolated: float | None = None
    #: A generation's budgets per output token and per request.
    quantities: tuple[QuantityBudget, ...] = ()

    @property
    def collected(self) -> bool:
        """Whether the gate builds this model itself (it has inputs)."""
        return self.inputs is not None


@dataclass(frozen=True)
class Budgets:
    """A parsed budgets file."""

    path: Path | None
    version: int = BUDGETS_VERSION
    profile: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    models: dict[str, ModelBudget] = field(default_factory=dict)
    #: ``defaults.headroom``, or None when the file sets none.
    headroom: float | None = None
    #: ``defaults.max_extrapolated`` (a model's own key overrides it).
    max_extrapolated: float | None = None

    def get(self, name: str) -> ModelBudget | None:
        return self.models.get(name)

    def location(self, line: int) -> str:
        return f"{self.path if self.path is not None else '<budgets>'}:{line}"

    @contextmanager
    def import_path(self) -> Iterator[None]:
        """While building its models, ``package.module:factory`` specs also import from the
        budgets file's folder (the pytest gate and ``irene budgets check`` alike)."""
        folder = str(self.path.parent.resolve()) if self.path is not None else None
        added = folder is not None and folder not in sys.path
        if added:
            sys.path.insert(0, str(folder))
        try:
            yield
        finally:
            if added and str(folder) in sys.path:
                sys.path.remove(str(folder))


# --------------------------------------------------------------------------- parsing


@dataclass
class _Y:
    """A YAML value with the line (1-based) it started on and its span in the text."""

    value: Any
    line: int
    span: Span | None = None


#: The tags a budgets file may hold: plain scalars, mappings and sequences (what YAML resolves
#: without an explicit tag). Anything else (``!!python/...``, custom ``!tags``, merge keys
#: ``<<``, binary, sets) is refused, never constructed.
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
)


class _Loader(yaml.SafeLoader):
    """A safe loader that refuses aliases: a budgets file is small and written by hand, and
    aliases are how a file expands without bound ("billion laughs") or refers to itself."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # PyYAML's parser is untyped
            raise _Refused(
                event.start_mark.line + 1,
                f"YAML aliases (*{event.anchor}) are not supported in a budgets file; "
                "write the value out where it is used",
            )
        return super().compose_node(parent, index)


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _located(node: yaml.Node, loader: yaml.SafeLoader, where: str) -> _Y:
    line = node.start_mark.line + 1
    if node.tag not in _PLAIN_TAGS:
        what = "a merge key (<<)" if node.tag.endswith(":merge") else f"the tag {node.tag!r}"
        raise ConfigError(
            f"{where}:{line}: {what} is not supported in a budgets file; write plain "
            "values, mappings and lists"
        )
    span = (node.start_mark.index, node.end_mark.index)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, tuple[_Y, int]] = {}
        for key_node, value_node in node.value:
            key = _located(key_node, loader, where)
            if not isinstance(key.value, str):
                raise ConfigError(
                    f"{where}:{key.line}: keys must be strings (got {_yaml_kind(key.value)})"
                )
            if key.value in out:
                raise ConfigError(
                    f"{where}:{key.line}: duplicate key {key.value!r} "
                    f"(first on line {out[key.value][1]}); keep one"
                )
            out[key.value] = (_located(value_node, loader, where), key.line)
        return _Y(out, line, span)
    if isinstance(node, yaml.SequenceNode):
        return _Y([_located(item, loader, where) for item in node.value], line, span)
    try:
        return _Y(loader.construct_object(node, deep=True), line, span)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}:{line}: cannot read this value: {exc}") from None


def _plain(value: Any) -> Any:
    """A located value as plain Python (for messages): mappings and lists unwrapped."""
    if isinstance(value, _Y):
        return _plain(value.value)
    if isinstance(value, dict):
        return {k: _plain(v[0]) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


_YAML_TYPES: dict[type, str] = {
    dict: "a mapping",
    list: "a sequence",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
}


def _yaml_kind(value: Any) -> str:
    """``a sequence``, ``the string 'x'``: a parsed YAML value as the user wrote it."""
    value = _plain(value)
    if value is None:
        return "nothing (null)"
    kind = _YAML_TYPES.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return kind
    return f"{kind.split(' ', 1)[1]} {value!r}"


def _mapping(y: _Y, what: str, where: str) -> dict[str, tuple[_Y, int]]:
    if not isinstance(y.value, dict):
        raise ConfigError(
            f"{where}:{y.line}: {what} must be a mapping of keys to values "
            f"(got {_yaml_kind(y.value)})"
        )
    return y.value


def _no_unknown(
    mapping: dict[str, tuple[_Y, int]], allowed: Iterable[str], what: str, where: str
) -> None:
    allowed = tuple(allowed)
    for key, (_, line) in mapping.items():
        if key not in allowed:
            raise ConfigError(
                f"{where}:{line}: unknown key {key!r} in {what}; allowed: {', '.join(allowed)}"
            )


def _energy(y: _Y, what: str, where: str) -> float:
    text = y.value
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise ConfigError(
            f"{where}:{y.line}: {what} must be an energy with a unit like '{text} J' (got {text!r})"
        )
    if not isinstance(text, str):
        raise ConfigError(
            f"{where}:{y.line}: {what} must be an energy like '1.5 J' (got {_yaml_kind(text)})"
        )
    try:
        return parse_energy(text)
    except ValueError as exc:
        raise ConfigError(f"{where}:{y.line}: {what} {exc}") from None


def _percent(y: _Y, what: str, where: str) -> float:
    if not isinstance(y.value, str):
        raise ConfigError(
            f"{where}:{y.line}: {what} must be a percentage like '5%' (got {_yaml_kind(y.value)})"
        )
    try:
        return parse_percent(y.value)
    except ValueError as exc:
        raise ConfigError(f"{where}:{y.line}: {what} {exc}") from None


def _text(y: _Y, requirement: str, where: str) -> str:
    """A non-empty string, or a ConfigError at its line saying ``requirement``."""
    if not isinstance(y.value, str) or not y.value.strip():
        raise ConfigError(f"{where}:{y.line}: {requirement} (got {_yaml_kind(y.value)})")
    return y.value


def _positive_int(y: _Y, what: str, where: str) -> int:
    if isinstance(y.value, bool) or not isinstance(y.value, int) or y.value <= 0:
        raise ConfigError(
            f"{where}:{y.line}: {what} must be a positive integer (got {_yaml_kind(y.value)})"
        )
    return y.value


_TOP_KEYS = ("version", "profile", "defaults", "models")
_DEFAULT_KEYS = ("tolerance", "headroom", "max_extrapolated")
_MODEL_KEYS = (
    "model",
    "inputs",
    "budget",
    "tolerance",
    "modules",
    "max_extrapolated",
    *BUDGET_QUANTITIES,
)
#: The short form of a token model's inputs; any other key of ``inputs`` names an input tensor.
_INPUT_KEYS = ("batch_size", "seq_len")
#: A generation's inputs: batch_size, prompt_len, new_tokens (dtype, prefill_batch optional).
_GENERATION_KEYS = ("batch_size", "prompt_len", "new_tokens")
_GENERATION_OPTIONAL = ("dtype", "prefill_batch")


def parse_budgets(text: str, path: Path | str | None = None) -> Budgets:
    """Parse the text of a budgets file; every error names ``path:line``."""
    where = str(path) if path is not None else "<budgets>"
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except _Refused as exc:
            raise ConfigError(f"{where}:{exc.line}: {exc}") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = exc.problem or exc.context or "malformed YAML"
            raise ConfigError(f"{where}:{line}: malformed YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}:1: malformed YAML: {exc}") from None
        if node is None:
            raise ConfigError(f"{where}:1: the budgets file is empty; start it with 'version: 1'")
        root = _located(node, loader, where)
    finally:
        loader.dispose()

    top = _mapping(root, "the budgets file", where)
    _no_unknown(top, _TOP_KEYS, "the budgets file", where)
    if "version" not in top:
        raise ConfigError(f"{where}:{root.line}: missing 'version: {BUDGETS_VERSION}'")
    version_y = top["version"][0]
    if version_y.value != BUDGETS_VERSION or isinstance(version_y.value, bool):
        raise ConfigError(
            f"{where}:{version_y.line}: version {version_y.value!r} is not supported; "
            f"this pytest-irene reads version {BUDGETS_VERSION}"
        )
    profile: str | None = None
    if "profile" in top:
        profile = _text(top["profile"][0], "profile must be a profile name or path", where)
    tolerance = DEFAULT_TOLERANCE
    headroom: float | None = None
    max_extrapolated: float | None = None
    if "defaults" in top:
        defaults = _mapping(top["defaults"][0], "defaults", where)
        _no_unknown(defaults, _DEFAULT_KEYS, "defaults", where)
        if "tolerance" in defaults:
            tolerance = _percent(defaults["tolerance"][0], "defaults.tolerance", where)
        if "headroom" in defaults:
            headroom = _percent(defaults["headroom"][0], "defaults.headroom", where)
        if "max_extrapolated" in defaults:
            max_extrapolated = _share(
                defaults["max_extrapolated"][0], "defaults.max_extrapolated", where
            )
    models: dict[str, ModelBudget] = {}
    if "models" in top:
        models_y = top["models"][0]
        if models_y.value is not None:
            for name, (entry_y, line) in _mapping(models_y, "models", where).items():
                why = name_problem(name)
                if why:
                    raise ConfigError(f"{where}:{line}: model name {name!r} {why}")
                models[name] = _parse_model(name, entry_y, line, tolerance, where, max_extrapolated)
    return Budgets(
        path=Path(path) if path is not None else None,
        version=BUDGETS_VERSION,
        profile=profile,
        tolerance=tolerance,
        models=models,
        headroom=headroom,
        max_extrapolated=max_extrapolated,
    )


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a model (empty, or holding a control character such as a
    newline: it would break the terminal, JUnit XML and Markdown it is printed in), or None."""
    if not name.strip():
        return "is empty; give each model a name"
    bad = next((ch for ch in name if ch < " " or ch == "\x7f"), None)
    if bad is not None:
        return f"holds the control character {bad!r}; use printable characters only"
    return None


def _share(y: _Y, what: str, where: str) -> float:
    """A percentage between 0 and 100 % (``max_extrapolated: 5%``) as a fraction."""
    value = _percent(y, what, where)
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{where}:{y.line}: {what} must be between 0% and 100% (got {y.value!r})")
    return value


def _parse_inputs(inputs_y: _Y, what: str, where: str) -> Inputs:
    """``{batch_size: 8, seq_len: 128}`` (token models) and / or named input shapes
    ``{pixel_values: [8, 3, 224, 224]}``, ``{x: {shape: [8, 128, 256], dtype: float16}}``."""
    mapping = _mapping(inputs_y, f"{what}: inputs", where)
    if any(k in mapping for k in ("prompt_len", "new_tokens", "prefill_batch")):
        return _generation_inputs(mapping, inputs_y, what, where)
    short = {k: v for k, v in mapping.items() if k in _INPUT_KEYS}
    dtype = _dtype(mapping, what, where)  # the model's dtype, not an input tensor's name
    tensors: list[tuple[str, TensorSpec]] = []
    for key, (value_y, key_line) in mapping.items():
        if key in _INPUT_KEYS or key == "dtype":
            continue
        try:
            (parsed,) = parse_input_specs({key: _plain(value_y)}).values()
        except ValueError as exc:
            raise ConfigError(f"{where}:{key_line}: {what}: inputs: {exc}") from None
        tensors.append((key, parsed))
    try:  # positional and named inputs do not mix
        parse_input_specs({name: list(spec.shape) for name, spec in tensors})
    except ValueError as exc:
        raise ConfigError(f"{where}:{inputs_y.line}: {what}: inputs: {exc}") from None
    if len(short) == 1 or (not short and not tensors):
        missing = [k for k in _INPUT_KEYS if k not in short]
        raise ConfigError(
            f"{where}:{inputs_y.line}: {what}: inputs needs {' and '.join(missing)} "
            "(e.g. inputs: {batch_size: 8, seq_len: 128}), or named input shapes "
            "(e.g. inputs: {pixel_values: [8, 3, 224, 224]})"
        )
    batch = _positive_int(short["batch_size"][0], f"{what}: batch_size", where) if short else None
    seq = _positive_int(short["seq_len"][0], f"{what}: seq_len", where) if short else None
    return Inputs(batch_size=batch, seq_len=seq, tensors=tuple(tensors), dtype=dtype)


def _parse_model(
    name: str,
    y: _Y,
    line: int,
    tolerance: float,
    where: str,
    max_extrapolated: float | None = None,
) -> ModelBudget:
    what = f"model {name!r}"
    entry = _mapping(y, what, where) if y.value is not None else {}
    _no_unknown(entry, _MODEL_KEYS, what, where)
    spec = name
    if "model" in entry:
        spec = _text(
            entry["model"][0],
            f"{what}: model must be a zoo name or 'package.module:factory'",
            where,
        ).strip()
    inputs: Inputs | None = None
    if "inputs" in entry:
        inputs = _parse_inputs(entry["inputs"][0], what, where)
    if "max_extrapolated" in entry:
        max_extrapolated = _share(entry["max_extrapolated"][0], f"{what}: max_extrapolated", where)
    budget_j: float | None = None
    budget_line, budget_span = 0, None
    if "budget" in entry:
        budget_y, budget_line = entry["budget"]
        budget_j = _energy(budget_y, f"{what}: budget", where)
        budget_span = budget_y.span
    quantities: list[QuantityBudget] = []
    for key in BUDGET_QUANTITIES:  # a generation's per_token / per_request
        if key in entry:
            value_y, key_line = entry[key]
            joules = _energy(value_y, f"{what}: {key} (J {quantity_label(key)})", where)
            quantities.append(QuantityBudget(key, joules, key_line, value_y.span))
            if inputs is not None and not inputs.generation:
                raise ConfigError(
                    f"{where}:{key_line}: {what}: {key} budgets a generation, but its inputs "
                    "are one forward pass: give inputs: {batch_size: B, prompt_len: P, "
                    "new_tokens: N}, or budget the pass with budget:"
                )
    if "tolerance" in entry:
        tolerance = _percent(entry["tolerance"][0], f"{what}: tolerance", where)
    modules: list[ModuleBudget] = []
    if "modules" in entry:
        modules_y = entry["modules"][0]
        for pattern, (value_y, key_line) in _mapping(modules_y, f"{what}: modules", where).items():
            try:
                glob_to_regex(pattern)
            except ValueError as exc:
                raise ConfigError(f"{where}:{key_line}: {what}: {exc}") from None
            budget = _energy(value_y, f"budget for {pattern!r}", where)
            modules.append(ModuleBudget(pattern, budget, key_line, value_y.span))
    return ModelBudget(
        name=name,
        spec=spec,
        inputs=inputs,
        budget_j=budget_j,
        modules=tuple(modules),
        tolerance=tolerance,
        line=line,
        budget_line=budget_line,
        budget_span=budget_span,
        max_extrapolated=max_extrapolated,
        quantities=tuple(quantities),
    )


def _dtype(mapping: dict[str, tuple[_Y, int]], what: str, where: str) -> str | None:
    """``inputs.dtype``: one of :data:`~predictor.trace.dtypes.MODEL_DTYPES`, or None."""
    if "dtype" not in mapping:
        return None
    dtype_y = mapping["dtype"][0]
    dtype = _text(dtype_y, f"{what}: inputs.dtype must be a name", where).strip()
    if dtype not in MODEL_DTYPES:
        raise ConfigError(
            f"{where}:{dtype_y.line}: {what}: inputs.dtype must be one of "
            f"{', '.join(MODEL_DTYPES)} (got {dtype!r})"
        )
    return dtype


def _generation_inputs(
    mapping: dict[str, tuple[_Y, int]], inputs_y: _Y, what: str, where: str
) -> Inputs:
    """A generation's inputs: ``{batch_size: 8, prompt_len: 128, new_tokens: 256}``, with an
    optional ``dtype`` (bf16, fp16, fp32; default the model's own) and ``prefill_batch``
    (prompts per prefill pass, 1 to batch_size; default the whole batch)."""
    if "seq_len" in mapping:
        raise ConfigError(
            f"{where}:{mapping['seq_len'][1]}: {what}: a generation's prompt is prompt_len, "
            "not seq_len (inputs: {batch_size: 8, prompt_len: 128, new_tokens: 256})"
        )
    _no_unknown(mapping, _GENERATION_KEYS + _GENERATION_OPTIONAL, f"{what}: inputs", where)
    for key in _GENERATION_KEYS:
        if key not in mapping:
            raise ConfigError(
                f"{where}:{inputs_y.line}: {what}: a generation's inputs need {key} "
                "(e.g. inputs: {batch_size: 8, prompt_len: 128, new_tokens: 256})"
            )
    dtype = _dtype(mapping, what, where)
    prompt = _positive_int(mapping["prompt_len"][0], f"{what}: prompt_len", where)
    batch = _positive_int(mapping["batch_size"][0], f"{what}: batch_size", where)
    prefill: int | None = None
    if "prefill_batch" in mapping:
        prefill_y = mapping["prefill_batch"][0]
        prefill = _positive_int(prefill_y, f"{what}: prefill_batch", where)
        problem = prefill_batch_problem(prefill, batch)
        if problem:
            raise ConfigError(
                f"{where}:{prefill_y.line}: {what}: prefill_batch {prefill} {problem}"
            )
    new_y = mapping["new_tokens"][0]
    new_tokens = _positive_int(new_y, f"{what}: new_tokens", where)
    if new_tokens < 2:
        raise ConfigError(f"{where}:{new_y.line}: {what}: {ONE_TOKEN}")
    return Inputs(
        batch_size=batch,
        seq_len=prompt,
        prompt_len=prompt,
        new_tokens=new_tokens,
        dtype=dtype,
        prefill_batch=prefill,
    )


def read_budgets_text(path: Path | str) -> str:
    """A budgets file's text exactly as stored (no newline translation: offsets of a parse
    of it are offsets in the file). Missing: ConfigError; unreadable: OutputError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: budgets file not found; create one with `irene budgets init MODEL`"
        ) from None
    except OSError as exc:
        raise OutputError.from_os_error(exc, "read", p) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}:1: the budgets file is not UTF-8 text ({exc.reason})") from None


def load_budgets(path: Path | str) -> Budgets:
    """Read and parse a budgets file: a missing or malformed one is a ConfigError, one that
    cannot be read (no permission, a folder) an OutputError."""
    return parse_budgets(read_budgets_text(path), Path(path))


def iter_collected(budgets: Budgets) -> Iterator[ModelBudget]:
    """The models the gate builds itself (those with inputs), in file order."""
    return (m for m in budgets.models.values() if m.collected)
