"""Fixtures for the compiler tests (no GPU needed). Helpers live in modules, such as
tests/py/dynamo/conversion/harness.py."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
