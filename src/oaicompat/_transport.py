"""What `Client` and `AsyncClient` share: everything except the awaits.

Configuration, URL and header building, the mapping of httpx failures onto
the error tree, the retry/fallback decision after a failed attempt, and
turning a response body into a `ChatResponse` all live here, once.
The two client classes in ``client.py`` only send, read and sleep.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Mapping
from time import perf_counter
from typing import Any, ClassVar

import httpx

from oaicompat import _json
from oaicompat.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    OAICompatError,
    ResponseParseError,
    error_from_status,
    extract_server_message,
)
from oaicompat.profiles import ServerProfile, get_profile, preset_for_url
from oaicompat.protocol import parse_response
from oaicompat.retry import RetryPolicy
from oaicompat.types import ChatResponse, JSONObject

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "HTTPX_ERRORS",
    "ClientBase",
    "normalize_base_url",
    "resolve_timeout",
    "scrub_secret",
    "transport_error",
    "warn_if_clear_text",
]

logger = logging.getLogger("oaicompat")

DEFAULT_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
"""Finite everywhere; the read timeout is also the longest silence allowed between stream chunks."""

DEFAULT_LIMITS = httpx.Limits(
    max_connections=1000, max_keepalive_connections=100, keepalive_expiry=30.0
)
"""Sized for many concurrent streams on one client, which is how batch jobs use it."""

DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
ERROR_BODY_LIMIT = 1024 * 1024
"""An error page is only read for its message; more than this is cut, not refused."""

MAX_FALLBACKS = 4
"""Bound on resending a refused request with a changed body, so a fallback can never loop."""

DEFAULT_CHAT_PATH = "/chat/completions"
DEFAULT_COMPLETIONS_PATH = "/completions"
"""The legacy text-completions endpoint, used by ``complete()`` and ``stream_complete()``."""

HTTPX_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)
"""Every exception httpx raises while sending or reading; none may reach a caller."""

_TIMEOUT_KINDS: tuple[tuple[type[httpx.TimeoutException], str], ...] = (
    (httpx.ConnectTimeout, "connect"),
    (httpx.ReadTimeout, "read"),
    (httpx.WriteTimeout, "write"),
    (httpx.PoolTimeout, "connection pool"),
)


class _NotGiven:
    """Marks an argument left out, where None has its own meaning (no timeout)."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()


class _Secret:
    """Holds the API key so that ``vars(client)``, pickles and debuggers show only stars."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("the API key holder cannot be pickled")


def normalize_base_url(base_url: str) -> httpx.URL:
    """``base_url`` as users write it, reduced to the API root, e.g. ``http://h:11434/v1``.

    A bare host means ``/v1``; a trailing slash and a pasted ``/chat/completions``
    are dropped; any query string (Azure users sometimes add ``api-version``) is kept.
    """
    try:
        url = httpx.URL(base_url.strip())
    except httpx.InvalidURL as exc:
        raise ValueError(f"invalid base_url {base_url!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"base_url must be an http(s) URL with a host, got {base_url!r}")
    path = url.path.rstrip("/")
    if path.endswith(DEFAULT_CHAT_PATH):
        path = path[: -len(DEFAULT_CHAT_PATH)]
    return url.copy_with(path=path or "/v1")


def resolve_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """A number is one limit for every phase; None disables timeouts (the caller asked for it)."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(None)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(
            f"timeout must be a positive number, an httpx.Timeout or None: {timeout!r}"
        )
    return httpx.Timeout(float(timeout))


def transport_error(exc: Exception, url: httpx.URL | str) -> APIConnectionError:
    """The error-tree equivalent of an httpx failure that happened before any answer."""
    if isinstance(exc, httpx.TimeoutException):
        kind = next((name for cls, name in _TIMEOUT_KINDS if isinstance(exc, cls)), "request")
        return APITimeoutError(f"{kind} timeout talking to {url}")
    if isinstance(exc, httpx.ConnectError):
        return APIConnectionError(f"cannot connect to {url}: {exc or type(exc).__name__}")
    return APIConnectionError(f"connection to {url} failed: {exc or type(exc).__name__}")


_clear_text_warned: set[tuple[str, str, int | None]] = set()
_clear_text_lock = threading.Lock()


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def warn_if_clear_text(url: httpx.URL) -> None:
    """Log a warning, once per origin and process, when a key is about to go over plain
    http to another machine: anyone on the way can read it. Loopback is exempt (local
    servers rarely have TLS, and the key never leaves the machine)."""
    if url.scheme != "http" or is_loopback_host(url.host):
        return
    origin = (url.scheme, url.host, url.port)
    with _clear_text_lock:
        if origin in _clear_text_warned:
            return
        _clear_text_warned.add(origin)
    logger.warning(
        "sending the API key over plain http:// to %s; anyone on the network path can read "
        "it. Use an https:// base_url for servers on other machines.",
        url.host,
    )


def scrub_secret(value: Any, secret: str) -> Any:
    """``value`` with ``secret`` replaced by stars in every string or bytes it holds (dicts,
    lists, tuples); anything else, and anything without the secret, comes back as is."""
    if not _mentions(value, secret):
        return value
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).replace(secret.encode(), b"***")
    if isinstance(value, Mapping):
        return {scrub_secret(k, secret): scrub_secret(v, secret) for k, v in value.items()}
    scrubbed = [scrub_secret(item, secret) for item in value]
    return tuple(scrubbed) if isinstance(value, tuple) else scrubbed


def _mentions(value: Any, secret: str) -> bool:
    if isinstance(value, str):
        return secret in value
    if isinstance(value, (bytes, bytearray)):
        return secret.encode() in value
    if isinstance(value, Mapping):
        return any(_mentions(k, secret) or _mentions(v, secret) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_mentions(item, secret) for item in value)
    return False


class BoundedBody:
    """Collects a response body up to a byte limit; the clients feed it from their read loops."""

    __slots__ = ("_parts", "_size", "limit", "overflowed")

    def __init__(self, limit: int, headers: httpx.Headers) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self.limit = limit
        declared = headers.get("content-length", "")
        self.overflowed = declared.isdigit() and int(declared) > limit

    def add(self, piece: bytes) -> bool:
        """Keep ``piece``; False once the limit is passed (stop reading then)."""
        self._size += len(piece)
        if self._size > self.limit:
            self.overflowed = True
            return False
        self._parts.append(piece)
        return True

    @property
    def content(self) -> bytes:
        return b"".join(self._parts)


class CallState:
    """One logical request across its attempts: the body it sends now and what was tried."""

    __slots__ = ("body", "fallbacks", "retries")

    def __init__(self, body: JSONObject) -> None:
        self.body = body
        self.retries = 0
        self.fallbacks = 0


class ClientBase:
    """Configuration and logic shared by `Client` and `AsyncClient`."""

    _http_client_type: ClassVar[type[httpx.Client] | type[httpx.AsyncClient]]

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = NOT_GIVEN,
        max_retries: int = 2,
        profile: str | ServerProfile | None = None,
        headers: Mapping[str, str] | None = None,
        http2: bool = False,
        http_client: httpx.Client | httpx.AsyncClient | None = None,
        chat_path: str | None = None,
        completions_path: str | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], Any] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        **default_params: Any,
    ) -> None:
        if profile is None and base_url is not None:
            # A hosted API is known by its host; local servers stay generic.
            profile = preset_for_url(base_url)
        self._profile = get_profile(profile)
        if base_url is None:
            base_url = self._profile.default_base_url
            if base_url is None:
                raise ValueError(
                    f"base_url is required: profile {self._profile.name!r} has no default URL"
                )
        if not model or not isinstance(model, str):
            raise ValueError("model is required (the name the server knows the model by)")
        self._model = model
        self._base_url = normalize_base_url(base_url)
        self._chat_url = self._endpoint_url(chat_path or DEFAULT_CHAT_PATH)
        self._completions_url = self._endpoint_url(completions_path or DEFAULT_COMPLETIONS_PATH)
        self._query: dict[str, str] = {}
        if self._profile.api_version:
            self._query["api-version"] = self._profile.api_version

        if api_key is None and self._profile.api_key_env:
            # Only a profile names the variable, so a cloud key never travels to a local server.
            api_key = os.environ.get(self._profile.api_key_env) or None
        self._api_key = _Secret(api_key) if api_key else None

        if retry_policy is None:
            retry_policy = RetryPolicy(max_retries=max_retries)
        self._retry_policy = retry_policy
        self._sleep = sleep
        if max_response_bytes <= 0:
            raise ValueError("max_response_bytes must be positive")
        self._max_response_bytes = max_response_bytes
        self._default_params: dict[str, Any] = dict(default_params)

        self._json_headers, self._stream_headers = self._request_headers(headers)

        if http_client is not None and not isinstance(http_client, self._http_client_type):
            raise TypeError(
                f"{type(self).__name__} needs an {self._http_client_type.__module__}."
                f"{self._http_client_type.__name__} as http_client, "
                f"got {type(http_client).__name__}"
            )
        if timeout is NOT_GIVEN:
            # An injected client keeps its own timeouts unless the caller gives one here.
            self._timeout = http_client.timeout if http_client is not None else DEFAULT_TIMEOUT
        else:
            self._timeout = resolve_timeout(timeout)
        self._owns_http = http_client is None
        self._http2 = http2
        self._http_base: httpx.Client | httpx.AsyncClient = (
            http_client if http_client is not None else self._new_http_client(http2)
        )

    def _new_http_client(self, http2: bool) -> httpx.Client | httpx.AsyncClient:
        mounts: dict[str, Any] | None = None
        if self._http_client_type is httpx.AsyncClient:
            # Plain-http servers (local ones) get the asyncio-native transport, much
            # cheaper per request than httpcore's; https stays with httpx's.
            from oaicompat._aio_transport import owned_client_mounts

            mounts = owned_client_mounts(DEFAULT_LIMITS, http2=http2)
        try:
            return self._http_client_type(
                timeout=self._timeout,
                limits=DEFAULT_LIMITS,
                http2=http2,
                follow_redirects=False,
                mounts=mounts,
            )
        except ImportError as exc:
            raise ImportError(
                "http2=True needs the h2 package: pip install 'oaicompat[http2]'"
            ) from exc

    def _endpoint_url(self, path: str) -> httpx.URL:
        if path.startswith(("http://", "https://")):
            return httpx.URL(path)
        return self._base_url.copy_with(path=self._base_url.path + "/" + path.lstrip("/"))

    def _request_headers(
        self, extra: Mapping[str, str] | None
    ) -> tuple[dict[str, str], dict[str, str]]:
        from oaicompat import __version__

        common = {"Content-Type": "application/json", "User-Agent": f"oaicompat/{__version__}"}
        for name, value in (extra or {}).items():
            common[name] = value
        # Streams are read as raw bytes; asking for no compression keeps that correct
        # behind proxies that would otherwise gzip an event stream.
        stream = {"Accept": "text/event-stream", "Accept-Encoding": "identity", **common}
        return {"Accept": "application/json", **common}, stream

    # Public, read-only view ------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API root requests go under, e.g. ``http://localhost:11434/v1``."""
        return str(self._base_url)

    @property
    def model(self) -> str:
        return self._model

    @property
    def profile(self) -> ServerProfile:
        """The server's quirks as data; replaced when the server is found to refuse something."""
        return self._profile

    @property
    def timeout(self) -> httpx.Timeout:
        return self._timeout

    @property
    def max_retries(self) -> int:
        return self._retry_policy.max_retries

    @property
    def default_params(self) -> dict[str, Any]:
        """A copy of the request defaults given at construction (temperature, max_tokens...)."""
        return dict(self._default_params)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, model={self._model!r}, "
            f"profile={self._profile.name!r})"
        )

    # Request side --------------------------------------------------------

    def _url_for(self, body: JSONObject) -> httpx.URL:
        """Where ``body`` is sent: a chat body always has ``messages``, a legacy
        text-completion body (``build_completion_body``) never does."""
        return self._chat_url if "messages" in body else self._completions_url

    def _build_request(self, body: JSONObject, *, stream: bool) -> httpx.Request:
        # Built through the httpx client so an injected client's own headers,
        # cookies and event hooks apply; the key is added here, per request.
        request = self._http_base.build_request(
            "POST",
            self._url_for(body),
            content=_json.dumps(body),
            headers=self._stream_headers if stream else self._json_headers,
            params=self._query or None,
            timeout=self._timeout,
        )
        auth = self._auth_header(request.url)
        if auth is not None:
            # Set here rather than kept in a header dict, so the key lives only in `_Secret`.
            request.headers[auth[0]] = auth[1]
        return request

    def _auth_header(self, url: httpx.URL) -> tuple[str, str] | None:
        """The header carrying the key on a request to ``url``; None when there is no key."""
        if self._api_key is None:
            return None
        warn_if_clear_text(url)
        scheme = self._profile.auth_scheme
        key = self._api_key.reveal()
        return self._profile.auth_header, f"{scheme} {key}" if scheme else key

    # Failure side --------------------------------------------------------

    def _connection_error(self, exc: Exception, url: httpx.URL | None = None) -> APIConnectionError:
        return transport_error(exc, url or self._chat_url)

    def _status_error(self, response: httpx.Response, content: bytes) -> APIStatusError:
        error = error_from_status(
            response.status_code, response.headers, content, reason=response.reason_phrase
        )
        if response.has_redirect_location:
            # Redirects are never followed (they could carry the key to another host).
            location = response.headers["location"]
            error.message = f"{error.message} (not following the redirect to {location})"
            error.args = (error.message,)
        self._redact(error)
        return error

    def _redact(self, error: OAICompatError) -> None:
        """Strip the key from everything an error carries, in case a server echoes it back.

        Every attribute is scrubbed, not just the message: a parsed JSON body, the
        payload of an error event and the response headers end up in error trackers,
        pickles and LangChain callbacks just as surely as ``str(error)`` does.
        """
        if self._api_key is None:
            return
        key = self._api_key.reveal()
        for name, value in list(vars(error).items()):
            cleaned = scrub_secret(value, key)
            if cleaned is not value:
                setattr(error, name, cleaned)
        error.args = tuple(scrub_secret(arg, key) for arg in error.args)

    _refusals: ClassVar[tuple[type[APIStatusError], ...]] = (BadRequestError,)
    """The errors `_reconsider_refused` is asked about before the retry policy."""

    def _reconsider_refused(self, error: APIStatusError, body: JSONObject) -> JSONObject | None:
        """A new body to send instead of one the server refused, or None to give up.

        The one place a refusal (a 400/422) may be turned into a second attempt (e.g.
        by dropping a parameter this server does not accept and remembering that
        in ``self._profile``). The base client never rewrites a request.
        """
        return None

    def _recover(self, call: CallState, error: OAICompatError) -> float | None:
        """After a failed attempt: seconds to wait before the next one, or None to raise."""
        if isinstance(error, self._refusals) and call.fallbacks < MAX_FALLBACKS:
            new_body = self._reconsider_refused(error, call.body)
            if new_body is not None:
                call.fallbacks += 1
                call.body = new_body
                logger.info("resending the request changed after %s", error.message)
                return 0.0
        delay = self._retry_policy.delay_before_retry(error, call.retries)
        if delay is None:
            return None
        call.retries += 1
        logger.warning(
            "retrying POST %s in %.2fs (retry %d of %d) after %s: %s",
            self._url_for(call.body),
            delay,
            call.retries,
            self._retry_policy.max_retries,
            type(error).__name__,
            error.message,
        )
        return delay

    # Response side -------------------------------------------------------

    def _finish_response(
        self, response: httpx.Response, body: BoundedBody, started: float
    ) -> ChatResponse:
        """The `ChatResponse` of a 2xx non-streamed answer, or `ResponseParseError`."""
        status = response.status_code
        if body.overflowed:
            raise ResponseParseError(
                f"response body is larger than max_response_bytes ({body.limit} bytes)",
                status_code=status,
            )
        content = body.content
        try:
            data = _json.loads(content)
        except ValueError:
            content_type = response.headers.get("content-type", "no content type")
            server_says = extract_server_message(content) or "empty body"
            error = ResponseParseError(
                f"expected a JSON chat completion, got {content_type} ({status}): {server_says}",
                body=content.decode("utf-8", "replace")[:ERROR_BODY_LIMIT],
                status_code=status,
            )
            # A captive portal or a debugging proxy may print the request's headers.
            self._redact(error)
            raise error from None
        try:
            result = parse_response(data, self._profile)
        except OAICompatError as error:
            self._redact(error)
            raise
        result.latency_s = perf_counter() - started
        return result
