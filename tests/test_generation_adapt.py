"""Adapting a device profile to measured generations, and the shipped fitted profiles."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from predictor.cli.main import main
from predictor.devices import device_profile
from predictor.errors import ConfigError, DataError
from predictor.learn.adapt import fit_adaptation
from predictor.learn.generation import predict_generation
from predictor.learn.generation_adapt import (
    GenerationAdapter,
    generation_measurement,
    generation_tracer,
    is_generation_csv,
    measurements_from_generation_csv,
)
from predictor.learn.profile import load_profile
from predictor.trace.generation import Workload, trace_generation

transformers = pytest.importorskip("transformers")
REPO_ROOT = Path(__file__).resolve().parent.parent


def tiny_llama() -> torch.nn.Module:
    config = transformers.LlamaConfig(
        vocab_size=1024,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    )
    with torch.device("meta"):
        return transformers.LlamaForCausalLM(config).to(torch.bfloat16).eval()


def _runs() -> tuple:  # type: ignore[type-arg]
    """Generations 'measured' on a known truth: an L4 profile with these scales and host
    times; the traced generations with them."""
    base = device_profile("irene-l4")
    truth = {"static_power": 1.3, "memory_energy": 0.8, "sequence_time": 2.0, "vocab_time": 0.5}
    traced = [
        trace_generation(tiny_llama(), Workload(b, 24, 16, prefill_batch=1), name="tiny")
        for b in (1, 4, 16)
    ]
    drafts = [generation_measurement(f"b{i}", "tiny", t, 1.0, 1.0) for i, t in enumerate(traced)]
    energy, time = GenerationAdapter(base, drafts).predict(truth)
    assert time is not None
    runs = [
        generation_measurement(d.label, "tiny", t, float(e), float(s))
        for d, t, e, s in zip(drafts, traced, energy, time, strict=True)
    ]
    return base, runs


def _trees(m):  # type: ignore[no-untyped-def]
    return trace_generation(tiny_llama(), m.workload, name="tiny")


def test_the_adapted_profile_predicts_what_the_adapter_fitted() -> None:
    base, runs = _runs()
    adapter = GenerationAdapter(base, runs)
    fit = fit_adaptation(adapter, runs, loco=False)
    assert fit.residual_mape < 0.5  # the model form recovers its own measurements
    profile = adapter.adapted(fit.scales, name="tiny-l4")
    serving = profile.hardware["serving"]
    assert serving["sequence_s"] > 0 and serving["vocab_s"] > 0
    assert serving["idle_power_w"] == pytest.approx(
        base.physical.static_power_w * fit.scales["static_power"]
    )
    energy, time = adapter.predict(fit.scales)
    for m, e, t in zip(runs, energy, time, strict=True):
        g = predict_generation(_trees(m), profile).energy
        assert g.total_j == pytest.approx(e, rel=1e-9)
        assert g.time_s == pytest.approx(t, rel=1e-9)


def test_a_forward_measurement_is_not_a_generation() -> None:
    from predictor.learn.adapt import Measurement
    from predictor.trace.zoo import build_zoo_tree

    tree = build_zoo_tree("examples.tiny_models:tiny_bert", 1, 8, counting_mode="native")
    forward = Measurement("fwd", "bert", ((tree, 1.0),), energy_j=1.0)
    with pytest.raises(DataError, match="not a generation"):
        GenerationAdapter(device_profile("irene-l4"), [forward])


def _csv(path: Path, rows: list[str], header: str | None = None) -> Path:
    head = header or "model,batch_size,prompt_len,new_tokens,prefill_batch,energy_j,time_s"
    path.write_text("# a comment\n" + head + "\n" + "\n".join(rows) + "\n")
    return path


def test_generation_csv_rows_and_their_errors(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO_ROOT)
    spec = "examples.tiny_models:tiny_llama"
    good = _csv(tmp_path / "g.csv", [f"{spec},4,16,8,1,2.5,0.4", f"{spec},8,16,8,,4.0,"])
    assert is_generation_csv(good)
    runs = measurements_from_generation_csv(good, generation_tracer())
    assert [m.workload.batch_size for m in runs] == [4, 8]  # type: ignore[union-attr]
    assert runs[0].workload.prefill_batch == 1 and runs[1].time_s is None  # type: ignore[union-attr]
    assert runs[0].parts[0][1] == 4.0  # four prefill passes of one prompt
    assert sum(w for _, w in runs[0].parts[1:]) == pytest.approx(7)  # the decode steps
    bad = _csv(tmp_path / "b.csv", [f"{spec},4,16,x,1,2.5,0.4"])
    with pytest.raises(DataError, match=r"b.csv:3: new_tokens must be a number"):
        measurements_from_generation_csv(bad, generation_tracer())
    short = _csv(
        tmp_path / "s.csv", [f"{spec},4,16,2.5"], header="model,batch_size,prompt_len,energy_j"
    )
    assert not is_generation_csv(short)
    with pytest.raises(DataError, match="missing column"):
        measurements_from_generation_csv(short, generation_tracer())


def test_irene_adapt_reads_a_generation_csv(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO_ROOT)
    spec = "examples.tiny_models:tiny_llama"
    data = _csv(
        tmp_path / "gen.csv",
        [f"{spec},{b},32,16,1,{0.02 * b + 0.5},{0.004 * 16 + 0.0004 * b}" for b in (1, 4, 16)],
    )
    (tmp_path / "gen.hardware.json").write_text(
        json.dumps({"scope": "gpu", "attribution": "my lab", "license": "CC-BY-4.0"})
    )
    out = tmp_path / "mine.irene.joblib"
    args = ["adapt", "irene-l4", str(data), "--models", spec, "-o", str(out), "--format", "json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["measurements"] == 3 and "sequence_time" in result["scales"]
    profile = load_profile(out)
    assert profile.hardware["serving"]["sequence_s"] > 0
    assert profile.provenance["data_attribution"] == "my lab"
    # generations adapt device profiles only
    assert main([args[0], "irene-device-1", *args[2:], "--force"]) == ConfigError.exit_code
    assert "is not one" in capsys.readouterr().err


# ---------------------------------------------------------------- the shipped fitted profiles


@pytest.mark.parametrize("name", ["irene-a100-sxm4-40gb", "irene-h100-sxm"])
def test_shipped_profiles_are_fitted_on_ml_energy_and_say_so(name: str) -> None:
    profile = load_profile(name)
    prov = profile.provenance
    assert prov["kind"] == "adapted" and prov["base"]["name"] == name
    assert prov["base"]["sha256"] == device_profile(name).sha256
    assert "ML.ENERGY Leaderboard v2" in prov["data_attribution"]
    assert prov["data_license"] == "Apache-2.0"
    serving = profile.hardware["serving"]
    assert serving["sequence_s"] > 0 and serving["idle_power_w"] > 0


@pytest.mark.parametrize("name", ["irene-a100-sxm4-40gb", "irene-h100-sxm"])
def test_j_per_token_falls_with_batch_at_small_batch(name: str) -> None:
    """Weights are read once per step for the whole batch: J per output token is F / B + V,
    F the step's fixed work (weights, launches) shared by the batch, V each sequence's own
    (its KV cache, and the serving engine's host time per sequence these profiles were fitted
    with). F and V from batches 1 and 2 predict every other batch."""
    profile = load_profile(name)
    per_token, overhead = {}, {}
    for b in (1, 2, 4, 8, 16, 64):
        w = Workload(b, 64, 32, prefill_batch=1)
        energy = predict_generation(trace_generation(tiny_llama(), w, name="tiny"), profile).energy
        per_token[b] = energy.j_per_output_token
        overhead[b] = energy.overhead_j / (b * w.new_tokens)
    values = [per_token[b] for b in sorted(per_token)]
    assert all(a > b for a, b in itertools.pairwise(values)), per_token
    fixed = 2 * (per_token[1] - per_token[2])
    own = 2 * per_token[2] - per_token[1]
    assert fixed > 0 and own > 0
    assert own > overhead[1] > 0  # a sequence's own work includes its host time
    for b, value in per_token.items():
        assert fixed / b + own == pytest.approx(value, rel=0.01), b


def test_generation_results_file_meets_its_targets() -> None:
    """The committed benchmark's figures (benchmarks/bench_generation.py writes them)."""
    results = json.loads((REPO_ROOT / "benchmarks" / "results" / "generation.json").read_text())
    gpus = {g["gpu"]: g for g in results["gpus"]}
    assert set(gpus) == {"NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3"}
    for g in gpus.values():
        assert g["mape"] <= results["targets"]["mape"]
        assert g["scaling_mape"] <= results["targets"]["scaling_mape"]
        assert len({r["model"] for r in g["rows"]}) == 8
