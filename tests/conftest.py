from __future__ import annotations

import os
from pathlib import Path

import pytest

# No model hub at test time: every model is built from its config class.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The IrEne authors' data is not shipped; it is looked for beside the checkout.
IRENE_DATA = Path(os.environ.get("IRENE_DATA", REPO_ROOT.parent / "shared" / "irene-data"))


@pytest.fixture(scope="session")
def irene_device_1() -> Path:
    """The device_1 folder of the IrEne dataset, or a skip saying where it was looked for."""
    folder = IRENE_DATA / "device_1"
    if not (folder / "model_level_features.csv").is_file():
        pytest.skip(
            f"IrEne dataset not found at {folder} (set IRENE_DATA to the folder holding device_1/)"
        )
    return folder
