"""Shared by the laptop benchmarks: print a result and, with an output path, write it as JSON."""

from __future__ import annotations

import json
from pathlib import Path


def emit(out: dict, path: str | None) -> None:
    print(json.dumps(out, indent=1))
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(out, indent=1) + "\n")
