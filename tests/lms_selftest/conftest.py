"""Fixtures: a running TestPlatform and a tiny fake tool registered with it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.lms import TestPlatform  # noqa: E402
from tests.lms import claims as C  # noqa: E402
from tests.lms.model import ToolRegistration  # noqa: E402
from tests.lms_selftest.fake_tool import FakeTool  # noqa: E402


@pytest.fixture
def lms() -> Iterator[TestPlatform]:
    with TestPlatform() as platform:
        platform.add_context("ctx-1", title="Cycling 101", label="CYC101")
        platform.add_user(
            "u-1",
            name="Ana García",
            given_name="Ana",
            family_name="García",
            email="ana@example.org",
            locale="es-ES",
        )
        platform.add_user(
            "t-1",
            name="Tom Teacher",
            given_name="Tom",
            family_name="Teacher",
            email="tom@example.org",
        )
        platform.enrol("ctx-1", "u-1", roles=[C.ROLE_LEARNER])
        platform.enrol("ctx-1", "t-1", roles=[C.ROLE_INSTRUCTOR])
        yield platform


@pytest.fixture
def tool(lms: TestPlatform) -> Iterator[FakeTool]:
    with FakeTool(lms) as fake:
        yield fake


@pytest.fixture
def reg(lms: TestPlatform, tool: FakeTool) -> ToolRegistration:
    return tool.register()
