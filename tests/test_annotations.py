"""GitHub annotations: a violation at its budgets-file line, and nothing a name can inject."""

from __future__ import annotations

from pathlib import Path

from energy_trees import small_bert

from predictor.gate.annotations import github_annotations, in_github_actions
from predictor.gate.checks import Check, ModelResult


def test_budget_violation_points_at_its_line_and_marker_ones_at_the_test(tmp_path: Path) -> None:
    budgets = tmp_path / "conf" / "energy_budgets.yaml"
    checks = [
        Check("bert", "encoder", "encoder", 0.24, 0.1, line=12),
        Check("bert", None, None, 0.29, 0.1, origin="marker"),
        Check("bert", "pooler", "pooler", 0.05, 1.0, line=13),  # passed: no annotation
    ]
    result = ModelResult("bert", small_bert(), nodeid="tests/test_m.py::test_bert", checks=checks)
    lines = github_annotations([result], str(budgets), errors=["b.yaml:3: bad"], root=tmp_path)
    assert lines == [
        "::error file=conf/energy_budgets.yaml,line=12,title=energy over budget::"
        "bert / encoder: 240 mJ > 100 mJ budget (+140.0%25)",
        "::error file=tests/test_m.py,title=energy over budget::bert: 290 mJ > 100 mJ budget (+190.0%25)",
        "::error title=energy gate configuration error::b.yaml:3: bad",
    ]


def test_names_cannot_end_the_command_or_add_another() -> None:
    name = "evil\n::warning::x,y:z%"
    result = ModelResult(name, small_bert(), checks=[Check(name, None, None, 0.29, 0.1, line=2)])
    (line,) = github_annotations([result], "a,b:c.yaml")
    assert "\n" not in line
    assert line.startswith("::error file=a%2Cb%3Ac.yaml,line=2,title=energy over budget::evil%0A")
    assert "%25" in line  # the percent sign itself


def test_only_under_github_actions() -> None:
    assert in_github_actions({"GITHUB_ACTIONS": "true"})
    assert not in_github_actions({})
