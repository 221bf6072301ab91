"""Write the shipped specification profiles: ``python benchmarks/build_device_profiles.py``.

One profile per device of :data:`predictor.devices.specs.DEVICE_SPECS` (A100 SXM4 40/80 GB,
H100 SXM / PCIe, H200, L4, L40S, B200), each the physical model of its datasheet figures
(:func:`predictor.devices.profile.device_profile`), written to ``predictor/profiles/`` with an
entry in ``manifest.json`` (file sha256, kind, device, scope, provenance, sources). The other
manifest entries (the trained profiles) are kept. Nothing depends on the machine: rerunning
gives byte-identical files, which a test checks.

``irene-a100-sxm4-40gb`` and ``irene-h100-sxm`` ship adapted to measured generations
(:data:`ADAPTED`: ``python benchmarks/bench_generation.py --ship`` adapts these specification
profiles on the ML.ENERGY Leaderboard v2 data); they are rebuilt here only with ``--all``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from predictor.devices.profile import device_profile  # noqa: E402
from predictor.devices.specs import DEVICE_SPECS  # noqa: E402
from predictor.learn.profile import PROFILES_DIR  # noqa: E402
from predictor.learn.profile_file import SUFFIX  # noqa: E402

#: Shipped adapted, by benchmarks/bench_generation.py --ship (on these specifications).
ADAPTED: frozenset[str] = frozenset({"irene-a100-sxm4-40gb", "irene-h100-sxm"})


def manifest_entry(name: str, path: Path, profile: Any = None) -> dict[str, Any]:
    """``path``'s entry in the manifest: its file digest and what the profile is (``profile``:
    the one saved there; default the specification profile ``name``)."""
    profile = profile if profile is not None else device_profile(name)
    return {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "kind": profile.kind,
        "feature_set": profile.feature_set,
        "counting_mode": profile.counting_mode,
        "device": profile.hardware["device"],
        "scope": profile.scope,
        "provenance": profile.provenance,
        "dtype": profile.dtype,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(PROFILES_DIR), help="folder for profiles + manifest")
    parser.add_argument(
        "--all",
        action="store_true",
        help="also write the specification profiles of the devices shipped adapted",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest: dict[str, Any] = {"format": "irene-profile-manifest/1", "profiles": {}}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
    for name in DEVICE_SPECS:
        if name in ADAPTED and not args.all and Path(args.out) == PROFILES_DIR:
            continue
        path = device_profile(name).save(out / f"{name}{SUFFIX}")
        manifest["profiles"][name] = manifest_entry(name, path)
        print(f"{name}: {path} ({path.stat().st_size} bytes)")
    fd, tmp = tempfile.mkstemp(dir=out, prefix="manifest.json", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, manifest_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
