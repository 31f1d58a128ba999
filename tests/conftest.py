"""Fixtures shared by every tier."""

import pytest

from harness.shared import REPO, SHARED, shared_path  # noqa: F401 (re-exported)


@pytest.fixture
def repo():
    return REPO
