"""Fixtures of the bad-input and interruption tests; the helpers live in robustness_helpers.py."""

from __future__ import annotations

import pytest
from robustness_helpers import tree_digest


@pytest.fixture
def digest():
    return tree_digest
