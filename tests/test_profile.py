from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

import predictor.learn.profile_file as profile_file
from predictor.errors import DataError, ProfileError
from predictor.learn.data import Dataset
from predictor.learn.profile import (
    DEFAULT_PROFILE,
    PROFILES_DIR,
    Profile,
    Settings,
    list_profiles,
    load_profile,
    train_profile,
)
from predictor.learn.profile_file import FORMAT_VERSION
from predictor.trace.tree import RUNTIME_FEATURES, EnergyTree, Node


def _runtime(energy: float) -> dict[str, float]:
    rt = dict.fromkeys(RUNTIME_FEATURES, 1.0)
    rt["times_mean"] = energy / 250.0  # a 250 W device
    rt["gpu_energy_mean"] = 0.6 * energy
    return rt


def _ml(fqn: str, typ: str, flops: float, mem: float, batch: int, seq: int) -> Node:
    energy = 1e-3 + 8e-5 * flops + 4e-4 * mem
    return Node(
        name=f"{fqn}:{typ}", level="ml", type=typ, fqn=fqn, flops=flops, mem_bytes=mem,
        batch_size=batch, seq_len=seq, runtime=_runtime(energy), measured_energy_j=energy,
    )  # fmt: skip


def synthetic_tree(model: str, width: int, layers: int, batch: int, seq: int) -> EnergyTree:
    """A model of ``layers`` blocks (Linear + Softmax + LayerNorm); known energy laws."""
    tokens = batch * seq
    blocks = []
    for i in range(layers):
        kids = [
            _ml(
                f"layer.{i}.dense",
                "Linear",
                2e-6 * tokens * width * width,
                4e-6 * tokens * width,
                batch,
                seq,
            ),
            _ml(f"layer.{i}", "Softmax", 5e-6 * tokens * seq, 1e-5 * tokens * seq, batch, seq),
            _ml(
                f"layer.{i}.norm",
                "LayerNorm",
                8e-6 * tokens * width,
                1.6e-5 * tokens * width,
                batch,
                seq,
            ),
        ]
        resid = 2e-6 * tokens * width
        e = 1.05 * sum(k.measured_energy_j or 0.0 for k in kids) + 3e-3 * resid
        blocks.append(
            Node(
                name=f"layer.{i}:Block",
                level="module",
                type="Block",
                fqn=f"layer.{i}",
                flops=sum(k.flops for k in kids),
                mem_bytes=sum(k.mem_bytes for k in kids) + resid,
                batch_size=batch,
                seq_len=seq,
                runtime=_runtime(e),
                measured_energy_j=e,
                children=kids,
            )
        )
    e_root = sum(b.measured_energy_j or 0.0 for b in blocks)
    root = Node(
        name=model, level="model", type=model, flops=sum(b.flops for b in blocks),
        mem_bytes=sum(b.mem_bytes for b in blocks), batch_size=batch, seq_len=seq,
        runtime=_runtime(e_root), measured_energy_j=e_root, children=blocks,
    )  # fmt: skip
    return EnergyTree(root=root)


def synthetic_dataset() -> Dataset:
    trees = [
        synthetic_tree(f"toy-{w}-{n}", w, n, b, s)
        for w, n in ((64, 2), (96, 3), (128, 2), (160, 4))
        for b in (2, 4, 8)
        for s in (16, 32, 64)
    ]
    return Dataset(path=Path("synthetic"), trees=trees)


@pytest.fixture(scope="module")
def static_profile() -> Profile:
    return train_profile(synthetic_dataset(), "static", "toy-static", description="unit test")


def test_train_and_predict_fills_every_node(static_profile: Profile) -> None:
    tree = synthetic_tree("toy-new", 112, 3, 4, 48)
    static_profile.predict(tree)
    for node in tree.walk():
        assert node.energy_j is not None and node.energy_j > 0
        assert node.energy_j == pytest.approx(node.measured_energy_j, rel=0.05)
        assert not node.extrapolated
    meta = tree.meta["profile"]
    assert meta["name"] == "toy-static" and meta["feature_set"] == "static"
    assert meta["counting_mode"] == "irene" and meta["version"] == FORMAT_VERSION


def test_prediction_is_bit_identical_after_save_and_load(
    static_profile: Profile, tmp_path: Path
) -> None:
    path = static_profile.save(tmp_path / "toy.irene.joblib")
    loaded = load_profile(path)
    a = static_profile.predict(synthetic_tree("toy-new", 112, 3, 4, 48))
    b = loaded.predict(synthetic_tree("toy-new", 112, 3, 4, 48))
    c = loaded.predict(synthetic_tree("toy-new", 112, 3, 4, 48))
    ea = [n.energy_j for n in a.walk()]
    assert ea == [n.energy_j for n in b.walk()] == [n.energy_j for n in c.walk()]
    assert loaded.settings == static_profile.settings and loaded.description == "unit test"
    assert static_profile.save(tmp_path / "again.irene.joblib").read_bytes() == path.read_bytes()


def test_unseen_primitive_type_uses_the_fallback_and_is_flagged(static_profile: Profile) -> None:
    tree = synthetic_tree("toy-new", 112, 2, 4, 48)
    block = tree.root.children[0]
    silu = copy.deepcopy(block.children[2])
    silu.name, silu.type = "layer.0.act:SiLU", "SiLU"
    block.children.append(silu)
    static_profile.predict(tree)
    flagged = [n.name for n in tree.walk() if n.extrapolated]
    assert flagged == ["layer.0.act:SiLU"]
    assert silu.energy_j is not None and 0 < silu.energy_j < 1.0
    assert "SiLU" not in tree.meta["profile"]["known_types"]


def test_full_profile_needs_runtime_features(tmp_path: Path) -> None:
    full = train_profile(synthetic_dataset(), "full", "toy-full")
    measured = synthetic_tree("toy-new", 112, 2, 4, 48)
    full.predict(measured)
    assert measured.root.energy_j == pytest.approx(measured.root.measured_energy_j, rel=0.02)
    traced = synthetic_tree("toy-new", 112, 2, 4, 48)
    for node in traced.walk():
        node.runtime = {}
    with pytest.raises(
        ProfileError, match=r"'full' feature set.*no runtime features.*static profile"
    ):
        full.predict(traced)


def _children_overrun(tree: EnergyTree) -> list[tuple[str, float, float]]:
    """Nodes whose children's predicted energies sum to more than their own (1e-9 relative)."""
    out = []
    for node in tree.walk():
        total = sum(c.energy_j or 0.0 for c in node.children)
        if node.children and total > (node.energy_j or 0.0) * (1 + 1e-9):
            out.append((node.name, node.energy_j or 0.0, total))
    return out


def test_settings_record_the_reconciliation() -> None:
    assert Settings.default("static").reconcile == "top-down"
    assert Settings.default("full").reconcile == "top-down"
    assert Settings.irene().reconcile == "none"  # the authors' method, as published
    data = Settings.default("static").to_dict()
    assert Settings.from_dict(data) == Settings.default("static")
    del data["reconcile"]  # saved before reconciliation existed
    assert Settings.from_dict(data).reconcile == "top-down"
    data["reconcile"] = "sideways"
    with pytest.raises(ValueError, match="unknown reconcile mode 'sideways'"):
        Settings.from_dict(data)


def test_profile_saved_before_reconciliation_loads_and_predicts_consistently(
    static_profile: Profile, tmp_path: Path
) -> None:
    payload = static_profile.payload()
    del payload["settings"]["reconcile"], payload["aggregator"]["reconcile"]
    # Make its root undercut its blocks, as an unreconciled profile could.
    payload["aggregator"]["coef"]["model"] = [
        0.9 * c for c in payload["aggregator"]["coef"]["model"]
    ]
    text = json.dumps(payload, sort_keys=True)
    old = tmp_path / "old.irene.joblib"
    joblib.dump(
        {"format": "irene-profile", "version": FORMAT_VERSION, "payload": text,
         "sha256": hashlib.sha256(text.encode()).hexdigest()},
        old,
    )  # fmt: skip
    loaded = load_profile(old)
    assert loaded.settings.reconcile == "top-down"
    tree = loaded.predict(synthetic_tree("toy-new", 112, 3, 4, 48))
    assert _children_overrun(tree) == []
    unreconciled = copy.deepcopy(loaded)
    unreconciled.aggregator.reconcile = "none"
    raw = unreconciled.predict(synthetic_tree("toy-new", 112, 3, 4, 48))
    assert _children_overrun(raw)  # the 0.9 root does undercut: the check can fail
    assert tree.root.energy_j == raw.root.energy_j  # top-down keeps the root


def _write_payload(path: Path, payload: dict[str, Any]) -> Path:
    text = json.dumps(payload, sort_keys=True)
    joblib.dump(
        {"format": "irene-profile", "version": FORMAT_VERSION, "payload": text,
         "sha256": hashlib.sha256(text.encode()).hexdigest()},
        path,
    )  # fmt: skip
    return path


def test_profile_saved_with_earlier_training_options_loads_and_predicts_the_same(
    static_profile: Profile, tmp_path: Path
) -> None:
    """Profiles written before the ablation-only options left the library carry their
    default values (one model per level, no refit, no monotone correction box)."""
    payload = static_profile.payload()
    for part in (payload["settings"], payload["aggregator"]):
        part.update(per_level=True, refits=0)
    regs = [*payload["ml"]["by_type"].values(), *payload["ml"]["by_kernel"].values()]
    for reg in [*regs, payload["ml"]["fallback"]]:
        reg["corr_xmax"] = []
    loaded = load_profile(_write_payload(tmp_path / "earlier.irene.joblib", payload))
    a = static_profile.predict(synthetic_tree("toy-new", 112, 3, 4, 48))
    b = loaded.predict(synthetic_tree("toy-new", 112, 3, 4, 48))
    assert [n.energy_j for n in a.walk()] == [n.energy_j for n in b.walk()]
    assert loaded.settings == static_profile.settings


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda p: p["aggregator"].update(per_level=False), "per_level false"),
        (lambda p: p["ml"]["by_kernel"]["gemm"].update(monotone=True), "ML method 'poly'"),
        (lambda p: p["settings"].update(reconcile="scale"), "unknown reconcile mode 'scale'"),
    ],
    ids=["one-level aggregator", "monotone cubic", "ablation reconcile"],
)
def test_profile_trained_with_an_ablation_variant_is_refused(
    static_profile: Profile, tmp_path: Path, edit: Any, message: str
) -> None:
    payload = copy.deepcopy(static_profile.payload())
    assert payload["ml"]["by_kernel"]["gemm"]["degree"] == 3  # poly-free's cubic
    edit(payload)
    path = _write_payload(tmp_path / "variant.irene.joblib", payload)
    with pytest.raises(ProfileError, match=f"payload is malformed.*{message}"):
        load_profile(path)


def test_shipped_profiles_never_predict_a_child_above_its_parent(irene_device_1: Path) -> None:
    """On every tree of the training data, both shipped profiles; repeated runs bit-identical."""
    from predictor.learn.data import load_dataset

    dataset = load_dataset(irene_device_1)
    for name in ("irene-device-1", "irene-device-1-full"):
        profile = load_profile(name)
        for tree in dataset.trees:
            first = [n.energy_j for n in profile.predict(tree).walk()]
            assert _children_overrun(tree) == [], (name, tree.model_name, tree.batch_size)
            assert [n.energy_j for n in profile.predict(tree).walk()] == first


# -- refusing files it cannot trust -----------------------------------------------------------


@pytest.fixture
def saved(static_profile: Profile, tmp_path: Path) -> Path:
    return static_profile.save(tmp_path / "p.irene.joblib")


def test_refuses_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.irene.joblib"
    bad.write_bytes(b"this is not a profile\x00\x01")
    with pytest.raises(ProfileError, match="corrupt or truncated"):
        load_profile(bad)


def test_refuses_truncated(saved: Path) -> None:
    saved.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(ProfileError, match="corrupt or truncated"):
        load_profile(saved)


def test_refuses_tampered_payload(saved: Path) -> None:
    record = joblib.load(saved)
    payload = json.loads(record["payload"])
    payload["ml"]["by_kernel"]["gemm"]["base_coef"][0] *= 2  # doubles the GEMM energies
    record["payload"] = json.dumps(payload, sort_keys=True)
    joblib.dump(record, saved)
    with pytest.raises(ProfileError, match="checksum mismatch"):
        load_profile(saved)


def test_refuses_unknown_version(saved: Path) -> None:
    record = joblib.load(saved)
    record["version"] = 99
    joblib.dump(record, saved)
    with pytest.raises(ProfileError, match="format version 99 is not supported"):
        load_profile(saved)


def test_refuses_other_objects(tmp_path: Path) -> None:
    other = tmp_path / "model.joblib"
    joblib.dump([1, 2, 3], other)
    with pytest.raises(ProfileError, match="not an irene-profile file"):
        load_profile(other)


def test_refuses_malformed_payload_with_valid_checksum(saved: Path) -> None:
    record = joblib.load(saved)
    payload = json.loads(record["payload"])
    del payload["ml"]
    record["payload"] = json.dumps(payload)
    record["sha256"] = hashlib.sha256(record["payload"].encode()).hexdigest()
    joblib.dump(record, saved)
    with pytest.raises(ProfileError, match="payload is malformed"):
        load_profile(saved)


class _RunsAShellCommand:
    """What an attacker pickles: unpickling it calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


@pytest.mark.parametrize("compress", [3, 0], ids=["zlib", "uncompressed"])
def test_refuses_a_file_that_would_run_code_without_running_it(
    tmp_path: Path, compress: int
) -> None:
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.irene.joblib"
    record = {"format": "irene-profile", "version": FORMAT_VERSION, "sha256": "0" * 64}
    record["payload"] = _RunsAShellCommand(f"echo PWNED > {marker}")  # type: ignore[assignment]
    joblib.dump(record, evil, compress=compress)
    with pytest.raises(ProfileError, match=r"only plain data; refusing (posix|nt|os)\.system"):
        load_profile(evil)
    assert not marker.exists()


def test_refuses_any_pickled_class(tmp_path: Path) -> None:
    other = tmp_path / "arrays.irene.joblib"
    joblib.dump({"format": "irene-profile", "payload": np.zeros(3)}, other, compress=3)
    with pytest.raises(ProfileError, match="only plain data; refusing"):
        load_profile(other)


@pytest.mark.parametrize("compress", [0, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_loads_profiles_joblib_wrote_with_any_standard_compressor(
    saved: Path, compress: Any
) -> None:
    record = joblib.load(saved)  # the test's own trusted file
    joblib.dump(record, saved, compress=compress)
    assert load_profile(saved).payload() == json.loads(record["payload"])


def test_refuses_a_decompression_bomb(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_file, "MAX_PAYLOAD_BYTES", 1000)
    with pytest.raises(ProfileError, match="decompresses to more than 1000 bytes"):
        load_profile(saved)


def test_unknown_profile_name() -> None:
    with pytest.raises(ProfileError, match=r"no profile 'nope'.*shipped: .*irene-device-1"):
        load_profile("nope")


# -- shipped profiles -------------------------------------------------------------------------


def test_shipped_profiles_match_their_manifest() -> None:
    assert {"irene-device-1", "irene-device-1-full"} <= set(list_profiles())
    manifest = json.loads((PROFILES_DIR / "manifest.json").read_text())
    for name, entry in manifest["profiles"].items():
        data = (PROFILES_DIR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name
        profile = load_profile(name)
        assert profile.feature_set == entry["feature_set"]
        if entry.get("kind") == "device":  # specification profiles: tests/test_devices.py
            continue
        assert isinstance(profile, Profile)
        assert profile.cv_error["overall_row_weighted"] == entry["cv_error"]["overall_row_weighted"]
        assert Settings.from_dict(entry["settings"]) == profile.settings


def test_default_profile_is_static_and_meets_its_targets() -> None:
    profile = load_profile()
    assert profile.name == DEFAULT_PROFILE and profile.feature_set == "static"
    err = profile.cv_error["overall_row_weighted"]
    assert err["ml"] <= 2.7 and err["module"] <= 6.1 and err["model"] <= 2.5  # issue 10's bound
    assert "IrEne" in profile.description and "ACL 2021" in profile.description
    for lib in ("numpy", "joblib", "python"):
        assert lib in profile.library_versions
    full = load_profile("irene-device-1-full")
    err = full.cv_error["overall_row_weighted"]
    assert err["ml"] <= 0.6 and err["module"] <= 0.8 and err["model"] <= 0.5


def test_training_needs_positive_measured_energy() -> None:
    ds = synthetic_dataset()
    node = ds.trees[3].root.children[1].children[0]
    node.measured_energy_j = 0.0
    with pytest.raises(
        DataError, match=r"node 'layer.1.dense:Linear': measured energy must be a positive"
    ):
        train_profile(ds, "static", "bad")


def test_full_profile_uses_the_runtime_columns_the_data_has() -> None:
    ds = synthetic_dataset()
    for tree in ds.trees:  # a CPU-metered dataset: no GPU columns
        for node in tree.walk():
            node.runtime = {k: v for k, v in node.runtime.items() if not k.startswith("gpu")}
    full = train_profile(ds, "full", "cpu-full")
    assert full.runtime_columns == ("cpu", "mem", "times_mean")
    tree = synthetic_tree("toy-new", 112, 2, 4, 48)  # has every column: extra ones are ignored
    full.predict(tree)
    assert tree.root.energy_j == pytest.approx(tree.root.measured_energy_j, rel=0.02)
    for node in tree.walk():
        del node.runtime["times_mean"]
    with pytest.raises(ProfileError, match="lacks times_mean"):
        full.predict(tree)


def test_full_training_without_runtime_columns_is_a_data_error() -> None:
    ds = synthetic_dataset()
    for tree in ds.trees:
        for node in tree.walk():
            node.runtime = {}
    with pytest.raises(DataError, match=r"needs runtime columns.*train with --features static"):
        train_profile(ds, "full", "nothing")


def test_a_root_made_of_primitives_costs_about_its_children() -> None:
    """A plain MLP's root holds only primitives and runs no op of its own, so the shipped
    static profile must put it at its children's sum (weight ~1), not at a multiple of it."""
    import torch
    from torch import nn

    from predictor.learn.profile import load_profile
    from predictor.trace.tracer import build_tree

    model = nn.Sequential(nn.Linear(256, 1024), nn.GELU(), nn.Linear(1024, 256))
    tree = load_profile("irene-device-1").predict(
        build_tree(model, torch.zeros(8, 128, 256), name="mlp")
    )
    children = sum(c.energy_j or 0.0 for c in tree.root.children)
    assert [c.level for c in tree.root.children] == ["ml", "ml", "ml"]
    assert tree.root.energy_j is not None
    assert children <= tree.root.energy_j <= 1.1 * children


def test_children_weight_prior_is_recorded_and_pulls_weights_to_one() -> None:
    from predictor.learn.profile import load_profile

    profile = load_profile("irene-device-1")
    agg = profile.aggregator
    assert getattr(agg, "weight_prior", 0.0) == 1.0
    weights = agg.coef["model"][:2] / agg.scale["model"][:2]  # type: ignore[union-attr]
    assert all(0.8 < w < 1.25 for w in weights), weights
