"""What the clients know about servers: presets, discovery, fallback, structured output.

`ServerAwareBase` sits between ``ClientBase`` (configuration, requests, errors)
and the two client classes. It adds, once for both:

- factories for the presets (``Client.for_ollama("llama3.1")``...);
- the arguments the discovery flows run with, and their drivers;
- ``_prepare_chat``: the request body with structured output applied and the
  profile's learned quirks conformed (``_prepare_completion`` the same for the
  legacy text-completions endpoint);
- ``_reconsider_refused``: a request a server refused for one of its parameters
  is resent once without it (or with the supported alternative), and the
  client keeps the updated profile so later calls do not pay again.

The structured-output streams are here too: a stream parses its final answer
into ``response.parsed`` with the body that was finally sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from oaicompat._transport import ClientBase
from oaicompat.errors import APIStatusError, BadRequestError, InternalServerError, OAICompatError
from oaicompat.protocol import build_body, build_completion_body
from oaicompat.streaming import AsyncChatStream, ChatStream, StreamOpening
from oaicompat.types import ChatResponse, JSONObject, Message

# The discovery drivers, the fallback rules and structured output are imported
# where first used: `import oaicompat` stays fast for programs that only chat.
if TYPE_CHECKING:
    from oaicompat._probes import Flow
    from oaicompat.client import AsyncClient, Client
    from oaicompat.structured import MethodArg, StructuredSpec

__all__ = ["AsyncStructuredChatStream", "ServerAwareBase", "StructuredChatStream"]

logger = logging.getLogger("oaicompat")

_T = TypeVar("_T")
_C = TypeVar("_C", bound="ServerAwareBase[Any]")
_S = TypeVar("_S", ChatStream, AsyncChatStream)


def _structured_spec(response_format: Any) -> StructuredSpec | None:
    if response_format is None:
        return None
    from oaicompat.structured import resolve_spec

    return resolve_spec(response_format)


def _parse_into(response: ChatResponse, spec: StructuredSpec, body: Mapping[str, Any]) -> None:
    from oaicompat.structured import method_in_body, parse_structured, spec_from_body

    method = method_in_body(body) or "json_schema"
    if method == "tool":
        # After a fallback the function may carry the schema's title rather than the
        # name the caller gave: the answer is read under the name that was sent.
        sent = spec_from_body(body)
        if sent is not None and sent.name != spec.name:
            spec = replace(spec, name=sent.name)
    response.parsed = parse_structured(response, spec, method)


class ServerAwareBase(ClientBase, Generic[_S]):
    """Presets, discovery, fallback and structured output for `Client` and `AsyncClient`.

    ``stream()`` is here too: it sends nothing, so the two clients share it and
    differ only by the stream class they hand back (``_S``).
    """

    # llama-cpp-python reports a refused response_format as a 500, which the
    # retry policy would resend unchanged; a refusal is reconsidered first.
    _refusals = (BadRequestError, InternalServerError)

    # Factories ---------------------------------------------------------------------

    @classmethod
    def for_server(cls: type[_C], name: str, model: str, **kwargs: Any) -> _C:
        """A client for the preset ``name`` (``"ollama"``, ``"vllm"``...) at its default URL.

        ``base_url=...`` points it elsewhere; every other keyword is the constructor's.
        """
        base_url = kwargs.pop("base_url", None)
        return cls(base_url, model, profile=name, **kwargs)

    @classmethod
    def for_ollama(cls: type[_C], model: str, **kwargs: Any) -> _C:
        """Ollama, by default at ``http://localhost:11434/v1``."""
        return cls.for_server("ollama", model, **kwargs)

    @classmethod
    def for_vllm(cls: type[_C], model: str, **kwargs: Any) -> _C:
        """vLLM, by default at ``http://localhost:8000/v1``."""
        return cls.for_server("vllm", model, **kwargs)

    @classmethod
    def for_lmstudio(cls: type[_C], model: str, **kwargs: Any) -> _C:
        """LM Studio, by default at ``http://localhost:1234/v1``."""
        return cls.for_server("lmstudio", model, **kwargs)

    @classmethod
    def for_llamacpp(cls: type[_C], model: str, **kwargs: Any) -> _C:
        """llama.cpp's ``llama-server``, by default at ``http://localhost:8080/v1``."""
        return cls.for_server("llamacpp", model, **kwargs)

    # Discovery ---------------------------------------------------------------------

    def _probe_args(self) -> dict[str, Any]:
        headers = {k: v for k, v in self._json_headers.items() if k != "Content-Type"}
        auth = self._auth_header(self._base_url)
        if auth is not None:
            # Built per call, like the chat requests', so the key stays in its holder.
            headers[auth[0]] = auth[1]
        return {
            "base_url": str(self._base_url),
            "headers": headers,
            "params": self._query or None,
            "timeout": self._timeout,
        }

    def _run_flow(self, flow: Flow[_T], http: httpx.Client) -> _T:
        from oaicompat._probes import run_sync

        try:
            return run_sync(flow, http, **self._probe_args())
        except OAICompatError as error:
            self._redact(error)
            raise

    async def _arun_flow(self, flow: Flow[_T], http: httpx.AsyncClient) -> _T:
        from oaicompat._probes import run_async

        try:
            return await run_async(flow, http, **self._probe_args())
        except OAICompatError as error:
            self._redact(error)
            raise

    # Requests ----------------------------------------------------------------------

    def _prepare_chat(
        self,
        messages: str | Sequence[Message],
        *,
        stream: bool,
        tools: Sequence[Mapping[str, Any]] | None,
        tool_choice: Any,
        parallel_tool_calls: bool | None,
        response_format: Any,
        structured_method: MethodArg,
        params: Mapping[str, Any],
    ) -> tuple[JSONObject, StructuredSpec | None]:
        """The body to send and, when structured output was asked for, what to parse.

        The body holds the defaults, the per-call params (a ``model`` among them
        overrides the client's) and the profile's quirks.
        """
        spec = _structured_spec(response_format)
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        params = dict(params)
        body = build_body(
            model=params.pop("model", None) or self._model,
            messages=messages,
            profile=self._profile,
            defaults=self._default_params,
            stream=stream,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=response_format if spec is None and response_format else None,
            params=params,
        )
        from oaicompat.fallback import conform_body

        if spec is not None:
            from oaicompat.structured import apply_method, choose_method

            method = choose_method(structured_method, spec, self._profile, user_tools=bool(tools))
            body = apply_method(body, spec, method, self._profile)
        return conform_body(body, self._profile), spec

    def stream(
        self,
        messages: str | Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        parallel_tool_calls: bool | None = None,
        response_format: Any = None,
        structured_method: MethodArg = "auto",
        **params: Any,
    ) -> _S:
        """A `ChatStream` of the answer (an `AsyncChatStream` from `AsyncClient`).

        The request is sent on ``with`` (``async with``) or at the first chunk.
        """
        body, spec = self._prepare_chat(
            messages,
            stream=True,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            response_format=response_format,
            structured_method=structured_method,
            params=params,
        )
        return self._new_stream(body, spec)

    def _prepare_completion(
        self, prompt: str, *, stream: bool, params: Mapping[str, Any]
    ) -> JSONObject:
        """The body of a legacy text-completion request, conformed like a chat body's."""
        params = dict(params)
        body = build_completion_body(
            model=params.pop("model", None) or self._model,
            prompt=prompt,
            profile=self._profile,
            defaults=self._default_params,
            stream=stream,
            params=params,
        )
        from oaicompat.fallback import conform_body

        return conform_body(body, self._profile)

    def stream_complete(self, prompt: str, **params: Any) -> _S:
        """`complete()`, streamed: a `ChatStream` (an `AsyncChatStream` from `AsyncClient`)
        of the text the legacy ``/completions`` endpoint generates after ``prompt``."""
        return self._new_stream(self._prepare_completion(prompt, stream=True, params=params), None)

    def _new_stream(self, body: JSONObject, spec: StructuredSpec | None) -> _S:
        """The unopened stream that sends ``body`` (and parses it by ``spec``, if any)."""
        raise NotImplementedError

    def _parsing(
        self, attempt: Callable[[JSONObject], ChatResponse], spec: StructuredSpec | None
    ) -> Callable[[JSONObject], ChatResponse]:
        """``attempt``, with its answer parsed by the method of the body it sent."""
        if spec is None:
            return attempt

        def parsed(body: JSONObject) -> ChatResponse:
            response = attempt(body)
            _parse_into(response, spec, body)
            return response

        return parsed

    def _aparsing(
        self,
        attempt: Callable[[JSONObject], Awaitable[ChatResponse]],
        spec: StructuredSpec | None,
    ) -> Callable[[JSONObject], Awaitable[ChatResponse]]:
        """`_parsing` for coroutine attempts."""
        if spec is None:
            return attempt

        async def parsed(body: JSONObject) -> ChatResponse:
            response = await attempt(body)
            _parse_into(response, spec, body)
            return response

        return parsed

    # Refusals ----------------------------------------------------------------------

    def _reconsider_refused(self, error: APIStatusError, body: JSONObject) -> JSONObject | None:
        from oaicompat.fallback import explain_fallback, plan_fallback

        plan = plan_fallback(error, body, self._profile)
        if plan is None:
            return None
        new_body, profile = plan
        logger.warning(
            "%s refused a request parameter (%s); resending with: %s. This client sends "
            "requests that way from now on.",
            self.base_url,
            error.server_message or error.message,
            explain_fallback(body, new_body),
        )
        self._profile = profile
        return new_body


class _LastSent:
    """The body a structured stream's latest attempt sent, which its answer is parsed by.

    Held apart from the stream, as is the parsing step, so nothing the stream owns
    points back at it: a stream dropped unclosed is freed at once, and with it
    its connection, rather than at the next garbage collection.
    """

    __slots__ = ("body",)

    def __init__(self, body: JSONObject) -> None:
        self.body = body

    def parse(self, spec: StructuredSpec, response: ChatResponse) -> None:
        _parse_into(response, spec, self.body)


class StructuredChatStream(ChatStream):
    """A `ChatStream` whose final answer carries ``parsed``."""

    def __init__(self, client: Client, body: JSONObject, spec: StructuredSpec) -> None:
        sent = _LastSent(body)

        def attempt(body: JSONObject) -> StreamOpening:
            sent.body = body
            return client._open_stream_once(body)

        super().__init__(client, partial(client._with_retries, body, attempt))
        self._core.on_finish = partial(sent.parse, spec)


class AsyncStructuredChatStream(AsyncChatStream):
    """An `AsyncChatStream` whose final answer carries ``parsed``."""

    def __init__(self, client: AsyncClient, body: JSONObject, spec: StructuredSpec) -> None:
        sent = _LastSent(body)

        async def attempt(body: JSONObject) -> StreamOpening:
            sent.body = body
            return await client._open_stream_once(body)

        super().__init__(client, partial(client._with_retries, body, attempt))
        self._core.on_finish = partial(sent.parse, spec)
