"""`Client` and `AsyncClient`: the only classes that talk to a server.

::

    client = Client("http://localhost:11434", "qwen3:0.6b")
    answer = client.chat([{"role": "user", "content": "Hi"}])
    with client.stream([{"role": "user", "content": "Hi"}]) as stream:
        for chunk in stream:
            print(chunk.content, end="")
    print(stream.final().usage)

Both classes take the same arguments and expose the same names; everything
but sending, reading and sleeping is shared in ``_transport.ClientBase``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from oaicompat._client_servers import (
    AsyncStructuredChatStream,
    ServerAwareBase,
    StructuredChatStream,
)
from oaicompat._closing import AsyncClosing, Closing
from oaicompat._transport import (
    ERROR_BODY_LIMIT,
    HTTPX_ERRORS,
    BoundedBody,
    CallState,
)
from oaicompat.errors import OAICompatError
from oaicompat.streaming import (
    AsyncChatStream,
    ChatStream,
    StreamOpening,
    astart_stream,
    start_stream,
)
from oaicompat.types import ChatResponse, JSONObject, Message

if TYPE_CHECKING:
    import asyncio

    from oaicompat.discovery import ServerInfo
    from oaicompat.structured import MethodArg, StructuredSpec

# Discovery, structured output and the fallback rules load on first use, not at
# `import oaicompat`: most programs only chat.

__all__ = ["AsyncClient", "Client"]

_T = TypeVar("_T")


class Client(ServerAwareBase[ChatStream], Closing):
    """A blocking client for one model on one OpenAI-compatible server.

    ``Client(base_url, model, *, api_key=None, timeout=..., max_retries=2,
    profile=None, headers=None, http2=False, http_client=None, chat_path=None,
    completions_path=None, **default_params)``. ``default_params`` (temperature,
    max_tokens, stop, seed...) go into every request unless a call overrides them. The key comes
    from ``api_key``, or from the environment variable the profile names; it is
    sent per request and never stored in the httpx client.

    Also accepted: ``retry_policy`` (a `RetryPolicy`), ``sleep`` (the function
    used to wait between retries) and ``max_response_bytes`` (16 MiB by default).
    """

    _http_client_type = httpx.Client

    @property
    def _http(self) -> httpx.Client:
        return cast(httpx.Client, self._http_base)

    def chat(
        self,
        messages: str | Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool | None = None,
        response_format: Any = None,
        structured_method: MethodArg = "auto",
        **params: Any,
    ) -> ChatResponse:
        """Send one chat request and return the whole answer.

        ``response_format`` may be a pydantic model class, a JSON schema or an OpenAI
        ``response_format`` dict: the answer's ``parsed`` then holds the value, got by
        ``structured_method`` (``auto``, ``json_schema``, ``tool`` or ``json_object``).
        """
        body, spec = self._prepare_chat(
            messages,
            stream=False,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=response_format,
            structured_method=structured_method,
            params=params,
        )
        attempt = self._parsing(partial(self._chat_once, started=perf_counter()), spec)
        return self._with_retries(body, attempt)

    def complete(self, prompt: str, **params: Any) -> ChatResponse:
        """Continue ``prompt`` through the legacy text ``/completions`` endpoint.

        For base models and servers without a chat template; the answer's
        ``content`` is the generated text. ``stream_complete()`` streams it.
        """
        body = self._prepare_completion(prompt, stream=False, params=params)
        return self._with_retries(body, partial(self._chat_once, started=perf_counter()))

    def list_models(self) -> list[str]:
        """The ids of the models the server serves (``GET /models``)."""
        from oaicompat.discovery import list_models_flow

        return self._run_flow(list_models_flow(), self._http)

    def health(self) -> bool:
        """True when a server answers at ``base_url`` (a 401 or 403 counts: it is there)."""
        from oaicompat.discovery import health_flow

        return self._run_flow(health_flow(), self._http)

    def preflight(self) -> str:
        """Check that the server is up and serves ``model``; return the id it serves it as."""
        from oaicompat.discovery import preflight_flow

        return self._run_flow(preflight_flow(self._model, self.base_url), self._http)

    def server_info(self) -> ServerInfo:
        """Which server this is: kind, version, models and the model's context window."""
        from oaicompat.discovery import server_info_flow

        return self._run_flow(server_info_flow(self.base_url, self._model), self._http)

    def close(self) -> None:
        """Close the connection pool, unless it was passed in as ``http_client``."""
        if self._owns_http:
            self._http.close()

    # Sending -------------------------------------------------------------

    def _with_retries(self, body: JSONObject, attempt: Callable[[JSONObject], _T]) -> _T:
        call = CallState(body)
        while True:
            try:
                return attempt(call.body)
            except OAICompatError as error:
                delay = self._recover(call, error)
                if delay is None:
                    raise
            if delay > 0:
                (self._sleep or time.sleep)(delay)

    def _open(self, body: JSONObject, *, stream: bool) -> httpx.Response:
        """Send once; a 2xx response comes back open and unread, anything else raises."""
        request = self._build_request(body, stream=stream)
        try:
            # Never followed, whatever an injected client says: httpx keeps a custom key
            # header (Azure's ``api-key``) on a redirect to another host.
            response = self._http.send(request, stream=True, follow_redirects=False)
        except HTTPX_ERRORS as exc:
            raise self._connection_error(exc, request.url) from exc
        if response.is_success:
            return response
        try:
            error_body = self._read(response, ERROR_BODY_LIMIT, strict=False)
        finally:
            response.close()
        raise self._status_error(response, error_body.content)

    def _read(self, response: httpx.Response, limit: int, *, strict: bool = True) -> BoundedBody:
        body = BoundedBody(limit, response.headers)
        try:
            for piece in response.iter_bytes():
                if not body.add(piece):
                    break
        except HTTPX_ERRORS as exc:
            if strict:
                raise self._connection_error(exc, response.request.url) from exc
        return body

    def _chat_once(self, body: JSONObject, *, started: float) -> ChatResponse:
        response = self._open(body, stream=False)
        try:
            content = self._read(response, self._max_response_bytes)
        finally:
            response.close()
        return self._finish_response(response, content, started)

    def _open_stream_once(self, body: JSONObject) -> StreamOpening:
        return start_stream(self, self._open(body, stream=True))

    def _new_stream(self, body: JSONObject, spec: StructuredSpec | None) -> ChatStream:
        if spec is not None:
            return StructuredChatStream(self, body, spec)
        return ChatStream(self, partial(self._with_retries, body, self._open_stream_once))


class AsyncClient(ServerAwareBase[AsyncChatStream], AsyncClosing):
    """The asyncio twin of `Client`: same arguments, same names, ``await`` where it waits.

    ``http_client`` must be an ``httpx.AsyncClient``; ``sleep`` may be a plain
    function or a coroutine function. ``stream()`` needs no ``await``: use
    ``async with aclient.stream(...) as stream`` and ``async for``.
    """

    _http_client_type = httpx.AsyncClient
    _pool_loop: asyncio.AbstractEventLoop | None = None

    @property
    def _http(self) -> httpx.AsyncClient:
        return cast(httpx.AsyncClient, self._http_base)

    def _pool_is_stale(self) -> bool:
        """Whether the owned pool was opened on an event loop other than the running one.

        Pooled connections belong to the loop that opened them; a notebook that
        calls ``asyncio.run`` twice would otherwise get "Event loop is closed".
        """
        import asyncio  # here, not at module level: it adds ~40 ms to `import oaicompat`

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (e.g. trio): nothing is bound to a loop this way
            return False
        if self._pool_loop is None:
            self._pool_loop = loop
        return self._owns_http and self._pool_loop is not loop

    @staticmethod
    def _running_loop() -> asyncio.AbstractEventLoop:
        import asyncio

        return asyncio.get_running_loop()

    async def _close_stale_pool(self) -> None:
        with contextlib.suppress(Exception):
            # Best effort: the old loop is gone, so its sockets may not close cleanly.
            await self._http.aclose()

    async def _pool(self) -> httpx.AsyncClient:
        if self._pool_is_stale():
            await self._close_stale_pool()
            self._http_base = self._new_http_client(self._http2)
            self._pool_loop = self._running_loop()
        return self._http

    async def chat(
        self,
        messages: str | Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool | None = None,
        response_format: Any = None,
        structured_method: MethodArg = "auto",
        **params: Any,
    ) -> ChatResponse:
        """Send one chat request and return the whole answer.

        ``response_format`` may be a pydantic model class, a JSON schema or an OpenAI
        ``response_format`` dict: the answer's ``parsed`` then holds the value, got by
        ``structured_method`` (``auto``, ``json_schema``, ``tool`` or ``json_object``).
        """
        body, spec = self._prepare_chat(
            messages,
            stream=False,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=response_format,
            structured_method=structured_method,
            params=params,
        )
        attempt = self._aparsing(partial(self._chat_once, started=perf_counter()), spec)
        return await self._with_retries(body, attempt)

    async def complete(self, prompt: str, **params: Any) -> ChatResponse:
        """Continue ``prompt`` through the legacy text ``/completions`` endpoint.

        For base models and servers without a chat template; the answer's
        ``content`` is the generated text. ``stream_complete()`` streams it.
        """
        body = self._prepare_completion(prompt, stream=False, params=params)
        return await self._with_retries(body, partial(self._chat_once, started=perf_counter()))

    async def list_models(self) -> list[str]:
        """The ids of the models the server serves (``GET /models``)."""
        from oaicompat.discovery import list_models_flow

        return await self._arun_flow(list_models_flow(), await self._pool())

    async def health(self) -> bool:
        """True when a server answers at ``base_url`` (a 401 or 403 counts: it is there)."""
        from oaicompat.discovery import health_flow

        return await self._arun_flow(health_flow(), await self._pool())

    async def preflight(self) -> str:
        """Check that the server is up and serves ``model``; return the id it serves it as."""
        from oaicompat.discovery import preflight_flow

        return await self._arun_flow(preflight_flow(self._model, self.base_url), await self._pool())

    async def server_info(self) -> ServerInfo:
        """Which server this is: kind, version, models and the model's context window."""
        from oaicompat.discovery import server_info_flow

        flow = server_info_flow(self.base_url, self._model)
        return await self._arun_flow(flow, await self._pool())

    async def aclose(self) -> None:
        """Close the connection pool, unless it was passed in as ``http_client``."""
        if self._owns_http:
            if self._pool_is_stale():
                await self._close_stale_pool()
            else:
                await self._http.aclose()

    # Sending -------------------------------------------------------------

    async def _with_retries(
        self, body: JSONObject, attempt: Callable[[JSONObject], Awaitable[_T]]
    ) -> _T:
        call = CallState(body)
        while True:
            try:
                return await attempt(call.body)
            except OAICompatError as error:
                delay = self._recover(call, error)
                if delay is None:
                    raise
            if delay > 0:
                import asyncio

                waited = (self._sleep or asyncio.sleep)(delay)
                # Not inspect.isawaitable: importing inspect adds ~14 ms to `import oaicompat`.
                if hasattr(waited, "__await__"):
                    await waited

    async def _open(self, body: JSONObject, *, stream: bool) -> httpx.Response:
        """Send once; a 2xx response comes back open and unread, anything else raises."""
        request = self._build_request(body, stream=stream)
        try:
            pool = await self._pool()
            response = await pool.send(request, stream=True, follow_redirects=False)
        except HTTPX_ERRORS as exc:
            raise self._connection_error(exc, request.url) from exc
        if response.is_success:
            return response
        try:
            error_body = await self._read(response, ERROR_BODY_LIMIT, strict=False)
        finally:
            await response.aclose()
        raise self._status_error(response, error_body.content)

    async def _read(
        self, response: httpx.Response, limit: int, *, strict: bool = True
    ) -> BoundedBody:
        body = BoundedBody(limit, response.headers)
        try:
            async for piece in response.aiter_bytes():
                if not body.add(piece):
                    break
        except HTTPX_ERRORS as exc:
            if strict:
                raise self._connection_error(exc, response.request.url) from exc
        return body

    async def _chat_once(self, body: JSONObject, *, started: float) -> ChatResponse:
        response = await self._open(body, stream=False)
        try:
            content = await self._read(response, self._max_response_bytes)
        finally:
            await response.aclose()
        return self._finish_response(response, content, started)

    async def _open_stream_once(self, body: JSONObject) -> StreamOpening:
        return await astart_stream(self, await self._open(body, stream=True))

    def _new_stream(self, body: JSONObject, spec: StructuredSpec | None) -> AsyncChatStream:
        if spec is not None:
            return AsyncStructuredChatStream(self, body, spec)
        return AsyncChatStream(self, partial(self._with_retries, body, self._open_stream_once))
