"""The one-call API: ``predict(model, inputs, *, profile=None, name=None)``."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import predictor.api
from predictor.api import predict
from predictor.errors import ModelError, ProfileError
from predictor.learn.profile import PROFILES_DIR, load_profile


class WithSeqLen(nn.Module):
    """A forward with a ``seq_len`` parameter, named like a library option: it keeps the first
    ``seq_len`` positions before the Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 16)
        self.fc = nn.Linear(16, 16)

    def forward(self, input_ids: torch.Tensor, seq_len: int | None = None) -> torch.Tensor:
        x = self.emb(input_ids)
        if seq_len is not None:
            x = x[:, :seq_len]
        return self.fc(x)  # type: ignore[no-any-return]


def test_predict_a_model_whose_forward_has_a_seq_len_parameter() -> None:
    ids = torch.zeros(4, 32, dtype=torch.long)
    tree = predict(WithSeqLen(), {"input_ids": ids})
    assert tree.root.name == "WithSeqLen"
    assert (tree.root.batch_size, tree.root.seq_len) == (4, 32)
    assert tree.root.energy_j is not None and tree.root.energy_j > 0
    assert all(n.energy_j is not None for n in tree.walk())
    # the model's own seq_len reaches its forward: fewer positions through the Linear
    cut = predict(WithSeqLen(), {"input_ids": ids, "seq_len": 4}, name="cut")
    assert cut.root.name == "cut"
    full_fc, cut_fc = tree.root.children[1], cut.root.children[1]
    # IrEne's 3-D linear: 2 x tokens x 16 x 16 + tokens x 16 (bias), 4x32 and 4x4 tokens
    assert full_fc.flops * 1e6 == pytest.approx(2 * 128 * 256 + 128 * 16)
    assert cut_fc.flops * 1e6 == pytest.approx(2 * 16 * 256 + 16 * 16)
    assert cut.meta["inputs"]["seq_len"] == 4


def test_profile_by_object_name_path_or_default_predicts_the_same() -> None:
    x = torch.zeros(8, 64, 32)
    default = predict(nn.Linear(32, 32), x).to_dict()
    shipped = load_profile(None)
    assert predict(nn.Linear(32, 32), x, profile=shipped).to_dict() == default
    assert predict(nn.Linear(32, 32), x, profile=shipped.name).to_dict() == default
    path = PROFILES_DIR / f"{shipped.name}.irene.joblib"
    assert predict(nn.Linear(32, 32), x, profile=path).to_dict() == default
    with pytest.raises(ProfileError, match="no profile 'nope'"):
        predict(nn.Linear(32, 32), x, profile="nope")


def test_inputs_of_a_wrong_type_are_a_model_error() -> None:
    with pytest.raises(ModelError, match=r"Linear: inputs must be a tensor, a tuple or list"):
        predict(nn.Linear(4, 4), "x")  # type: ignore[arg-type]


def test_docstring_example_runs() -> None:
    result = doctest.testmod(predictor.api)
    assert result.attempted >= 1 and result.failed == 0


def test_readme_python_example_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### From Python", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, object] = {}
    exec(compile(code, "README.md (From Python)", "exec"), scope)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mlp: ") and lines[0].endswith(" J") and lines[1] == "0"
    features, gelu_8 = scope["features"], scope["gelu_8"]
    assert features.counting_mode == "native"  # type: ignore[attr-defined]
    gelu = gelu_8.root.children[1]  # type: ignore[attr-defined]
    assert gelu.flops * 1e6 == 8 * 8 * 128 * 1024 and gelu.mem_bytes == 0


def test_importing_the_api_imports_no_torch() -> None:
    code = "import sys, predictor.api; assert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_top_level_api_is_lazy_and_complete() -> None:
    """``import predictor`` loads no torch; each public name resolves to its stage's object."""
    code = (
        "import sys, predictor; assert 'torch' not in sys.modules; "
        "from predictor import predict, build_tree, load_profile, load_budgets, check_tree; "
        "import predictor.api, predictor.trace.tracer, predictor.learn.profile, "
        "predictor.gate.budgets, predictor.gate.checks; "
        "assert predict is predictor.api.predict and build_tree is predictor.trace.tracer.build_tree; "
        "assert load_profile is predictor.learn.profile.load_profile; "
        "assert load_budgets is predictor.gate.budgets.load_budgets; "
        "assert check_tree is predictor.gate.checks.check_tree"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    import predictor

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        predictor.nope  # noqa: B018
