"""Strict test LMS (LTI 1.3 / LTI Advantage platform) for the tool's test suite.

from tests.lms import TestPlatform, Browser, Tamper
"""

from . import claims
from .browser import Browser, BrowserError, Form
from .cookies import CookieJar
from .faults import FaultQueue
from .keys import KeyPair
from .model import (
    AuthRequest,
    DeepLinkResponseRecord,
    LaunchPlan,
    LineItem,
    RegistrationRecord,
    Result,
    ScoreRecord,
    ToolRegistration,
)
from .server import TestPlatform
from .tamper import Tamper

__all__ = [
    "AuthRequest",
    "Browser",
    "BrowserError",
    "CookieJar",
    "DeepLinkResponseRecord",
    "FaultQueue",
    "Form",
    "KeyPair",
    "LaunchPlan",
    "LineItem",
    "RegistrationRecord",
    "Result",
    "ScoreRecord",
    "Tamper",
    "TestPlatform",
    "ToolRegistration",
    "claims",
]
