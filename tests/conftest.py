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


@pytest.fixture
def sample_run_with_a_failed_item(tmp_path):
    """An `align` run of the first ``n`` sample utterances plus one whose alignment is missing
    (so errors.jsonl has one line); returns a function ``n -> run folder``."""
    import csv

    import anchorprep

    def make(n: int | None = None) -> Path:
        manifest = REPO / "sample_data" / "manifest.csv"
        rows = list(csv.DictReader(open(manifest, newline="")))[:n]
        for row in rows:
            row["audio_path"] = str(manifest.parent / row["audio_path"])
            row["alignment_path"] = str(manifest.parent / row["alignment_path"])
        rows.append({**rows[0], "utt_id": "broken", "alignment_path": str(tmp_path / "missing.TextGrid")})
        mixed = tmp_path / "mixed.csv"
        with open(mixed, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        assert anchorprep.align(mixed, tmp_path / "kw", keyword="hey computer").exit_code == 1
        return tmp_path / "kw"

    return make
