"""The workloads, in a full size and a small one for CI."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["sequential", "stream", "concurrent"]


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: Kind
    tokens: int
    """Tokens per answer; a streamed answer has one content chunk per token."""
    requests: int = 1
    """Sequential calls, or streams open at once on one async client."""
    title: str = ""

    @property
    def unit(self) -> str:
        return "request" if self.kind == "sequential" else "chunk"

    @property
    def units(self) -> int:
        """How many units one run performs: calls, or content chunks over every stream."""
        return self.requests if self.kind == "sequential" else self.requests * self.tokens

    @property
    def needs_async(self) -> bool:
        return self.kind == "concurrent"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def scenarios(small: bool) -> list[Scenario]:
    if small:
        return [
            Scenario("sequential", "sequential", tokens=16, requests=20, title="20 chat calls"),
            Scenario("stream", "stream", tokens=300, title="1 stream of 300 chunks"),
            Scenario("concurrent-200", "concurrent", tokens=20, requests=20, title="20 x 20"),
            Scenario("concurrent-1000", "concurrent", tokens=10, requests=50, title="50 x 10"),
        ]
    return [
        Scenario(
            "sequential", "sequential", tokens=16, requests=500, title="500 sequential chat calls"
        ),
        Scenario("stream", "stream", tokens=20_000, title="1 stream of 20,000 chunks"),
        Scenario(
            "concurrent-200",
            "concurrent",
            tokens=200,
            requests=200,
            title="200 concurrent streams of 200 chunks",
        ),
        Scenario(
            "concurrent-1000",
            "concurrent",
            tokens=100,
            requests=1000,
            title="1,000 concurrent streams of 100 chunks",
        ),
    ]
