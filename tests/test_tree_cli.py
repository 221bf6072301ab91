"""`irene tree`: text and JSON views, and each bad input giving a clean message and exit code."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from predictor.cli.main import describe_error, main
from predictor.errors import ModelError, SequenceTooLong

TINY = "examples.tiny_models:tiny_bert"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Factory specs such as examples.tiny_models:tiny_bert import from the current directory."""
    monkeypatch.chdir(REPO)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["tree", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_every_node_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, TINY, "--batch-size", "2", "--seq-len", "16", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["counting_mode"] == "irene"
    assert data["meta"]["model"] == TINY
    nodes = [data["root"]]
    seen_levels = set()
    while nodes:
        node = nodes.pop()
        for key in ("name", "level", "type", "flops", "mem_bytes", "num_parameters", "children"):
            assert key in node
        assert node["batch_size"] == 2 and node["seq_len"] == 16
        seen_levels.add(node["level"])
        nodes.extend(node["children"])
    assert seen_levels == {"model", "module", "ml"}


def test_text_view_collapses_identical_layers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, TINY, "-b", "2", "-s", "16")
    assert code == 0
    assert "encoder.layer.0-1:BertLayer (x2)" in out
    assert "encoder.layer.1.attention" not in out
    assert "MFLOPs" in out and "MiB" in out and "params" in out
    assert "counting mode: irene" in out
    code, out, _ = run(capsys, TINY, "-b", "2", "-s", "16", "--no-collapse")
    assert "encoder.layer.1:BertLayer" in out and "(x2)" not in out


def test_counting_and_attention_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "gpt2", "-s", "8", "--counting", "native", "--attn", "sdpa", "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["counting_mode"] == "native"
    assert data["meta"]["attn_implementation"] == "sdpa"


@pytest.mark.parametrize(
    ("argv", "exit_code", "message"),
    [
        (["bert-huge"], 3, "unknown model 'bert-huge'; known models: bert-base-uncased"),
        (["nowhere.module:make"], 3, "cannot import module 'nowhere.module'"),
        (
            ["gpt2", "--seq-len", "2048"],
            3,
            "seq_len 2048 is beyond the model's 1024 positions "
            "(GPT2Config.max_position_embeddings); use --seq-len 1024 or less",
        ),
        (["badmodels:takes_images"], 3, "Images.forward takes no input_ids"),
        (["badmodels:fails_always"], 5, "module 'block:Explodes'"),
    ],
)
def test_bad_input_is_a_clean_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    exit_code: int,
    message: str,
) -> None:
    (tmp_path / "badmodels.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "class Images(nn.Module):\n"
        "    def forward(self, pixel_values):\n"
        "        return pixel_values\n"
        "class Explodes(nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.matmul(x, torch.zeros(3, 3))  # (B, S) @ (3, 3): never fits\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.block = Explodes()\n"
        "    def forward(self, input_ids):\n"
        "        return self.block(input_ids.float())\n"
        "def takes_images():\n"
        "    return Images()\n"
        "def fails_always():\n"
        "    return Net()\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == exit_code
    assert message in err
    assert err.startswith("irene tree: error: ")
    assert "Traceback" not in err and out == ""
    if exit_code == 5:
        assert "'matmul'" in err and "real tensors" in err


def test_seq_len_advice_only_where_the_command_has_the_option() -> None:
    exc = SequenceTooLong("gpt2", 2048, 1024)
    with_option = argparse.Namespace(command="tree", seq_len=2048)
    assert describe_error(exc, with_option) == (
        "gpt2: seq_len 2048 is beyond the model's 1024 positions; use --seq-len 1024 or less"
    )
    assert describe_error(exc, argparse.Namespace(command="diff")) == str(exc)
    assert describe_error(ModelError("x"), with_option) == "x"


def test_list_and_missing_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--list")
    assert code == 0
    assert out.splitlines()[:2] == ["bert-base-uncased", "distilbert-base-uncased"]
    assert "llama-2-7b" in out.splitlines()
    code, out, err = run(capsys)
    assert code == 3 and "give a MODEL: one of bert-base-uncased" in err


def test_bad_numbers_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """An option argparse rejects is a configuration error: exit 4, as the README's table says
    (argparse's own status would be 2)."""
    with pytest.raises(SystemExit) as info:
        main(["tree", "gpt2", "--batch-size", "0"])
    assert info.value.code == 4
    assert "must be a positive integer (got '0')" in capsys.readouterr().err


def test_console_script_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "predictor.cli.main", "tree", "no-such-model"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 3
    assert "known models:" in proc.stderr and "Traceback" not in proc.stderr
