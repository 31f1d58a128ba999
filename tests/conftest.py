"""Fixtures shared by every tier."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# ../shared beside the checkout (read-only research docs and the syzkaller corpus)
SHARED = pathlib.Path(os.environ.get("NETCONSOLE_SHARED", REPO.parent / "shared"))


def shared_path(*parts):
    """Path under ../shared, or skip the test with a message when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip("../shared/%s is not present on this machine" % "/".join(parts))
    return p


@pytest.fixture
def repo():
    return REPO
