"""``irene --help``, each command's ``--help``, ``pytest --help`` and the README agree.

The README lists every command's options in the table after ``<!-- cli:options -->`` and every
pytest option in its options table; these tests compare them with the parsers, both ways, and
with what ``--help`` prints.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from predictor.cli.main import COMMANDS, build_parser, main
from predictor.gate.options import OPTIONS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _readme_options() -> dict[str, list[str]]:
    """``{"irene budgets init": ["MODEL ...", "-b/--batch-size N", ...]}`` from the table."""
    block = README.split("<!-- cli:options -->", 1)[1]
    rows: dict[str, list[str]] = {}
    for line in block.splitlines()[3:]:
        if not line.startswith("| `irene"):
            break
        command, options = (cell.strip() for cell in line.strip("|").split("|", 1))
        tokens = re.findall(r"`([^`]+)`", options.replace("\\|", "|"))
        rows[command.strip("`")] = tokens
    return rows


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its full name (``irene budgets check``)."""
    out: dict[str, argparse.ArgumentParser] = {}

    def visit(parser: argparse.ArgumentParser, name: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[name] = parser
        for sub in subs:
            for child, child_parser in sub.choices.items():
                visit(child_parser, f"{name} {child}")

    visit(build_parser(), "irene")
    out.pop("irene", None)
    return out


def _parser_options(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """(long options, positional metavars) of a parser, --help left out."""
    longs: set[str] = set()
    positionals: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            longs.update(o for o in action.option_strings if o.startswith("--"))
        else:
            positionals.add(str(action.metavar or action.dest))
    return longs, positionals


def _readme_split(tokens: list[str]) -> tuple[set[str], set[str]]:
    longs: set[str] = set()
    positionals: set[str] = set()
    for token in tokens:
        head = token.split(" ", 1)[0]
        if head.startswith("-"):
            longs.update(o for o in head.split("/") if o.startswith("--"))
        else:
            positionals.add(head)
    return longs, positionals


def test_irene_help_lists_every_command_and_the_readme_every_command() -> None:
    parsers = _parsers()
    readme = _readme_options()
    assert set(readme) == set(parsers), set(readme) ^ set(parsers)
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    for command in COMMANDS:
        assert f"`irene {command}" in README


@pytest.mark.parametrize("command", sorted(_parsers()))
def test_readme_lists_exactly_the_options_of_each_command(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = _parsers()[command]
    readme_longs, readme_positionals = _readme_split(_readme_options()[command])
    longs, positionals = _parser_options(parser)
    assert readme_longs == longs, (command, readme_longs ^ longs)
    assert readme_positionals == positionals, (command, readme_positionals ^ positionals)
    with pytest.raises(SystemExit) as exit_info:
        main([*command.split()[1:], "--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    for option in sorted(longs):
        assert option in shown, (command, option)


def test_readme_lists_every_pytest_option_and_ini_key(pytester: pytest.Pytester) -> None:
    table = README.split("| option | meaning |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"^\| `(--[\w-]+)", table, re.M))
    flags = {opt.flag for opt in OPTIONS} | {"--no-energy"}
    assert listed == flags, listed ^ flags
    for opt in OPTIONS:
        assert f"`{opt.ini}" in README, opt.ini
    shown = pytester.runpytest("--help").stdout.str()
    for flag in sorted(flags):
        assert flag in shown, flag
