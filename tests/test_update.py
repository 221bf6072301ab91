"""Budget updates: ``pytest --energy --energy-update`` and ``irene budgets update``.

A model is made costlier, the gate fails, the update raises exactly the budgets it exceeds
(prediction + headroom, rounded up), every other byte of the file stays as it was, and the
next run passes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from energy_trees import small_bert

from predictor.cli.main import main
from predictor.errors import ConfigError
from predictor.gate.budgets import parse_budgets
from predictor.gate.budgets_update import plan_update
from predictor.gate.checks import module_nodes
from predictor.gate.units import format_budget
from predictor.trace.tree import EnergyTree

REPO_ROOT = Path(__file__).resolve().parent.parent

FACTORY = """
from transformers import BertConfig, BertModel


def make():
    config = BertConfig(
        vocab_size=1000, hidden_size={hidden}, num_hidden_layers={layers}, num_attention_heads=2,
        intermediate_size={width}, max_position_embeddings=128, attn_implementation="eager",
    )
    return BertModel(config).eval()
"""


#: The model as first written, and edited to be deeper and wider (3 layers, hidden 512). A
#: model this small is launch-bound on the profile's device (about 7 mJ a kernel whatever its
#: width, as device_1 measured its smallest nodes): a somewhat wider layer barely moves its
#: energy (hidden 128 even predicts a little less than 64), one more layer adds a layer's
#: kernels, and hidden 512 is out of that floor.
BEFORE = {"hidden": 64, "width": 128, "layers": 2}
AFTER = {"hidden": 512, "width": 2048, "layers": 3}


def _source(version: dict[str, int]) -> str:
    return FACTORY.format(**version)


def _predict(version: dict[str, int]) -> EnergyTree:
    import sys
    import tempfile

    from predictor.learn.profile import load_profile, profile_counting
    from predictor.trace.zoo import build_zoo_tree

    with tempfile.TemporaryDirectory() as folder:
        name = f"_update_factory_{version['hidden']}_{version['layers']}"
        (Path(folder) / f"{name}.py").write_text(_source(version))
        sys.path.insert(0, folder)
        try:
            profile = load_profile(None)  # traced as the gate traces: in the profile's counting
            mode = profile_counting(profile)
            return profile.predict(build_zoo_tree(f"{name}:make", 2, 16, counting_mode=mode))
        finally:
            sys.path.remove(folder)
            sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def trees() -> dict[str, EnergyTree]:
    """The model before and after the edit: the edit costs more, layers included."""
    out = {"before": _predict(BEFORE), "after": _predict(AFTER)}
    for fqn in (None, "encoder.layer.0"):
        assert _energy(out["after"], fqn) > _energy(out["before"], fqn) * 1.03
    return out


def _energy(tree: EnergyTree, fqn: str | None = None) -> float:
    value = tree.root.energy_j if fqn is None else module_nodes(tree)[fqn].energy_j
    assert value is not None and value > 0
    return value


def _budgets_text(tree: EnergyTree) -> str:
    """A hand-written file: comments, quoting, a flow mapping, an entry that does not run."""
    total = format_budget(_energy(tree) * 1.02)
    layer = format_budget(_energy(tree, "encoder.layer.0") * 1.02)
    pooler = format_budget(_energy(tree, "pooler") * 3)  # room to spare: stays
    return (
        "# Our energy budgets. Reviewed by the platform team.\n"
        "version: 1\n"
        "defaults:\n"
        "  tolerance: 5%   # growth allowed against the merge base\n"
        "  headroom: 20%\n"
        "models:\n"
        "  mine:                      # the model we ship\n"
        '    model: "mymodel:make"\n'
        "    inputs: {batch_size: 2, seq_len: 16}\n"
        f"    budget: '{total}'        # whole model\n"
        "    modules:\n"
        f'      "encoder.layer.*": {layer}   # each layer\n'
        f"      pooler: {pooler}\n"
        "  fixture-only:              # checked when a test hands it to `energy`\n"
        '    budget: "1 J"   # hand-set, keep\n'
        "    modules: {encoder: 500 mJ}\n"
    )


@pytest.fixture
def project(pytester: pytest.Pytester, trees: dict[str, EnergyTree]) -> pytest.Pytester:
    (pytester.path / "mymodel.py").write_text(_source(BEFORE))
    (pytester.path / "energy_budgets.yaml").write_text(_budgets_text(trees["before"]))
    return pytester


def _changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_update_raises_exceeded_budgets_and_keeps_every_other_byte(
    project: pytest.Pytester, trees: dict[str, EnergyTree], workers: list[str]
) -> None:
    budgets = project.path / "energy_budgets.yaml"
    run = ["-p", "no:cacheprovider", *workers, "--energy"]
    assert project.runpytest_subprocess(*run).ret == pytest.ExitCode.OK

    # the model gets costlier: the gate fails naming what went over
    (project.path / "mymodel.py").write_text(_source(AFTER))
    failed = project.runpytest_subprocess(*run)
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.stdout.fnmatch_lines(["FAILED energy_budgets.yaml::mine - *over budget*"])

    before = budgets.read_bytes()
    updated = project.runpytest_subprocess(*run, "--energy-update")
    assert updated.ret == pytest.ExitCode.OK, updated.stdout.str()
    after = budgets.read_bytes()
    head = trees["after"]
    new_total = format_budget(_energy(head) * 1.2)  # the file's defaults.headroom: 20%
    new_layer = format_budget(
        max(_energy(head, "encoder.layer.0"), _energy(head, "encoder.layer.1")) * 1.2
    )
    changed = _changed_lines(before.decode(), after.decode())
    old_total_line = next(line for line in before.decode().splitlines(True) if "budget: '" in line)
    old_layer_line = next(
        line for line in before.decode().splitlines(True) if "encoder.layer" in line
    )
    old_total = old_total_line.split("'")[1]
    old_layer = old_layer_line.split(": ", 1)[1].split("   #")[0]
    assert changed == [
        (old_total_line, old_total_line.replace(f"'{old_total}'", f"'{new_total}'")),
        (old_layer_line, old_layer_line.replace(old_layer, new_layer)),
    ]
    # comments, quoting, flow mappings, the pooler's loose budget and the entry that did
    # not run: byte for byte
    assert (
        before.replace(old_total.encode(), new_total.encode(), 1).replace(
            old_layer.encode(), new_layer.encode(), 1
        )
        == after
    )
    # the update says what it did and shows the diff
    updated.stdout.fnmatch_lines(
        [
            "energy budgets updated: 2 budgets raised in *energy_budgets.yaml",
            f"  mine: * -> {new_total} (predicted *; line 10)",
            f"  mine / encoder.layer.*: * -> {new_layer} (predicted *; line 12)",
            "--- *energy_budgets.yaml (before)",
            "+++ *energy_budgets.yaml (updated)",
            f"-    budget: '{old_total}'        # whole model",
            f"+    budget: '{new_total}'        # whole model",
        ]
    )
    # the next run passes on the updated file
    assert project.runpytest_subprocess(*run).ret == pytest.ExitCode.OK
    parse_budgets(after.decode(), "energy_budgets.yaml")  # and it is still a valid file


def test_update_all_lowers_loose_budgets_and_option_headroom_wins(
    project: pytest.Pytester, trees: dict[str, EnergyTree]
) -> None:
    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--energy", "--energy-update-all", "--energy-headroom", "50%"
    )
    assert result.ret == pytest.ExitCode.OK
    text = (project.path / "energy_budgets.yaml").read_text()
    tree = trees["before"]
    assert f"pooler: {format_budget(_energy(tree, 'pooler') * 1.5)}\n" in text
    assert f"budget: '{format_budget(_energy(tree) * 1.5)}'" in text
    assert (
        '  fixture-only:              # checked when a test hands it to `energy`\n    budget: "1 J"   # hand-set, keep\n'
        in text
    )


def test_update_needs_a_budgets_file(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", "--energy", "--energy-update")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--energy-update: there is no budgets file to update*"])


# ---------------------------------------------------------------- irene budgets update


@pytest.fixture
def cli_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trees: dict[str, EnergyTree]
) -> Path:
    shutil.copytree(REPO_ROOT / "examples", tmp_path / "examples")
    (tmp_path / "mymodel.py").write_text(_source(AFTER))  # already costlier
    (tmp_path / "energy_budgets.yaml").write_text(_budgets_text(trees["before"]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path / "energy_budgets.yaml"


def test_cli_update_dry_run_then_update(
    cli_project: Path, capsys: pytest.CaptureFixture[str], trees: dict[str, EnergyTree]
) -> None:
    before = cli_project.read_bytes()
    assert main(["budgets", "check", str(cli_project)]) == 1
    capsys.readouterr()
    assert main(["budgets", "update", str(cli_project), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "energy budgets would be updated (dry run): 2 budgets raised" in out
    assert cli_project.read_bytes() == before
    assert main(["budgets", "update", str(cli_project), "--headroom", "10%"]) == 0
    out = capsys.readouterr().out
    assert f"-> {format_budget(_energy(trees['after']) * 1.1)}" in out
    assert "2 of 2 checks passed" not in out  # the whole model, 3 layers, the pooler
    assert "5 of 5 checks passed" in out
    assert main(["budgets", "check", str(cli_project)]) == 0


# ---------------------------------------------------------------- the splice itself


def test_splice_keeps_crlf_flow_maps_quotes_and_comments() -> None:
    text = (
        "# head\r\nversion: 1   # v\r\nmodels:\r\n  bert:\r\n    budget:   '1 mJ'    # keep\r\n"
        '    modules: {encoder: 1 mJ, "pooler": "2 mJ"}  # flow\r\n  other:\r\n'
        "    budget: 5 J # untouched\r\n"
    )
    tree = small_bert()  # total 290 mJ, encoder 240 mJ, pooler 50 mJ
    update = plan_update(text, {"bert": [tree]}, headroom=0.1)
    assert update.new_text == (
        "# head\r\nversion: 1   # v\r\nmodels:\r\n  bert:\r\n    budget:   '319 mJ'    # keep\r\n"
        '    modules: {encoder: 264 mJ, "pooler": "55.0 mJ"}  # flow\r\n  other:\r\n'
        "    budget: 5 J # untouched\r\n"
    )
    assert [c.subject for c in update.changes] == ["bert", "bert / encoder", "bert / pooler"]
    assert update.diff().startswith("--- energy_budgets.yaml (before)\n")


def test_only_exceeded_budgets_move_unless_all() -> None:
    text = "version: 1\nmodels:\n  bert:\n    budget: 1 J\n    modules:\n      pooler: 1 mJ\n"
    tree = small_bert()
    exceeded = plan_update(text, {"bert": [tree]}, headroom=0.1)
    assert [c.subject for c in exceeded.changes] == ["bert / pooler"]
    everything = plan_update(text, {"bert": [tree]}, headroom=0.1, all_budgets=True)
    assert [(c.subject, c.new_text, c.raised) for c in everything.changes] == [
        ("bert", "319 mJ", False),
        ("bert / pooler", "55.0 mJ", True),
    ]
    untouched = plan_update(text, {"gpt": [tree]}, headroom=0.1)
    assert not untouched.changed and untouched.new_text == text


def test_invalid_file_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ConfigError, match=r"b.yaml:3: YAML aliases"):
        plan_update("version: 1\nx: &a 1\ny: *a\n", {}, headroom=0.1, path="b.yaml")
