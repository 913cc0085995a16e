"""Shared fixtures: tiny configs that train in about a second on a 2-core CPU."""

from __future__ import annotations

import pytest

from helpers import TINY


@pytest.fixture
def tiny() -> list[str]:
    return list(TINY)


@pytest.fixture
def runs_dir(tmp_path):
    return tmp_path / "runs"
