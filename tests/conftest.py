import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("ANCHORPREP_REALDATA", REPO.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The shared real-data folder (../shared/realdata or $ANCHORPREP_REALDATA)."""
    if not REALDATA.is_dir():
        pytest.skip(
            f"real data not found at {REALDATA}: set ANCHORPREP_REALDATA to the shared/realdata "
            "folder (CI has it beside the checkout)"
        )
    return REALDATA
