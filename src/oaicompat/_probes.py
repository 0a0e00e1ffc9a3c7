"""Running discovery flows: the only part of discovery that does I/O.

A flow (see ``discovery.py``) is a generator that yields a tuple of `Probe`
requests and receives the matching tuple of `Reply` objects, until it returns
its result. `run_sync` and `run_async` are the two drivers; they differ only in
``await`` (and in running a tuple of probes one after another or concurrently).
No httpx exception leaves a driver: a request that got no answer comes back as
a `Reply` whose ``error`` says what to check.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from oaicompat import _json
from oaicompat.errors import APIConnectionError, APITimeoutError, OAICompatError

__all__ = [
    "OPTIONAL_PROBE_TIMEOUT",
    "Flow",
    "Probe",
    "Reply",
    "resolve_url",
    "run_async",
    "run_sync",
]

T = TypeVar("T")

OPTIONAL_PROBE_TIMEOUT = 5.0
"""Cap on the wait for a probe that only identifies the server (its absence is an answer)."""
MAX_PROBE_BYTES = 4 * 1024 * 1024
_HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)
"""Discovery answers are small; anything larger is cut (an HTML page, a misrouted download)."""


@dataclass(frozen=True, slots=True)
class Probe:
    """One HTTP request a flow wants made.

    ``path`` is relative to the API root (``models`` -> ``.../v1/models``), or with
    ``from_root`` to the server root (``api/version`` -> ``http://host:11434/api/version``).
    """

    method: str
    path: str
    from_root: bool = False
    json: Any = None
    optional: bool = False
    """Only identifies the server: wait at most ``OPTIONAL_PROBE_TIMEOUT`` for it."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back for a `Probe`: an HTTP answer, or ``error`` when none came."""

    url: str
    status: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: OAICompatError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300

    def json(self) -> Any:
        """The decoded JSON body of a 2xx answer, or None when there is none."""
        if not self.ok or self.body.lstrip()[:1] not in (b"{", b"["):
            return None
        try:
            return _json.loads(self.body)
        except ValueError:
            return None


Flow = Generator[tuple[Probe, ...], tuple[Reply, ...], T]


def resolve_url(base_url: str, probe: Probe) -> str:
    """The absolute URL of a probe: under the API root, or under the server root.

    The server root is the API root without its trailing ``/v1``, so a server
    behind a path prefix (``http://host/ollama/v1``) keeps the prefix.
    """
    base = base_url.rstrip("/")
    if probe.from_root and base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/{probe.path.lstrip('/')}"


def _probe_timeout(timeout: httpx.Timeout, probe: Probe) -> httpx.Timeout:
    if not probe.optional:
        return timeout

    def capped(value: float | None) -> float:
        return OPTIONAL_PROBE_TIMEOUT if value is None else min(value, OPTIONAL_PROBE_TIMEOUT)

    return httpx.Timeout(
        connect=capped(timeout.connect),
        read=capped(timeout.read),
        write=capped(timeout.write),
        pool=capped(timeout.pool),
    )


def _no_answer(exc: Exception, probe: Probe, url: str, timeout: httpx.Timeout) -> Reply:
    where = f"{probe.method} {url}"
    if isinstance(exc, httpx.ConnectTimeout):
        error: OAICompatError = APITimeoutError(
            f"{where}: no connection within {timeout.connect}s. Check that the host is right "
            "and reachable (a firewall may drop the packets) and that the server is running."
        )
    elif isinstance(exc, httpx.TimeoutException):
        error = APITimeoutError(
            f"{where}: connected, but no answer within {timeout.read}s. The server may be "
            "busy (loading a model) or this port may belong to something else."
        )
    elif isinstance(exc, httpx.ConnectError):
        error = APIConnectionError(
            f"{where}: cannot connect ({exc or type(exc).__name__}). Check that the server "
            "is running and that base_url has the right host and port."
        )
    else:
        error = APIConnectionError(
            f"{where}: the connection failed ({exc or type(exc).__name__}). Check base_url."
        )
    return Reply(url=url, error=error)


class _Target:
    """What every probe of one run shares: the API root, headers, query and time limit."""

    __slots__ = ("base_url", "headers", "params", "timeout")

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        timeout: float | httpx.Timeout,
    ) -> None:
        self.base_url = base_url
        self.headers = headers or {}
        self.params = params
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


class _ProbeCall:
    """One probe's request and the answer collected for it; the drivers only do the I/O."""

    __slots__ = ("_body", "limit", "probe", "request", "url")

    def __init__(self, target: _Target, probe: Probe) -> None:
        self.probe = probe
        self.url = resolve_url(target.base_url, probe)
        self.limit = _probe_timeout(target.timeout, probe)
        headers = dict(target.headers)
        self.request: dict[str, Any] = {
            "method": probe.method,
            "url": self.url,
            "timeout": self.limit,
            "headers": headers,
            "params": dict(target.params or {}) or None,
            # The headers may carry the key, which a followed redirect could take to another host.
            "follow_redirects": False,
        }
        if probe.json is not None:
            self.request["content"] = _json.dumps(probe.json)
            headers["Content-Type"] = "application/json"
        self._body = bytearray()

    def keep(self, piece: bytes) -> bool:
        """Add ``piece`` to the body; False once the body is over the cap (stop reading)."""
        self._body += piece
        return len(self._body) <= MAX_PROBE_BYTES

    def answer(self, response: httpx.Response) -> Reply:
        return Reply(
            url=self.url,
            status=response.status_code,
            headers=dict(response.headers),
            body=bytes(self._body[:MAX_PROBE_BYTES]),
        )

    def no_answer(self, exc: Exception) -> Reply:
        return _no_answer(exc, self.probe, self.url, self.limit)


def _send_sync(http: httpx.Client, call: _ProbeCall) -> Reply:
    try:
        with http.stream(**call.request) as response:
            for piece in response.iter_bytes():
                if not call.keep(piece):
                    break
            return call.answer(response)
    except _HTTPX_ERRORS as exc:
        return call.no_answer(exc)


async def _send_async(http: httpx.AsyncClient, call: _ProbeCall) -> Reply:
    try:
        async with http.stream(**call.request) as response:
            async for piece in response.aiter_bytes():
                if not call.keep(piece):
                    break
            return call.answer(response)
    except _HTTPX_ERRORS as exc:
        return call.no_answer(exc)


def run_sync(
    flow: Flow[T],
    http: httpx.Client,
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    timeout: float | httpx.Timeout = 10.0,
) -> T:
    """Drive ``flow`` to its result with a sync httpx client (probes one after another)."""
    target = _Target(base_url, headers, params, timeout)
    try:
        probes = next(flow)
        while True:
            probes = flow.send(tuple(_send_sync(http, _ProbeCall(target, p)) for p in probes))
    except StopIteration as done:
        result: T = done.value
        return result


async def run_async(
    flow: Flow[T],
    http: httpx.AsyncClient,
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    timeout: float | httpx.Timeout = 10.0,
) -> T:
    """Drive ``flow`` to its result with an async httpx client (probes of a step concurrently)."""
    target = _Target(base_url, headers, params, timeout)
    try:
        probes = next(flow)
        while True:
            calls = (_send_async(http, _ProbeCall(target, p)) for p in probes)
            probes = flow.send(tuple(await _gather(calls)))
    except StopIteration as done:
        result: T = done.value
        return result


async def _gather(calls: Any) -> list[Any]:
    import asyncio  # here, not at module level: it adds ~40 ms to `import oaicompat`

    return list(await asyncio.gather(*calls))
