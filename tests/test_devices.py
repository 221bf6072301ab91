"""Device profiles: specification figures, the physical model, shipped files, physical sanity."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from predictor.devices.physical import PhysicalModel
from predictor.devices.profile import DeviceProfile, device_profile
from predictor.devices.specs import DEVICE_SPECS, DeviceSpec
from predictor.errors import ProfileError
from predictor.gate.report import profile_identity
from predictor.learn.profile import PROFILES_DIR, list_profiles, load_profile
from predictor.learn.profile_file import write_profile_file
from predictor.trace.tree import EnergyTree, Node
from predictor.trace.zoo import build_zoo_tree

SHIPPED = (
    "irene-a100-sxm4-40gb",
    "irene-a100-sxm4-80gb",
    "irene-h100-sxm",
    "irene-h100-pcie",
    "irene-h200",
    "irene-l4",
    "irene-l40s",
    "irene-b200",
)
TINY = ("examples.tiny_models:tiny_bert", "examples.tiny_models:tiny_gpt2")

# H100 SXM's datasheet figures (dense), as the tests compute by hand.
H100_BF16 = 989.4e12
H100_BW = 3350e9
H100_STATIC, H100_BOARD = 140.0, 700.0
H100_CAP = H100_BOARD - H100_STATIC


def one_node_tree(kernel: str, mflops: float, mib: float, dtype: str = "bfloat16") -> EnergyTree:
    leaf = Node(
        name=f"x:{kernel}",
        level="ml",
        type="Op",
        fqn="x",
        flops=mflops,
        mem_bytes=mib,
        kernel=kernel,
        dtype=dtype,
        ops=1,
    )
    root = Node(
        name="m", level="model", type="M", flops=mflops, mem_bytes=mib, ops=1, children=[leaf]
    )
    return EnergyTree(root=root, counting_mode="native")


# -- specifications ---------------------------------------------------------------------------


def test_every_required_device_is_specified_with_public_sources() -> None:
    assert set(SHIPPED) <= set(DEVICE_SPECS)
    for name in SHIPPED:
        spec = DEVICE_SPECS[name]
        assert spec.sources and all(s.startswith("https://") for s in spec.sources), name
        assert any("static_power_w is an estimate" in a for a in spec.assumptions), name
        # a tensor-core device: bf16 matrix rate above the fp32 one
        assert spec.matrix_tflops["bf16"] > 3 * spec.matrix_tflops["fp32"], name


def test_fp8_only_where_the_device_has_it() -> None:
    assert "fp8" not in DEVICE_SPECS["irene-a100-sxm4-40gb"].matrix_tflops
    assert DEVICE_SPECS["irene-h100-sxm"].matrix_tflops["fp8"] == 1978.9
    # A100 runs fp8 at its bf16 rate (no FP8 tensor cores), stated in its notes
    a100 = PhysicalModel.from_spec(DEVICE_SPECS["irene-a100-sxm4-40gb"])
    assert a100.matrix_flops["fp8"] == a100.matrix_flops["bf16"] == 312e12
    assert any("fp8 runs at the bf16 rate" in n for n in DEVICE_SPECS["irene-a100-sxm4-40gb"].notes)


def test_a_spec_with_an_impossible_static_power_is_refused() -> None:
    spec = DEVICE_SPECS["irene-l4"]
    with pytest.raises(ValueError, match="static_power_w < board_power_w"):
        DeviceSpec(**{**spec.__dict__, "static_power_w": 80.0})


# -- the physical model, by hand ----------------------------------------------------------------


def test_a_compute_bound_gemm_by_hand() -> None:
    profile = device_profile("irene-h100-sxm")
    tree = profile.predict(one_node_tree("gemm", mflops=1e6, mib=100.0))
    flops, nbytes = 1e12, 100.0 * 2**20
    e_flop = H100_CAP / H100_BF16  # the matrix unit at peak draws the dynamic budget
    e_byte = 0.5 * H100_CAP / H100_BW
    t_compute = flops / (H100_BF16 * 0.75)
    t_cap = (e_flop * flops + e_byte * nbytes) / H100_CAP
    assert t_compute > t_cap and t_compute > nbytes / (H100_BW * 0.8)
    t = t_compute + 3e-6  # one kernel's ramp
    expected = H100_STATIC * t + e_flop * flops + e_byte * nbytes
    assert tree.root.energy_j == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.7638, abs=1e-4)
    assert tree.meta["predicted_time_s"] == pytest.approx(t, rel=1e-12)


def test_a_memory_bound_softmax_by_hand() -> None:
    profile = device_profile("irene-h100-sxm")
    tree = profile.predict(one_node_tree("softmax", mflops=10.0, mib=1024.0, dtype="float32"))
    nbytes = 2.0**30
    e_byte = 0.5 * H100_CAP / H100_BW
    e_vector = 0.5 * H100_CAP / 66.9e12
    t = nbytes / (H100_BW * 0.65) + 2e-6
    expected = H100_STATIC * t + e_vector * 1e7 + e_byte * nbytes
    assert tree.root.energy_j == pytest.approx(expected, rel=1e-12)


def test_a_tiny_kernel_costs_its_launch() -> None:
    profile = device_profile("irene-h100-sxm")
    tree = profile.predict(one_node_tree("elementwise", mflops=0.0, mib=1e-3))
    nbytes = 1e-3 * 2**20
    e_byte = 0.5 * H100_CAP / H100_BW
    # 2 us of ramp and 1 KiB of traffic are below the 6 us host dispatch of one launch
    assert tree.root.energy_j == pytest.approx(H100_STATIC * 6e-6 + e_byte * nbytes, rel=1e-12)


def test_memory_bound_energy_follows_bytes_compute_bound_follows_flops() -> None:
    profile = device_profile("irene-h100-sxm")

    def energy(kernel: str, mflops: float, mib: float) -> float:
        e = profile.predict(one_node_tree(kernel, mflops, mib)).root.energy_j
        assert e is not None
        return e

    # memory-bound: equal steps in bytes add equal energy; FLOPs barely matter
    base, two, three = (energy("norm", 100.0, m) for m in (512.0, 1024.0, 1536.0))
    assert two - base == pytest.approx(three - two, rel=1e-9)
    assert energy("norm", 200.0, 1024.0) == pytest.approx(two, rel=5e-3)
    # compute-bound: equal steps in FLOPs add equal energy; bytes barely matter
    base, two, three = (energy("gemm", f, 50.0) for f in (1e6, 2e6, 3e6))
    assert two - base == pytest.approx(three - two, rel=1e-9)
    assert energy("gemm", 2e6, 100.0) == pytest.approx(two, rel=2e-2)


def test_board_power_caps_a_gemm_at_full_rate() -> None:
    # an fp8 GEMM at the profile's 75 % of an (unreal) 10x peak would draw more than the board
    spec = DEVICE_SPECS["irene-h100-sxm"]
    fast = PhysicalModel.from_spec(spec)
    fast.matrix_flops = {k: 10 * v for k, v in fast.matrix_flops.items()}
    profile = DeviceProfile(name="fast", physical=fast, scope={}, provenance={})
    tree = profile.predict(one_node_tree("gemm", mflops=1e7, mib=10.0))
    energy, time = tree.root.energy_j, tree.meta["predicted_time_s"]
    assert energy is not None and energy / time <= spec.board_power_w * (1 + 1e-9)


def test_modules_are_their_children_plus_their_own_ops() -> None:
    tree = build_zoo_tree(TINY[0], 2, 16, counting_mode="native")
    device_profile("irene-l4").predict(tree)
    for node in tree.walk():
        kids = sum(c.energy_j or 0.0 for c in node.children)
        assert node.energy_j is not None
        assert kids <= node.energy_j * (1 + 1e-12), node.name
        if node.does_work:
            assert node.energy_j > 0, node.name


def test_an_unknown_kernel_class_is_predicted_by_the_fallback_and_flagged() -> None:
    tree = one_node_tree("", mflops=1.0, mib=1.0)
    tree.root.children[0].type = "Mystery"
    device_profile("irene-h100-sxm").predict(tree)
    leaf = tree.root.children[0]
    assert leaf.extrapolated and leaf.energy_j is not None and leaf.energy_j > 0


# -- physical sanity over every shipped device ------------------------------------------------


@pytest.mark.parametrize("spec", TINY)
def test_predictions_grow_with_batch_and_sequence_on_every_device(spec: str) -> None:
    trees = {
        (b, s): build_zoo_tree(spec, b, s, counting_mode="native")
        for b in (1, 2, 4, 8)
        for s in (8, 16, 32, 64)
    }
    for name in SHIPPED:
        profile = load_profile(name)
        energy = {k: profile.predict(t).root.energy_j for k, t in trees.items()}
        for (b, s), e in energy.items():
            assert e is not None
            for b2, s2 in ((2 * b, s), (b, 2 * s)):
                if (b2, s2) in energy:
                    assert energy[(b2, s2)] >= e, (name, b, s, b2, s2)  # type: ignore[operator]


def test_bf16_costs_less_than_fp32_on_every_tensor_core_device() -> None:
    fp32 = build_zoo_tree(TINY[0], 8, 64, counting_mode="native", dtype="fp32")
    bf16 = build_zoo_tree(TINY[0], 8, 64, counting_mode="native", dtype="bf16")
    assert bf16.root.mem_bytes == pytest.approx(fp32.root.mem_bytes / 2, rel=0.05)
    for name in SHIPPED:
        profile = load_profile(name)
        e32 = profile.predict(fp32).root.energy_j
        e16 = profile.predict(bf16).root.energy_j
        assert e16 is not None and e32 is not None and e16 < e32, name


def test_bert_at_batch_1_on_h100_costs_more_than_its_flops_at_peak_efficiency() -> None:
    tree = build_zoo_tree("bert-base-uncased", 1, 128, counting_mode="native", dtype="bf16")
    device_profile("irene-h100-sxm").predict(tree)
    at_peak = tree.root.flops * 1e6 * H100_BOARD / H100_BF16  # J at 1.41 TFLOP per J
    assert tree.root.energy_j is not None and tree.root.energy_j > 3 * at_peak
    # and static power is why: the static share of the prediction is above a third
    assert H100_STATIC * tree.meta["predicted_time_s"] > tree.root.energy_j / 3


# -- shipped files, loading, scope ----------------------------------------------------------


#: Shipped adapted on measured generations (benchmarks/bench_generation.py --ship).
ADAPTED = ("irene-a100-sxm4-40gb", "irene-h100-sxm")


def test_shipped_device_profiles_are_the_specs_and_match_the_manifest() -> None:
    manifest = json.loads((PROFILES_DIR / "manifest.json").read_text())
    assert set(SHIPPED) <= set(list_profiles())
    for name in SHIPPED:
        loaded = load_profile(name)
        assert isinstance(loaded, DeviceProfile)
        spec = device_profile(name)
        entry = manifest["profiles"][name]
        data = (PROFILES_DIR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert entry["scope"]["kind"] == "gpu"
        if name in ADAPTED:  # the specification, its scales fitted; its base named
            fitted = loaded.physical.to_dict()
            base = spec.physical.to_dict()
            assert {k: v for k, v in fitted.items() if k != "scales"} == {
                k: v for k, v in base.items() if k != "scales"
            }, name
            assert entry["provenance"]["kind"] == "adapted"
            assert entry["provenance"]["base"]["sha256"] == spec.sha256
            assert "ML.ENERGY Leaderboard v2" in entry["provenance"]["data_attribution"]
            assert entry["provenance"]["data_license"] == "Apache-2.0"
            continue
        assert loaded.payload() == spec.payload(), name  # rebuilt the same
        assert entry["provenance"]["kind"] == "specification"


def test_identity_says_device_scope_provenance_and_dtype() -> None:
    identity = profile_identity(load_profile("irene-h100-pcie"))
    assert identity["device"] == "NVIDIA H100 PCIe 80GB"
    assert identity["scope_kind"] == "gpu" and identity["scope"].startswith("GPU board only")
    assert identity["provenance_kind"] == "specification"
    fitted = profile_identity(load_profile("irene-h100-sxm"))
    assert fitted["device"] == "NVIDIA H100 SXM5 80GB" and fitted["provenance_kind"] == "adapted"
    assert "bf16" in identity["dtype"] and identity["counting_mode"] == "native"
    device1 = profile_identity(load_profile("irene-device-1"))
    assert device1["scope_kind"] == "system" and device1["provenance_kind"] == "measured per node"
    assert device1["dtype"] == "fp32 (as measured)"


def test_a_device_profile_with_a_non_finite_number_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    payload = device_profile("irene-l4").payload()
    payload["physical"]["static_power_w"] = -1.0
    path = write_profile_file(tmp_path / "bad.irene.joblib", json.dumps(payload, sort_keys=True))
    with pytest.raises(ProfileError, match="must be > 0"):
        load_profile(path)
    payload["physical"]["static_power_w"] = 16.0
    payload["kind"] = "quantum"
    path = write_profile_file(tmp_path / "odd.irene.joblib", json.dumps(payload, sort_keys=True))
    with pytest.raises(ProfileError, match="unknown profile kind 'quantum'"):
        load_profile(path)


def test_save_and_load_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    profile = device_profile("irene-b200")
    loaded = load_profile(profile.save(tmp_path / "b200.irene.joblib"))
    assert isinstance(loaded, DeviceProfile) and loaded.sha256 == profile.sha256
    tree = build_zoo_tree(TINY[1], 2, 8, counting_mode="native")
    a = profile.predict(tree).root.energy_j
    b = loaded.predict(tree).root.energy_j
    assert a == b and a is not None and math.isfinite(a)


# -- every output that prints a joule says what it describes ----------------------------------


def test_predict_traces_natively_and_says_what_the_joules_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from predictor.cli.main import main

    args = ["predict", TINY[0], "-s", "8", "--dtype", "bf16", "--profile", "irene-h100-pcie"]
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counting_mode"] == "native" and data["root"]["dtype"] == "bfloat16"
    assert data["energy_scope"]["device"] == "NVIDIA H100 PCIe 80GB"
    assert data["energy_scope"]["provenance"].startswith("specification")
    assert main(args) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("joules of profile 'irene-h100-pcie': NVIDIA H100 PCIe 80GB, GPU board")
    assert "; specification: datasheet figures" in line


def test_the_gate_report_and_summary_carry_scope_and_provenance(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    from predictor.cli.main import main

    budgets = tmp_path / "energy_budgets.yaml"
    budgets.write_text(
        "version: 1\nprofile: irene-l4\nmodels:\n  tiny:\n"
        f"    model: {TINY[0]}\n    inputs: {{batch_size: 2, seq_len: 8, dtype: bf16}}\n"
        "    budget: 1 kJ\n"
    )
    report = tmp_path / "report.json"
    assert main(["budgets", "check", str(budgets), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "joules of profile 'irene-l4': NVIDIA L4 24GB, GPU board only" in out
    identity = json.loads(report.read_text())["profile"]
    assert identity["provenance_kind"] == "specification" and identity["scope_kind"] == "gpu"
    assert identity["counting_mode"] == "native"
    model = json.loads(report.read_text())["models"][0]
    assert model["tree"]["counting_mode"] == "native"


def test_the_readmes_device_table_is_what_the_profiles_predict() -> None:
    from benchmarks.bench_devices import markdown_table, predictions

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- devices:table -->\n", 1)[1]
    table = "\n".join(block.split("\n\n", 1)[0].splitlines())
    assert table == markdown_table(predictions())
