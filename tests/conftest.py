"""Fixtures shared by every tier; puts tests/ (for `harness`) and the checkout on sys.path."""

import pathlib
import sys

import pytest

for _p in (pathlib.Path(__file__).resolve().parent, pathlib.Path(__file__).resolve().parents[1]):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from harness.shared import REPO, SHARED, shared_path  # noqa: E402,F401 (re-exported)


@pytest.fixture
def repo():
    return REPO
