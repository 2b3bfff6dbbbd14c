"""Probe functions named by import path in the probe tests (``{"kind": "import", ...}``)."""

from __future__ import annotations

import os
from typing import Any


def ready_when_the_file_exists(probe: dict[str, Any], timeout: float) -> bool:
    return os.path.exists(probe["file"])


def broken(probe: dict[str, Any], timeout: float) -> bool:
    raise RuntimeError("this probe always fails")
