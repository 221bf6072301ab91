"""Energy budgets: the ``energy_budgets.yaml`` schema, its parser, and the checks it drives.

The file (``version: 1``)::

    version: 1
    profile: irene-device-1          # optional: the hardware profile that predicts
    defaults:
      tolerance: 5%                  # allowed growth against a base report (--energy-compare)
    models:
      bert-base-uncased:             # the name; also the spec unless `model:` is given
        model: bert-base-uncased     # optional: zoo name or "package.module:factory"
        inputs: {batch_size: 8, seq_len: 128}
        budget: 16 J                 # whole model
        tolerance: 2%                # optional: overrides defaults.tolerance
        modules:
          "encoder.layer.*": 1.2 J   # every module matching the glob must be within it

A model entry with ``inputs`` is built and checked as its own test item; an entry without
``inputs`` only holds budgets for a model that a test builds itself and hands to the ``energy``
fixture under that name.

Energies are strings with a unit: ``µJ`` (or ``uJ``), ``mJ``, ``J``, ``kJ`` or ``Wh``
(``1 Wh = 3600 J``). Module
globs match a module's fully qualified name (``encoder.layer.3.attention``): ``*`` matches within
one dotted segment, ``**`` across segments, ``?`` one character, ``[ab]`` a character class.

Every error names the file and line: ``energy_budgets.yaml:14: budget for 'encoder.layer.*'
must be an energy like '1.5 J' (got 'fast')``. This module knows nothing of pytest; the plugin and
the ``irene budgets`` CLI both use it.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from predictor.errors import ConfigError, ModelError, TraceError
from predictor.trace.tree import EnergyTree, Node

__all__ = [
    "BUDGETS_VERSION",
    "DEFAULT_TOLERANCE",
    "ENERGY_UNITS",
    "Budgets",
    "Check",
    "Inputs",
    "ModelBudget",
    "ModelCheck",
    "ModuleBudget",
    "check_tree",
    "format_budget",
    "format_energy",
    "format_percent",
    "glob_to_regex",
    "iter_collected",
    "load_budgets",
    "module_nodes",
    "parse_budgets",
    "parse_energy",
    "parse_percent",
    "predict_entry",
    "render_budgets_yaml",
    "suggest_module_globs",
]

BUDGETS_VERSION = 1
#: Allowed growth against a base report when the file sets none.
DEFAULT_TOLERANCE = 0.05

#: Joules per unit. Lower-case keys; parsing is case-sensitive on the prefix (mJ vs MJ).
#: ``µJ`` (micro sign, as the reports print it), ``μJ`` (Greek mu) and ``uJ`` are one unit.
ENERGY_UNITS: dict[str, float] = {
    "µJ": 1e-6,
    "μJ": 1e-6,
    "uJ": 1e-6,
    "mJ": 1e-3,
    "J": 1.0,
    "kJ": 1e3,
    "Wh": 3600.0,
}

_ENERGY_RE = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-zµμ]+)\s*$")
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*$")


# --------------------------------------------------------------------------- units


def parse_energy(text: str) -> float:
    """``"150 mJ"`` -> 0.15 (joules). Raises ValueError with the accepted units."""
    match = _ENERGY_RE.match(text)
    units = ", ".join(u for u in ENERGY_UNITS if u != "μJ")
    if match is None:
        raise ValueError(f"must be an energy like '1.5 J' ({units}) (got {text!r})")
    number, unit = match.groups()
    if unit not in ENERGY_UNITS:
        raise ValueError(f"unknown energy unit {unit!r} in {text!r}; use one of {units}")
    value = float(number) * ENERGY_UNITS[unit]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a positive energy (got {text!r})")
    return value


def parse_percent(text: str) -> float:
    """``"5%"`` -> 0.05. Raises ValueError."""
    match = _PERCENT_RE.match(text)
    if match is None:
        raise ValueError(f"must be a percentage like '5%' (got {text!r})")
    return float(match.group(1)) / 100.0


def format_energy(joules: float, digits: int = 4) -> str:
    """Joules -> a short human string in the closest unit: 0.1712 -> ``'171.2 mJ'``."""
    magnitude = abs(joules)
    if magnitude >= 1e3:
        value, unit = joules / 1e3, "kJ"
    elif magnitude >= 1.0 or magnitude == 0.0:
        value, unit = joules, "J"
    elif magnitude >= 1e-3:
        value, unit = joules * 1e3, "mJ"
    else:
        value, unit = joules * 1e6, "µJ"
    return f"{value:.{digits}g} {unit}"


def format_percent(ratio: float) -> str:
    """A relative change: 0.1412 -> ``'+14.1%'``."""
    return f"{ratio * 100:+.1f}%"


def _format_pair(value_j: float, limit_j: float) -> tuple[str, str]:
    """Format two energies with enough digits that unequal values never print alike."""
    for digits in (4, 6, 8, 12):
        a, b = format_energy(value_j, digits), format_energy(limit_j, digits)
        if a != b or value_j == limit_j:
            return a, b
    return format_energy(value_j, 17), format_energy(limit_j, 17)


# --------------------------------------------------------------------------- globs


@lru_cache(maxsize=512)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a module glob: ``*`` within a segment, ``**`` across, ``?``, ``[...]``."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif ch == "*":
            out.append(r"[^.]*")
            i += 1
        elif ch == "?":
            out.append(r"[^.]")
            i += 1
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                raise ValueError(f"unclosed '[' in module glob {pattern!r}")
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(ch))
            i += 1
    return re.compile("".join(out) + r"\Z")


def module_nodes(tree: EnergyTree) -> dict[str, Node]:
    """Each module of the tree by fully qualified name, root excluded.

    Functional ops share their enclosing module's fqn; the outermost node with a given fqn
    (the module itself, or a leaf module such as a Linear) stands for it.
    """
    out: dict[str, Node] = {}
    for node in tree.walk():
        if node is tree.root or not node.fqn:
            continue
        out.setdefault(node.fqn, node)
    return out


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Inputs:
    """The input shape a collected model is built with."""

    batch_size: int
    seq_len: int


@dataclass(frozen=True)
class ModuleBudget:
    """Every module whose fqn matches ``pattern`` must predict at most ``budget_j``."""

    pattern: str
    budget_j: float
    line: int = 0


@dataclass(frozen=True)
class ModelBudget:
    """The budgets of one model. ``spec`` is a zoo name or ``package.module:factory``."""

    name: str
    spec: str
    inputs: Inputs | None = None
    budget_j: float | None = None
    modules: tuple[ModuleBudget, ...] = ()
    tolerance: float = DEFAULT_TOLERANCE
    line: int = 0

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

    def get(self, name: str) -> ModelBudget | None:
        return self.models.get(name)

    def location(self, line: int) -> str:
        return f"{self.path if self.path is not None else '<budgets>'}:{line}"

    def profile_ref(self) -> str | None:
        """The ``profile:`` value for :func:`predictor.learn.profile.load_profile`: a file relative
        to the budgets file's folder when one exists there, else the value as written (a
        shipped profile's name, or a path from the working directory)."""
        if self.profile is None or self.path is None:
            return self.profile
        candidate = self.path.parent / Path(self.profile).expanduser()
        return str(candidate.resolve()) if candidate.is_file() else self.profile

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


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    """One checked value: a whole model (``module`` None) or one module against a limit.

    ``kind`` is ``"budget"`` (an absolute limit) or ``"compare"`` (the base report's value
    plus the tolerance). ``value_j`` is None when the profile gave no prediction: that fails.
    """

    model: str
    module: str | None
    pattern: str | None
    value_j: float | None
    limit_j: float
    kind: str = "budget"
    base_j: float | None = None
    tolerance: float | None = None

    @property
    def passed(self) -> bool:
        return self.value_j is not None and self.value_j <= self.limit_j

    @property
    def subject(self) -> str:
        return self.model if self.module is None else f"{self.model} / {self.module}"

    def message(self) -> str:
        """``bert-base-uncased / encoder.layer.3.attention: 171.2 mJ > 150 mJ budget (+14.1%)``."""
        if self.value_j is None:
            return f"{self.subject}: no predicted energy (the profile left this node empty)"
        if self.kind == "compare" and self.base_j is not None:
            value, base = _format_pair(self.value_j, self.base_j)
            tol = format_percent(self.tolerance or 0.0).lstrip("+")
            growth = format_percent(self.value_j / self.base_j - 1.0) if self.base_j else "new"
            sign = ">" if not self.passed else "<="
            return f"{self.subject}: {value} {sign} base {base} + {tol} tolerance ({growth})"
        value, limit = _format_pair(self.value_j, self.limit_j)
        sign = ">" if not self.passed else "<="
        return f"{self.subject}: {value} {sign} {limit} budget ({format_percent(self.value_j / self.limit_j - 1.0)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "module": self.module,
            "pattern": self.pattern,
            "value_j": self.value_j,
            "limit_j": self.limit_j,
            "kind": self.kind,
            "base_j": self.base_j,
            "tolerance": self.tolerance,
            "passed": self.passed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        value = data.get("value_j")
        base = data.get("base_j")
        tol = data.get("tolerance")
        return cls(
            model=str(data["model"]),
            module=None if data.get("module") is None else str(data["module"]),
            pattern=None if data.get("pattern") is None else str(data["pattern"]),
            value_j=None if value is None else float(value),
            limit_j=float(data["limit_j"]),
            kind=str(data.get("kind", "budget")),
            base_j=None if base is None else float(base),
            tolerance=None if tol is None else float(tol),
        )


@dataclass(frozen=True)
class ModelCheck:
    """All checks of one model plus warnings (a glob that matched no module)."""

    model: str
    checks: tuple[Check, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def violations(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    @property
    def passed(self) -> bool:
        return not self.violations


def check_tree(
    tree: EnergyTree,
    budget: ModelBudget | None = None,
    *,
    name: str | None = None,
    extra: Iterable[ModuleBudget | tuple[str | None, float]] = (),
) -> ModelCheck:
    """Check a predicted tree against a model's budgets and any extra ones.

    ``extra`` holds budgets from elsewhere (test markers): a ModuleBudget, or
    ``(pattern or None for the whole model, joules)``. Each module matching a glob is one check;
    a glob matching no module is a warning, not a failure.
    """
    model = name or (budget.name if budget else tree.model_name)
    whole: list[float] = []
    globs: list[ModuleBudget] = []
    if budget is not None:
        if budget.budget_j is not None:
            whole.append(budget.budget_j)
        globs.extend(budget.modules)
    for item in extra:
        if isinstance(item, ModuleBudget):
            globs.append(item)
        elif item[0] is None:
            whole.append(item[1])
        else:
            globs.append(ModuleBudget(item[0], item[1]))
    checks: list[Check] = [Check(model, None, None, tree.root.energy_j, limit) for limit in whole]
    warnings: list[str] = []
    modules = module_nodes(tree) if globs else {}
    for mb in globs:
        try:
            regex = glob_to_regex(mb.pattern)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        matched = [(fqn, node) for fqn, node in modules.items() if regex.match(fqn)]
        if not matched:
            where = f" (line {mb.line})" if mb.line else ""
            warnings.append(f"{model}: module glob {mb.pattern!r}{where} matched no module")
        for fqn, node in matched:
            checks.append(Check(model, fqn, mb.pattern, node.energy_j, mb.budget_j))
    return ModelCheck(model, tuple(checks), tuple(warnings))


# --------------------------------------------------------------------------- parsing


@dataclass
class _Y:
    """A YAML value with the line (1-based) it started on."""

    value: Any
    line: int


def _located(node: yaml.Node, loader: yaml.SafeLoader, where: str) -> _Y:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, tuple[_Y, int]] = {}
        for key_node, value_node in node.value:
            key = _located(key_node, loader, where)
            if not isinstance(key.value, str):
                raise ConfigError(f"{where}:{key.line}: keys must be strings (got {key.value!r})")
            if key.value in out:
                raise ConfigError(
                    f"{where}:{key.line}: duplicate key {key.value!r} "
                    f"(first on line {out[key.value][1]}); keep one"
                )
            out[key.value] = (_located(value_node, loader, where), key.line)
        return _Y(out, line)
    if isinstance(node, yaml.SequenceNode):
        return _Y([_located(item, loader, where) for item in node.value], line)
    if isinstance(node, yaml.ScalarNode):
        return _Y(loader.construct_object(node, deep=True), line)
    raise ConfigError(f"{where}:{line}: unsupported YAML node {node.tag!r}")


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
        raise ConfigError(f"{where}:{y.line}: {what} must be an energy like '1.5 J' (got {text!r})")
    try:
        return parse_energy(text)
    except ValueError as exc:
        raise ConfigError(f"{where}:{y.line}: {what} {exc}") from None


def _percent(y: _Y, what: str, where: str) -> float:
    if not isinstance(y.value, str):
        raise ConfigError(
            f"{where}:{y.line}: {what} must be a percentage like '5%' (got {y.value!r})"
        )
    try:
        return parse_percent(y.value)
    except ValueError as exc:
        raise ConfigError(f"{where}:{y.line}: {what} {exc}") from None


def _positive_int(y: _Y, what: str, where: str) -> int:
    if isinstance(y.value, bool) or not isinstance(y.value, int) or y.value <= 0:
        raise ConfigError(f"{where}:{y.line}: {what} must be a positive integer (got {y.value!r})")
    return y.value


_TOP_KEYS = ("version", "profile", "defaults", "models")
_DEFAULT_KEYS = ("tolerance",)
_MODEL_KEYS = ("model", "inputs", "budget", "tolerance", "modules")
_INPUT_KEYS = ("batch_size", "seq_len")


def parse_budgets(text: str, path: Path | str | None = None) -> Budgets:
    """Parse the text of a budgets file; every error names ``path:line``."""
    where = str(path) if path is not None else "<budgets>"
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
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
        profile_y = top["profile"][0]
        if not isinstance(profile_y.value, str) or not profile_y.value.strip():
            raise ConfigError(
                f"{where}:{profile_y.line}: profile must be a profile name or path "
                f"(got {profile_y.value!r})"
            )
        profile = profile_y.value
    tolerance = DEFAULT_TOLERANCE
    if "defaults" in top:
        defaults = _mapping(top["defaults"][0], "defaults", where)
        _no_unknown(defaults, _DEFAULT_KEYS, "defaults", where)
        if "tolerance" in defaults:
            tolerance = _percent(defaults["tolerance"][0], "defaults.tolerance", where)
    models: dict[str, ModelBudget] = {}
    if "models" in top:
        models_y = top["models"][0]
        if models_y.value is not None:
            for name, (entry_y, line) in _mapping(models_y, "models", where).items():
                models[name] = _parse_model(name, entry_y, line, tolerance, where)
    return Budgets(
        path=Path(path) if path is not None else None,
        version=BUDGETS_VERSION,
        profile=profile,
        tolerance=tolerance,
        models=models,
    )


def _parse_model(name: str, y: _Y, line: int, tolerance: float, where: str) -> ModelBudget:
    what = f"model {name!r}"
    entry = _mapping(y, what, where) if y.value is not None else {}
    _no_unknown(entry, _MODEL_KEYS, what, where)
    spec = name
    if "model" in entry:
        spec_y = entry["model"][0]
        if not isinstance(spec_y.value, str) or not spec_y.value.strip():
            raise ConfigError(
                f"{where}:{spec_y.line}: {what}: model must be a zoo name or "
                f"'package.module:factory' (got {spec_y.value!r})"
            )
        spec = spec_y.value.strip()
    inputs: Inputs | None = None
    if "inputs" in entry:
        inputs_y = entry["inputs"][0]
        mapping = _mapping(inputs_y, f"{what}: inputs", where)
        _no_unknown(mapping, _INPUT_KEYS, f"{what}: inputs", where)
        for key in _INPUT_KEYS:
            if key not in mapping:
                raise ConfigError(
                    f"{where}:{inputs_y.line}: {what}: inputs needs {key} "
                    "(e.g. inputs: {batch_size: 8, seq_len: 128})"
                )
        inputs = Inputs(
            batch_size=_positive_int(mapping["batch_size"][0], f"{what}: batch_size", where),
            seq_len=_positive_int(mapping["seq_len"][0], f"{what}: seq_len", where),
        )
    budget_j = _energy(entry["budget"][0], f"{what}: budget", where) if "budget" in entry else None
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
            modules.append(ModuleBudget(pattern, budget, key_line))
    return ModelBudget(
        name=name,
        spec=spec,
        inputs=inputs,
        budget_j=budget_j,
        modules=tuple(modules),
        tolerance=tolerance,
        line=line,
    )


def load_budgets(path: Path | str) -> Budgets:
    """Read and parse a budgets file; a missing or unreadable file is a ConfigError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: budgets file not found; create one with `irene budgets init MODEL` "
            "or point --energy-budgets at it"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the budgets file: {exc}") from None
    return parse_budgets(text, p)


def iter_collected(budgets: Budgets) -> Iterator[ModelBudget]:
    """The models the gate builds itself (those with inputs), in file order."""
    return (m for m in budgets.models.values() if m.collected)


# --------------------------------------------------------------------------- prediction


def predict_entry(entry: ModelBudget, profile: Any, where: str | None = None) -> EnergyTree:
    """Build a collected entry's model from its spec and inputs and predict it with ``profile``
    (a :class:`predictor.learn.profile.Profile`). Imports torch lazily.

    With ``where`` (the entry's ``file:line``), a model that cannot be built or traced is a
    ConfigError at that place, worded for the budgets file (``inputs.seq_len: 100000 exceeds
    the model's 512 positions``) rather than for command-line options."""
    if entry.inputs is None:
        raise ConfigError(
            f"model {entry.name!r} has no inputs; add inputs: {{batch_size: N, seq_len: N}} "
            "or hand the model to the `energy` fixture"
        )
    from predictor.trace.zoo import build_zoo_tree

    try:
        tree = build_zoo_tree(entry.spec, entry.inputs.batch_size, entry.inputs.seq_len)
    except (ModelError, TraceError) as exc:
        if where is None:
            raise
        raise ConfigError(f"{where}: model {entry.name!r}: {_yaml_wording(exc, entry)}") from None
    tree.root.name = entry.name
    predicted: EnergyTree = profile.predict(tree)
    return predicted


_POSITIONS_RE = re.compile(r"beyond the model's (\d+) positions")


def _yaml_wording(exc: Exception, entry: ModelBudget) -> str:
    """A model error's message with its command-line advice turned into the budgets file's."""
    text = str(exc)
    match = _POSITIONS_RE.search(text)
    if match is not None and entry.inputs is not None:
        limit = match.group(1)
        return (
            f"inputs.seq_len: {entry.inputs.seq_len} exceeds the model's {limit} positions; "
            f"set inputs.seq_len to {limit} or less"
        )
    return text


# --------------------------------------------------------------------------- writing


def format_budget(joules: float) -> str:
    """An energy for a budgets file, rounded *up* to 3 significant digits: ``'13.6 mJ'``.

    Only units the parser accepts are used (J, mJ, kJ)."""
    if joules >= 1e3:
        value, unit = joules / 1e3, "kJ"
    elif joules >= 1.0:
        value, unit = joules, "J"
    else:
        value, unit = joules * 1e3, "mJ"
    if value <= 0:
        raise ValueError(f"a budget must be positive (got {joules!r} J)")
    exponent = math.floor(math.log10(value)) - 2
    step = 10.0**exponent
    rounded = math.ceil(value / step - 1e-9) * step
    decimals = max(0, -exponent)
    return f"{rounded:.{decimals}f} {unit}"


def suggest_module_globs(tree: EnergyTree) -> dict[str, float]:
    """Globs worth budgeting and the largest energy among their matches (joules).

    The root's direct children (``embeddings``, ``encoder``), and each repeated block with its
    index replaced by ``*`` (``encoder.layer.3`` -> ``encoder.layer.*``, ``h.0`` -> ``h.*``).
    """
    out: dict[str, float] = {}
    for fqn, node in module_nodes(tree).items():
        if node.energy_j is None:
            continue
        parts = fqn.split(".")
        patterns = []
        if len(parts) == 1:
            patterns.append(fqn)
        if parts[-1].isdigit():
            patterns.append(".".join([*parts[:-1], "*"]))
        for pattern in patterns:
            out[pattern] = max(out.get(pattern, 0.0), node.energy_j)
    return out


def render_budgets_yaml(
    entries: Iterable[tuple[ModelBudget, EnergyTree]],
    *,
    headroom: float,
    profile: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    extra_globs: Iterable[str] = (),
) -> str:
    """An energy_budgets.yaml for predicted models: each budget is the prediction plus
    ``headroom`` (0.1 = 10%), rounded up. ``extra_globs`` adds module globs to each model with a
    matching module; a glob that matches no module of any model is a ConfigError."""
    extra = tuple(extra_globs)
    used: set[str] = set()
    lines = [
        "# Energy budgets checked by `pytest --energy` (pytest-irene).",
        f"# Written by `irene budgets init` with {headroom * 100:g}% headroom over the predictions.",
        f"version: {BUDGETS_VERSION}",
    ]
    if profile:
        lines.append(f"profile: {_yaml_str(profile)}")
    lines += ["defaults:", f"  tolerance: {tolerance * 100:g}%", "models:"]
    for entry, tree in entries:
        total = tree.root.energy_j
        if total is None:
            raise ConfigError(f"model {entry.name!r}: the profile predicted no total energy")
        lines.append(f"  {_yaml_str(entry.name)}:")
        if entry.spec != entry.name:
            lines.append(f"    model: {_yaml_str(entry.spec)}")
        if entry.inputs is not None:
            lines.append(
                f"    inputs: {{batch_size: {entry.inputs.batch_size}, "
                f"seq_len: {entry.inputs.seq_len}}}"
            )
        lines.append(f"    budget: {format_budget(total * (1.0 + headroom))}")
        globs = suggest_module_globs(tree)
        modules = module_nodes(tree)
        for pattern in extra:
            regex = glob_to_regex(pattern)
            values = [
                n.energy_j for f, n in modules.items() if regex.match(f) and n.energy_j is not None
            ]
            if values:
                globs[pattern] = max(values)
                used.add(pattern)
        if globs:
            lines.append("    modules:")
            for pattern, value in globs.items():
                lines.append(
                    f"      {_yaml_str(pattern)}: {format_budget(value * (1.0 + headroom))}"
                )
    unused = [p for p in extra if p not in used]
    if unused:
        raise ConfigError(f"module glob {unused[0]!r} matches no module of any model")
    return "\n".join(lines) + "\n"


def _yaml_str(text: str) -> str:
    """Quote a key or value for YAML when it is not a plain safe word."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*", text) and text.lower() not in {
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "null",
        "y",
        "n",
    }:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
