"""Reproduce the shipped profiles: ``python benchmarks/train_profiles.py [DATA]``.

Trains ``irene-device-1`` (static features) and ``irene-device-1-full`` (static + runtime) on
the IrEne authors' device_1 data (default ``../shared/irene-data/device_1``), stores each one's
leave-one-model-out error in it, writes them to ``predictor/profiles/`` and their entries in
the manifest ``predictor/profiles/manifest.json`` (file sha256, feature set, CV error, training
data; the other entries are kept).

The features are re-derived in the ``native`` counting (``--counting``,
:func:`predictor.learn.retrace.retrace_dataset`): each of the dataset's models is traced at
each configuration and the authors' measurements are attached by node, so the profiles see at
training time what they see on a traced model (dtype-aware bytes, weights read once per
forward), not IrEne's counting (a 3-D Linear's weight charged once per batch row).
Training is deterministic: rerunning gives byte-identical files on the same library versions
and BLAS kernels. OpenBLAS picks its kernels per CPU unless ``OPENBLAS_CORETYPE`` pins them, and
the last digits of the coefficients differ between kernels (~1e-13 relative); the files shipped
were written with ``OPENBLAS_CORETYPE=Haswell``.
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

from predictor.learn.evaluate import cross_validate  # noqa: E402
from predictor.learn.profile import PROFILES_DIR, Settings, train_profile  # noqa: E402
from predictor.learn.profile_file import SUFFIX  # noqa: E402
from predictor.learn.provenance import MEASURED, provenance_record, scope_record  # noqa: E402
from predictor.learn.retrace import COUNTINGS, load_training_data  # noqa: E402

DEVICE_1_DESCRIPTION = (
    "device_1 of the IrEne dataset: GPU inference energy of six Hugging Face Transformers "
    "(bert-base-uncased, distilbert-base-uncased, roberta-base, distilgpt2, openai-gpt, gpt2) "
    "plus sshleifer/tiny-ctrl at batch 8-32 x seq 32-256, measured per model, module and ML "
    "primitive by the authors of Cao, Lal, Trivedi, Balasubramanian, Balasubramanian: 'IrEne: "
    "Interpretable Energy Prediction for Transformers', ACL 2021 "
    "(https://github.com/StonyBrookNLP/irene). The released CSVs do not name the GPU; they "
    "record GPU clocks up to ~1.9 GHz and a 3802 MHz memory clock."
)

PROFILES: dict[str, str] = {"irene-device-1": "static", "irene-device-1-full": "full"}

#: What the device-1 joules are: the whole machine's wall power (idle included), measured per
#: node by the authors, in fp32.
DEVICE_1_HARDWARE: dict[str, Any] = {
    "device": "IrEne device_1",
    "source": "Cao et al., ACL 2021",
    "scope": scope_record("system"),
    "provenance": provenance_record(
        MEASURED, "trained on per-node measurements (Cao et al., ACL 2021)"
    ),
    "dtype": "fp32 (as measured)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "data", nargs="?", default=str(REPO.parent / "shared" / "irene-data" / "device_1")
    )
    parser.add_argument("--out", default=str(PROFILES_DIR), help="folder for profiles + manifest")
    parser.add_argument("--counting", choices=COUNTINGS, default="native")
    args = parser.parse_args(argv)
    dataset = load_training_data(args.data, args.counting)
    out = Path(args.out)
    manifest: dict[str, Any] = {"format": "irene-profile-manifest/1", "profiles": {}}
    if (out / "manifest.json").is_file():  # keep the other profiles' entries (device profiles)
        manifest["profiles"] = json.loads((out / "manifest.json").read_text())["profiles"]
    for name, feature_set in PROFILES.items():
        settings = Settings.default(feature_set)
        report = cross_validate(dataset, feature_set, settings)
        cv_error = {
            "protocol": "leave-one-model-out MAPE %, fit on training folds only; tiny-ctrl never a fold",
            "overall_row_weighted": report.overall,
            "mean_over_folds": report.mean_over_folds,
            "per_fold": {f.model: f.mape for f in report.folds},
        }
        profile = train_profile(
            dataset,
            feature_set,
            name,
            settings=settings,
            description=DEVICE_1_DESCRIPTION,
            hardware=dict(DEVICE_1_HARDWARE),
            cv_error=cv_error,
        )
        # Record the data by name, not by this machine's path.
        profile.training_data["source"] = "irene-data/device_1 (IrEne authors' release)"
        profile.training_data["features"] = (
            "as the dataset holds them"
            if args.counting == "dataset"
            else f"re-derived: the dataset's models traced in {args.counting!r} counting, "
            "measurements attached by node"
        )
        path = profile.save(out / f"{name}{SUFFIX}")
        manifest["profiles"][name] = {
            "file": path.name,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "feature_set": feature_set,
            "counting_mode": profile.counting_mode,
            "settings": settings.to_dict(),
            "cv_error": cv_error,
            "training_data": profile.training_data,
            "library_versions": profile.library_versions,
        }
        print(f"{name}: {path} ({path.stat().st_size} bytes)")
        print(report.format_table())
    fd, tmp = tempfile.mkstemp(dir=out, prefix="manifest.json", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, out / "manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
