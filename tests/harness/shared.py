"""Where the checkout and ../shared are, for every tier.

Test modules import this (``from harness.shared import shared_path``) rather
than ``from conftest import ...``: several tiers have a conftest.py and under
pytest's default import mode only one of them can be the module ``conftest``.
"""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent.parent
# ../shared beside the checkout (read-only research docs and the syzkaller corpus)
SHARED = pathlib.Path(os.environ.get("NETCONSOLE_SHARED", REPO.parent / "shared"))


def shared_path(*parts):
    """Path under ../shared, or skip the test with a message when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip("../shared/%s is not present on this machine" % "/".join(parts))
    return p
