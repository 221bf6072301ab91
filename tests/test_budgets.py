from __future__ import annotations

import re
from pathlib import Path

import pytest
from energy_trees import small_bert

from predictor.errors import ConfigError
from predictor.gate.budgets import (
    Inputs,
    ModelBudget,
    ModuleBudget,
    load_budgets,
    parse_budgets,
)
from predictor.gate.budgets_write import render_budgets_yaml
from predictor.gate.checks import Check, MarkerBudget, check_tree, glob_to_regex, module_nodes
from predictor.gate.units import format_budget, format_energy, parse_energy

GOOD = """\
version: 1
profile: irene-device-1
defaults:
  tolerance: 5%
models:
  bert-base-uncased:
    inputs: {batch_size: 8, seq_len: 128}
    budget: 16 J
    modules:
      "encoder.layer.*": 1.2 J
      "encoder.layer.*.attention.self": 400 mJ
  tiny:
    model: examples.tiny_models:tiny_bert
    inputs: {batch_size: 2, seq_len: 16}
    tolerance: 2%
  fixture-only:
    budget: 1 Wh
"""


@pytest.mark.parametrize(
    ("text", "joules"),
    [
        ("150 mJ", 0.15),
        ("1.5 J", 1.5),
        ("2kJ", 2000.0),
        ("1 Wh", 3600.0),
        ("1e-3 J", 1e-3),
        (".5 mJ", 5e-4),
        ("12 µJ", 1.2e-5),
        ("12 μJ", 1.2e-5),
        ("12 uJ", 1.2e-5),
        ("12uJ", 1.2e-5),
    ],
)
def test_parse_energy_units(text: str, joules: float) -> None:
    assert parse_energy(text) == pytest.approx(joules)


def test_printed_energies_parse_back() -> None:
    """What the reports print (µJ included) is accepted in a budgets file."""
    for joules in (1.2e-5, 3.4e-3, 1.5, 2.5e3, 7.2e6):
        assert parse_energy(format_energy(joules)) == pytest.approx(joules, rel=5e-3)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("fast", "must be an energy like '1.5 J'"),
        ("3 MJ", "unknown energy unit 'MJ'"),
        ("3 mj", "unknown energy unit 'mj'"),
        ("-1 J", "positive"),
        ("0 J", "positive"),
        ("3", "must be an energy"),
    ],
)
def test_parse_energy_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_energy(text)


@pytest.mark.parametrize(
    ("joules", "text"),
    [
        (0.1712, "171 mJ"),
        (0.15, "150 mJ"),
        (16.0, "16.0 J"),
        (1234.5, "1.23 kJ"),
        (1.2e-5, "12.0 µJ"),
        (9.1e-5, "91.0 µJ"),
        (0.0, "0 J"),
        (0.9997, "1.00 J"),
        (3.7e6, "1.03 kWh"),
        (-0.0123, "-12.3 mJ"),
    ],
)
def test_format_energy(joules: float, text: str) -> None:
    assert format_energy(joules) == text


def test_units_docstring_examples_run() -> None:
    import doctest

    import predictor.gate.units

    result = doctest.testmod(predictor.gate.units)
    assert result.attempted > 0 and result.failed == 0


def test_format_budget_rounds_up_to_three_digits() -> None:
    assert format_budget(0.0135802) == "13.6 mJ"
    assert format_budget(16.001) == "16.1 J"
    assert format_budget(0.15) == "150 mJ"
    assert parse_energy(format_budget(0.0001234)) >= 0.0001234


def test_parse_full_file() -> None:
    budgets = parse_budgets(GOOD, "energy_budgets.yaml")
    assert budgets.profile == "irene-device-1"
    assert budgets.tolerance == pytest.approx(0.05)
    bert = budgets.models["bert-base-uncased"]
    assert bert.spec == "bert-base-uncased"
    assert bert.inputs == Inputs(8, 128)
    assert bert.budget_j == 16.0
    assert [(m.pattern, m.budget_j, m.line) for m in bert.modules] == [
        ("encoder.layer.*", 1.2, 10),
        ("encoder.layer.*.attention.self", pytest.approx(0.4), 11),
    ]
    assert bert.line == 6
    tiny = budgets.models["tiny"]
    assert tiny.spec == "examples.tiny_models:tiny_bert"
    assert tiny.tolerance == pytest.approx(0.02)
    assert tiny.budget_j is None
    only = budgets.models["fixture-only"]
    assert not only.collected and only.budget_j == 3600.0


BAD_FILES = [
    ("version: 1\nmodels:\n  a:\n    budget: fast\n", 4, "must be an energy like '1.5 J'"),
    ("version: 1\nmodels:\n  a:\n    budget: 3 MJ\n", 4, "unknown energy unit 'MJ'"),
    ("version: 1\nmodels:\n  a:\n    budget: 3\n", 4, "with a unit like '3 J'"),
    ("version: 1\nmodels:\n  a:\n    bugdet: 1 J\n", 4, "unknown key 'bugdet' in model 'a'"),
    ("version: 1\nmodel:\n  a: {}\n", 2, "unknown key 'model' in the budgets file"),
    ("version: 1\ndefaults:\n  tolerence: 5%\n", 3, "unknown key 'tolerence'"),
    ("version: 1\ndefaults:\n  tolerance: 5\n", 3, "percentage like '5%'"),
    (
        "version: 1\nmodels:\n  a:\n    modules:\n      'x.*': 2 Joules\n",
        5,
        "unknown energy unit",
    ),
    ("version: 1\nmodels: [\n", 3, "malformed YAML"),
    ("version: 1\nmodels:\n  a: {budget: 1 J\n", 4, "malformed YAML"),
    ("version: 1\nmodels:\n  a: {}\n  a: {}\n", 4, "duplicate key 'a' (first on line 3)"),
    ("version: 2\n", 1, "version 2 is not supported"),
    ("models: {}\n", 1, "missing 'version: 1'"),
    ("", 1, "empty"),
    ("- 1\n", 1, "must be a mapping of keys to values (got a sequence)"),
    (
        "version: 1\nmodels:\n  - a\n",
        3,
        "models must be a mapping of keys to values (got a sequence)",
    ),
    (
        "version: 1\nmodels:\n  a: fast\n",
        3,
        "model 'a' must be a mapping of keys to values (got string 'fast')",
    ),
    ("version: 1\nmodels:\n  a:\n    inputs: {batch_size: 8}\n", 4, "inputs needs seq_len"),
    (
        "version: 1\nmodels:\n  a:\n    inputs: {batch_size: 0, seq_len: 8}\n",
        4,
        "positive integer",
    ),
    ("version: 1\nmodels:\n  a:\n    modules:\n      'x.[ab': 1 J\n", 5, "unclosed '['"),
]


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    BAD_FILES,
    ids=[re.sub(r"\W+", "-", case[2]).strip("-") for case in BAD_FILES],
)
def test_errors_name_file_and_line(text: str, where: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_budgets(text, "energy_budgets.yaml")
    message = str(info.value)
    assert message.startswith(f"energy_budgets.yaml:{where}: "), message
    assert fragment in message


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="irene budgets init"):
        load_budgets(tmp_path / "energy_budgets.yaml")


@pytest.mark.parametrize(
    ("pattern", "fqn", "matches"),
    [
        ("encoder.layer.*", "encoder.layer.0", True),
        ("encoder.layer.*", "encoder.layer.0.attention", False),
        ("encoder.layer.*.attention", "encoder.layer.11.attention", True),
        ("encoder.**", "encoder.layer.0.attention", True),
        ("encoder.layer.?", "encoder.layer.10", False),
        ("encoder.layer.[01]", "encoder.layer.1", True),
        ("encoder.layer.[!01]", "encoder.layer.1", False),
        ("pooler", "pooler.dense", False),
    ],
)
def test_glob_segments(pattern: str, fqn: str, matches: bool) -> None:
    assert bool(glob_to_regex(pattern).match(fqn)) is matches


def test_module_nodes_take_outermost_node_per_fqn() -> None:
    modules = module_nodes(small_bert())
    assert list(modules) == [
        "encoder",
        "encoder.layer.0",
        "encoder.layer.0.attention",
        "encoder.layer.1",
        "encoder.layer.1.attention",
        "pooler",
    ]
    assert modules["encoder.layer.0"].level == "module"
    assert modules["pooler"].type == "Linear"


def test_violation_message_format() -> None:
    check = Check(
        "bert-base-uncased", "encoder.layer.3.attention", "encoder.layer.*.attention", 0.1712, 0.150
    )
    assert not check.passed
    assert check.message() == (
        "bert-base-uncased / encoder.layer.3.attention: 171 mJ > 150 mJ budget (+14.1%)"
    )
    whole = Check("bert-base-uncased", None, None, 17.2, 16.0)
    assert whole.message() == "bert-base-uncased: 17.2 J > 16.0 J budget (+7.5%)"


def test_message_never_prints_unequal_values_alike() -> None:
    check = Check("m", None, None, 0.1500001, 0.15)
    left, right = check.message().split(": ")[1].split(" > ")
    assert left != right.removesuffix(" budget (+0.0%)")


@pytest.mark.parametrize(("attention_j", "passed"), [(0.1499, True), (0.15, True), (0.1501, False)])
def test_module_budget_just_under_and_over(attention_j: float, passed: bool) -> None:
    tree = small_bert(attention0_j=attention_j)
    budget = ModelBudget(
        "bert", "bert", modules=(ModuleBudget("encoder.layer.*.attention", 0.15, 7),)
    )
    result = check_tree(tree, budget)
    assert [c.module for c in result.checks] == [
        "encoder.layer.0.attention",
        "encoder.layer.1.attention",
    ]
    assert result.passed is passed
    if not passed:
        assert [c.message() for c in result.violations] == [
            "bert / encoder.layer.0.attention: 150.1 mJ > 150.0 mJ budget (+0.1%)"
        ]


def test_whole_model_budget_and_extra_marker_budgets() -> None:
    tree = small_bert()  # total 0.1 + 0.02 + 0.12 + 0.05 = 0.29 J
    budget = ModelBudget("bert", "bert", budget_j=0.3)
    assert check_tree(tree, budget).passed
    result = check_tree(tree, budget, extra=[MarkerBudget(0.28), MarkerBudget(0.04, "pooler")])
    assert [c.message() for c in result.violations] == [
        "bert: 290 mJ > 280 mJ budget (+3.6%)",
        "bert / pooler: 50.0 mJ > 40.0 mJ budget (+25.0%)",
    ]


def test_glob_matching_nothing_is_a_warning_not_a_failure() -> None:
    budget = ModelBudget("bert", "bert", modules=(ModuleBudget("decoder.*", 1.0, 12),))
    result = check_tree(small_bert(), budget)
    assert result.passed
    assert result.checks == []
    assert result.warnings == ["bert: module glob 'decoder.*' (line 12) matched no module"]


def test_missing_prediction_fails() -> None:
    tree = small_bert()
    tree.root.energy_j = None
    result = check_tree(tree, ModelBudget("bert", "bert", budget_j=1.0))
    assert not result.passed
    assert "no predicted energy" in result.violations[0].message()


def test_check_round_trips_through_dict() -> None:
    check = Check("m", "a.b", "a.*", 0.2, 0.1, kind="compare", base_j=0.09, tolerance=0.05)
    assert Check.from_dict(check.to_dict()) == check


def test_rendered_budgets_parse_and_hold_headroom() -> None:
    tree = small_bert()
    entry = ModelBudget("bert", "examples.tiny_models:tiny_bert", inputs=Inputs(2, 8))
    text = render_budgets_yaml(
        [(entry, tree)], headroom=0.1, extra_globs=["encoder.layer.*.attention"]
    )
    budgets = parse_budgets(text, "out.yaml")
    parsed = budgets.models["bert"]
    assert parsed.spec == "examples.tiny_models:tiny_bert"
    assert parsed.inputs == Inputs(2, 8)
    assert parsed.budget_j == pytest.approx(0.319)
    assert {m.pattern for m in parsed.modules} == {
        "encoder",
        "pooler",
        "encoder.layer.*",
        "encoder.layer.*.attention",
    }
    assert check_tree(tree, parsed).passed
    hotter = small_bert(attention0_j=0.1 * 1.2)
    assert [c.module for c in check_tree(hotter, parsed).violations] == [
        "encoder.layer.0",
        "encoder.layer.0.attention",
    ]


def test_render_rejects_glob_matching_nothing() -> None:
    entry = ModelBudget("bert", "bert", inputs=Inputs(2, 8))
    with pytest.raises(ConfigError, match="matches no module of any model"):
        render_budgets_yaml([(entry, small_bert())], headroom=0.1, extra_globs=["decoder.*"])
