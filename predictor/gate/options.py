"""The gate's options and the one resolver that decides each of them.

Every option of the gate is one :class:`GateOption` row of :data:`OPTIONS`: its command-line
flag, its ini key (``pytest.ini`` / ``pyproject.toml``), its budgets-file key where it has one,
and its default. :func:`resolve_options` decides every option the same way, for the pytest
plugin and for ``irene budgets check`` alike:

    command line (not None) > ini (not None or empty) > budgets file > default

Relative paths are taken from where their value was written: the invocation directory (command
line), the ini file's folder (ini), the budgets file's folder (budgets file). A profile
reference is a shipped profile's name or a profile file
(:func:`predictor.learn.profile.find_profile`), read from ``profile_base``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from predictor.errors import ConfigError
from predictor.gate.budgets import DEFAULT_BUDGETS_FILE
from predictor.gate.units import parse_percent

__all__ = [
    "CHECK_CHOICES",
    "METER_CHOICES",
    "OPTIONS",
    "GateOption",
    "GateOptions",
    "resolve_options",
]

METER_CHOICES: tuple[str, ...] = ("none", "auto", "nvml", "rapl", "fake")
CHECK_CHOICES: tuple[str, ...] = ("predicted", "measured")


@dataclass(frozen=True)
class GateOption:
    """One option: ``key`` (the :class:`GateOptions` field), ``flag`` (pytest's command line;
    ``irene budgets check`` uses ``cli_flag``), ``ini`` key, ``budgets_key`` (a top-level key
    of the budgets file, or None), ``kind`` (``path``, ``profile``, ``choice``, ``bool``,
    ``number``, ``percent``)."""

    key: str
    flag: str
    ini: str
    help: str
    kind: str = "path"
    choices: tuple[str, ...] = ()
    default: str | None = None
    budgets_key: str | None = None
    metavar: str = "PATH"

    @property
    def cli_flag(self) -> str:
        """The flag of ``irene budgets check`` (``--energy-report`` -> ``--report``)."""
        return "--" + self.flag.removeprefix("--energy-")


#: Every gate option, in the order ``pytest --help`` lists them.
OPTIONS: tuple[GateOption, ...] = (
    GateOption(
        "enabled",
        "--energy",
        "energy",
        "predict the inference energy of the models under test and check energy budgets",
        kind="bool",
    ),
    GateOption(
        "budgets",
        "--energy-budgets",
        "energy_budgets",
        f"energy budgets file (default: {DEFAULT_BUDGETS_FILE} in the rootdir)",
    ),
    GateOption(
        "profile",
        "--energy-profile",
        "energy_profile",
        "hardware profile name or path that predicts (default: the budgets file's "
        "profile:, else the shipped irene-device-1)",
        kind="profile",
        budgets_key="profile",
        metavar="NAME|PATH",
    ),
    GateOption(
        "report",
        "--energy-report",
        "energy_report",
        "write the JSON energy report (every predicted tree and check) to this path",
    ),
    GateOption(
        "compare",
        "--energy-compare",
        "energy_compare",
        "base JSON report: fail modules that grew beyond the tolerance",
    ),
    GateOption(
        "markdown",
        "--energy-markdown",
        "energy_markdown",
        "write a Markdown summary (the diff when comparing) to this path",
    ),
    GateOption(
        "html",
        "--energy-html",
        "energy_html",
        "write a self-contained HTML picture of each model's energy (an icicle sized by "
        "energy; coloured by change when comparing) to this path",
    ),
    GateOption(
        "update",
        "--energy-update",
        "energy_update",
        "raise the exceeded budgets of the models that ran, in place in the budgets file "
        "(prediction + headroom; comments and other entries kept), and show the diff",
        kind="bool",
    ),
    GateOption(
        "update_all",
        "--energy-update-all",
        "energy_update_all",
        "like --energy-update, but set every budget of the models that ran to prediction + "
        "headroom (lowering those with room to spare)",
        kind="bool",
    ),
    GateOption(
        "headroom",
        "--energy-headroom",
        "energy_headroom",
        "margin over the prediction that an update (--energy-update, irene budgets update) "
        "gives a budget (default: the budgets file's defaults.headroom, else 10%%)",
        kind="percent",
        default="10%",
        budgets_key="defaults.headroom",
        metavar="PERCENT",
    ),
    GateOption(
        "meter",
        "--energy-meter",
        "energy_meter",
        "also measure the models under test with this meter (auto: NVML for CUDA models, "
        "RAPL for CPU ones; fake: a deterministic virtual device; default none)",
        kind="choice",
        choices=METER_CHOICES,
        default="none",
        metavar="METER",
    ),
    GateOption(
        "timeout",
        "--energy-timeout",
        "energy_timeout",
        "longest time in seconds to build, trace and predict one model before its test fails "
        "naming it (default 600; 0: no limit)",
        kind="number",
        default="600",
        metavar="SECONDS",
    ),
    GateOption(
        "check",
        "--energy-check",
        "energy_check",
        "which energy the budgets judge: predicted (default) or measured (needs a meter; "
        "fails when it cannot read)",
        kind="choice",
        choices=CHECK_CHOICES,
        default="predicted",
        metavar="WHICH",
    ),
)
_BY_KEY: dict[str, GateOption] = {o.key: o for o in OPTIONS}


@dataclass(frozen=True)
class GateOptions:
    """The gate's options after resolution; ``sources`` says where each came from (``cli``,
    ``ini``, ``budgets`` or ``default``). ``profile`` is the profile reference as written (None:
    the default profile), ``profile_base`` the folder it is relative to."""

    enabled: bool
    budgets: Path
    profile: str | None = None
    profile_base: Path | None = None
    report: Path | None = None
    compare: Path | None = None
    markdown: Path | None = None
    html: Path | None = None
    #: Rewrite the budgets of the models that ran: ``"exceeded"`` ones, ``"all"``, or None.
    update: str | None = None
    #: Margin over a prediction that an update gives a budget (0.1 = 10 %).
    headroom: float = 0.10
    meter: str = "none"
    check: str = "predicted"
    #: Seconds one model may take to build, trace and predict (None: no limit).
    timeout_s: float | None = 600.0
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def metering(self) -> bool:
        return self.meter != "none"

    def describe_source(self, key: str) -> str:
        """``the command line`` / ``the ini file`` ...: where an option's value was set."""
        return {
            "cli": "the command line",
            "ini": "the ini file",
            "budgets": "the budgets file",
        }.get(self.sources.get(key, "default"), "the default")


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "on"}:
        return True
    if text in {"false", "0", "no", "off", ""}:
        return False
    raise ConfigError(f"{where} must be true or false (got {value!r})")


def resolve_options(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any] | None = None,
    budgets_file: Mapping[str, Any] | None = None,
    *,
    invocation_dir: Path,
    ini_dir: Path | None = None,
    budgets_dir: Path | None = None,
    rootdir: Path | None = None,
    ini_name: str = "the ini file",
    file_args: Sequence[str] = (),
    cli_flags: bool = False,
    read_budgets: Callable[[Path, str], Mapping[str, Any]] | None = None,
) -> GateOptions:
    """Decide every option: the command line (``cli``, keyed by option key; None = not given),
    then the ini file (``ini``), then the budgets file's top-level keys (``budgets_file``), then
    the default. A YAML file named as a positional argument (``pytest --energy b.yaml``)
    counts as ``--energy-budgets`` unless that is given. Relative paths are taken from
    ``invocation_dir`` (command line), ``ini_dir`` (ini) or ``budgets_dir`` (budgets file); the
    default budgets file is ``rootdir / energy_budgets.yaml``. ``cli_flags`` words errors with
    ``irene budgets check``'s flags instead of pytest's.

    Raises ConfigError for a value outside an option's choices (naming where it was set) and
    for ``check=measured`` without a meter.

    Instead of ``budgets_file``, ``read_budgets(path, source)`` may read the budgets file
    once its path is decided (only when the gate is enabled); it returns the file's top-level
    values and its folder is the budgets file's base."""
    ini = ini or {}
    file_values: dict[str, Any] = dict(budgets_file or {})
    bases = {"cli": invocation_dir, "ini": ini_dir or invocation_dir, "default": invocation_dir}
    sources: dict[str, str] = {}
    where: dict[str, str] = {}

    def pick(opt: GateOption, cli_value: Any) -> Any:
        """The precedence, for one option: records its source and where it was written."""
        raw_ini = ini.get(opt.key)
        raw_file = file_values.get(opt.budgets_key) if opt.budgets_key else None
        if cli_value is not None:
            value, sources[opt.key] = cli_value, "cli"
            where[opt.key] = opt.cli_flag if cli_flags else opt.flag
        elif raw_ini not in (None, ""):
            value, sources[opt.key], where[opt.key] = raw_ini, "ini", f"{ini_name}: {opt.ini}"
        elif raw_file is not None:
            value, sources[opt.key] = raw_file, "budgets"
            where[opt.key] = f"the budgets file's {opt.budgets_key}:"
        else:
            value, sources[opt.key] = opt.default, "default"
            where[opt.key] = opt.cli_flag if cli_flags else opt.flag
        return value

    def path(value: Any, key: str) -> Path | None:
        if value is None:
            return None
        return (bases[sources[key]] / os.path.expanduser(str(value))).resolve()

    raw_enabled = pick(_BY_KEY["enabled"], cli.get("enabled"))
    enabled = False if raw_enabled is None else _bool(raw_enabled, where["enabled"])
    flags: dict[str, bool] = {}
    for key in ("update", "update_all"):
        raw = pick(_BY_KEY[key], cli.get(key))
        flags[key] = False if raw is None else _bool(raw, where[key])
    update = "all" if flags["update_all"] else "exceeded" if flags["update"] else None
    budgets = path(pick(_BY_KEY["budgets"], cli.get("budgets") or _yaml_arg(file_args)), "budgets")
    budgets = budgets or ((rootdir or invocation_dir) / DEFAULT_BUDGETS_FILE).resolve()
    if enabled and read_budgets is not None:
        file_values.update(read_budgets(budgets, sources["budgets"]))
        budgets_dir = budgets.parent
    bases["budgets"] = budgets_dir or invocation_dir

    choice: dict[str, str] = {}
    for key in ("meter", "check"):
        opt = _BY_KEY[key]
        raw = pick(opt, cli.get(key))
        text = str(raw).strip().lower()
        if text not in opt.choices:
            raise ConfigError(f"{where[key]}: {str(raw)!r} is not one of {', '.join(opt.choices)}")
        choice[key] = text
    if choice["check"] == "measured" and choice["meter"] == "none":
        meter_flag = _BY_KEY["meter"].cli_flag if cli_flags else _BY_KEY["meter"].flag
        raise ConfigError(
            f"{where['check']}: measured needs a meter: add {meter_flag} auto (or nvml, rapl, "
            "fake), or set energy_meter in the ini file"
        )
    profile = pick(_BY_KEY["profile"], cli.get("profile"))
    if profile is not None and (not isinstance(profile, str) or not profile.strip()):
        raise ConfigError(f"{where['profile']}: give a profile name or path (got {profile!r})")
    raw_timeout = pick(_BY_KEY["timeout"], cli.get("timeout"))
    try:
        timeout = float(raw_timeout)
    except (TypeError, ValueError):
        timeout = math.nan
    if not (math.isfinite(timeout) and timeout >= 0):
        raise ConfigError(
            f"{where['timeout']}: {str(raw_timeout)!r} is not a number of seconds >= 0 "
            "(0 turns the limit off)"
        )
    raw_headroom = pick(_BY_KEY["headroom"], cli.get("headroom"))
    headroom = _percent(raw_headroom, where["headroom"])
    if update is not None and enabled and not budgets.is_file():
        update_flag = where["update_all" if update == "all" else "update"]
        raise ConfigError(
            f"{update_flag}: there is no budgets file to update ({budgets}); write one with "
            "`irene budgets init MODEL`"
        )
    report, compare, markdown, html = (
        path(pick(_BY_KEY[key], cli.get(key)), key)
        for key in ("report", "compare", "markdown", "html")
    )
    inputs = {"budgets": budgets, "compare": compare}
    outputs = {"report": report, "markdown": markdown, "html": html}
    for out_key, out_path in outputs.items():
        for in_key, in_path in inputs.items():
            if out_path is not None and out_path == in_path:
                raise ConfigError(
                    f"{where[out_key]}: {out_path} is also the {in_key} file "
                    f"({where.get(in_key) or 'default'}); writing it would overwrite it: "
                    "give another path"
                )
    written = [(k, v) for k, v in outputs.items() if v is not None]
    for i, (key, out_path) in enumerate(written):
        for other_key, other_path in written[:i]:
            if out_path == other_path:
                raise ConfigError(
                    f"{where[key]}: {out_path} is also the {other_key} output's path; give "
                    "another path"
                )
    return GateOptions(
        enabled=enabled,
        budgets=budgets,
        profile=profile.strip() if profile is not None else None,
        profile_base=bases[sources["profile"]] if profile is not None else None,
        report=report,
        compare=compare,
        markdown=markdown,
        html=html,
        update=update,
        headroom=headroom,
        meter=choice["meter"],
        check=choice["check"],
        timeout_s=timeout or None,
        sources=sources,
    )


def _percent(value: Any, where: str) -> float:
    """A percentage option: ``"10%"`` as written, or a fraction read from the budgets file."""
    if isinstance(value, float | int) and not isinstance(value, bool):
        return float(value)
    try:
        return parse_percent(str(value))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _yaml_arg(file_args: Sequence[str]) -> str | None:
    """The budgets file named as a positional argument (``pytest --energy b.yaml``), if any."""
    yaml_args = [a.split("::")[0] for a in file_args]
    yaml_args = [a for a in yaml_args if a.endswith((".yaml", ".yml"))]
    if len(set(yaml_args)) > 1:
        raise ConfigError(
            f"one budgets file per run, got {', '.join(yaml_args)}; run them one at a time"
        )
    return yaml_args[0] if yaml_args else None
