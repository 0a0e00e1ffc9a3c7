"""JSON in and out, through orjson when it is installed.

The stream path parses one JSON document per chunk, so the parser is the
largest single cost per token; orjson roughly halves it. Both paths accept
bytes and raise ``ValueError`` (orjson's error subclasses it) on bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads"]

loads: Callable[[bytes | str], Any]
dumps: Callable[[Any], bytes]

try:
    import orjson

    loads = orjson.loads

    def dumps(value: Any) -> bytes:
        return orjson.dumps(value)

except ImportError:  # pragma: no cover - exercised when orjson is absent
    loads = json.loads
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

    def dumps(value: Any) -> bytes:
        return _encoder.encode(value).encode("utf-8")
