from __future__ import annotations

import os
from pathlib import Path

import pytest

# No model hub at test time: every model is built from its config class.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = ["pytester"]

#: Set by GitHub Actions on the runner that runs these tests: the gates the tests run would
#: print ::error annotations into the test job's log (and append to its summary). Tests that
#: want them set them themselves.
_CI_VARIABLES = (
    # pytest itself: with CI (or BUILD_NUMBER) set, an inner run's short summary prints whole
    # failure messages instead of one line, so output assertions would depend on the runner
    "CI",
    "BUILD_NUMBER",
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_SERVER_URL",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
)


@pytest.fixture(autouse=True)
def _not_in_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


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
