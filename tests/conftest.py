import os
from pathlib import Path

import pytest

from deepgmap_core.cli.common import set_backend_environment

# TensorFlow reads its environment once, at its first import in the process: set here, before any
# test module is collected, the run does not depend on which module comes first. oneDNN off, as
# train-model runs (tests that need it on run the command in a subprocess).
set_backend_environment(onednn=False)

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "test-data"
SHARED_DATA = Path(os.environ.get("DEEPGMAP_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data():
    """The real published data beside the project (../shared/data). CI has it, and there its
    absence is a failure; a user's clone may lack it, and then these tests are skipped."""
    if not (SHARED_DATA / "hg19" / "chr20.fa.gz").exists():
        if os.environ.get("CI"):
            pytest.fail(f"real data missing: {SHARED_DATA}")
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_data():
    return TEST_DATA
