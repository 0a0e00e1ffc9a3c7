"""LangChain chat model over the oaicompat client: ``ChatOpenAICompatible``.

A drop-in for ``ChatOpenAI`` or ``ChatOllama`` against any OpenAI-compatible
server. It converts LangChain's types to ours and back and delegates every
request to :class:`oaicompat.Client` / :class:`oaicompat.AsyncClient`, which own
HTTP, retries, server quirks and protocol parsing.

Importing this module imports langchain-core; ``import oaicompat`` does not.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import (
    BaseChatModel,
    LangSmithParams,
    LanguageModelInput,
    ModelProfile,
)
from langchain_core.language_models.chat_models import agenerate_from_stream, generate_from_stream
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils import secret_from_env
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr, model_validator
from typing_extensions import Self

from oaicompat import AsyncClient, Client
from oaicompat._langchain.errors import (
    ChatAPIConnectionError,
    ChatAPITimeoutError,
    ChatAuthenticationError,
    ChatBadRequestError,
    ChatContextLengthError,
    ChatInternalServerError,
    ChatNotFoundError,
    ChatPermissionDeniedError,
    ChatRateLimitError,
    ChatResponseParseError,
    ChatStreamError,
    translated_errors,
)
from oaicompat._langchain.messages import to_openai_messages
from oaicompat._langchain.outputs import PROVIDER, ChunkConverter, Outcome, outcome_of
from oaicompat._langchain.structured import (
    StructuredMethod,
    default_method,
    parser_for,
    response_format_for,
    schema_name,
    with_parser,
)
from oaicompat._langchain.tools import format_tools, normalize_tool_choice
from oaicompat.discovery import ServerInfo
from oaicompat.profiles import ServerProfile, get_profile
from oaicompat.types import Message

__all__ = [
    "ChatAPIConnectionError",
    "ChatAPITimeoutError",
    "ChatAuthenticationError",
    "ChatBadRequestError",
    "ChatContextLengthError",
    "ChatInternalServerError",
    "ChatNotFoundError",
    "ChatOpenAICompatible",
    "ChatPermissionDeniedError",
    "ChatRateLimitError",
    "ChatResponseParseError",
    "ChatStreamError",
]

API_KEY_ENV = "OAICOMPAT_API_KEY"

_CORE_METHOD = {"json_schema": "json_schema", "json_mode": "json_object"}

# Keyword arguments LangChain itself passes down that are not request parameters.
_NOT_REQUEST_PARAMS = frozenset({"stream", "stream_usage"})


_CLIENTS_LOCK = threading.Lock()


class _OwnedClients:
    """The core clients one model instance built. Copying yields an empty holder."""

    __slots__ = ("async_", "owner", "sync")

    def __init__(self, owner: int | None = None) -> None:
        self.owner = owner
        self.sync: Client | None = None
        self.async_: AsyncClient | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> _OwnedClients:
        return _OwnedClients()

    def __reduce__(self) -> tuple[type[_OwnedClients], tuple[()]]:
        return (_OwnedClients, ())


@dataclass(frozen=True, slots=True)
class _Request:
    messages: list[Message]
    params: dict[str, Any]
    model: str

    def outcome(self) -> AbstractContextManager[Outcome]:
        return outcome_of(self.model, user_tools=bool(self.params.get("tools")))


class ChatOpenAICompatible(BaseChatModel):
    """A LangChain chat model for any server speaking OpenAI's ``/v1/chat/completions``.

    Example:
        ```python
        from oaicompat.langchain import ChatOpenAICompatible

        llm = ChatOpenAICompatible(model="llama3.1", profile="ollama")
        llm.invoke("Say hi").content
        ```

    ``profile`` names a server preset (``"ollama"``, ``"vllm"``, ``"llamacpp"``, ...)
    or takes a :class:`oaicompat.ServerProfile`; it is stored as ``server_profile``
    because LangChain's own ``profile`` field describes the model's capabilities,
    which this class fills in from the server profile.
    """

    model: str = Field(alias="model_name")
    """Model name sent with each request; a per-call ``model=`` overrides it."""
    base_url: str | None = None
    """Server URL, e.g. ``http://localhost:11434`` (``/v1`` is implied). Defaults to the
    server profile's URL."""
    api_key: SecretStr | None = Field(default_factory=secret_from_env(API_KEY_ENV, default=None))
    """Sent only when set; read from ``OAICOMPAT_API_KEY`` when not given. Hosted
    presets also read their own variable (e.g. ``OPENAI_API_KEY``)."""
    server_profile: str | ServerProfile | None = None
    """Server preset name or profile (also accepted as ``profile=``)."""
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    seed: int | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other request parameters sent with every call (``frequency_penalty``, ...)."""
    extra_body: dict[str, Any] | None = None
    """Server-specific fields merged into the request body (e.g. vLLM's ``top_k``)."""
    timeout: float | httpx.Timeout | None = Field(default=None, alias="request_timeout")
    """Seconds or an ``httpx.Timeout``; None keeps the client's finite default."""
    max_retries: int = 2
    """Retries of failed requests, done by the core client (before any byte is streamed)."""
    streaming: bool = False
    """Stream even when ``invoke`` is called, aggregating the chunks."""
    send_reasoning: bool = False
    """Send earlier turns' reasoning back as ``reasoning_content`` (DeepSeek's thinking
    mode needs it within a tool loop; other servers ignore or refuse it)."""
    default_headers: dict[str, str] | None = None
    http2: bool = False
    http_client: httpx.Client | None = Field(default=None, exclude=True)
    """Your own ``httpx.Client`` for sync calls (proxies, certificates); not closed by us."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)
    """Your own ``httpx.AsyncClient`` for async calls; not closed by us."""

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    _clients: _OwnedClients = PrivateAttr(default_factory=_OwnedClients)

    # -- construction ---------------------------------------------------------

    @model_validator(mode="before")
    @classmethod
    def _server_profile_from_profile(cls, values: Any) -> Any:
        """Accept ``profile="ollama"`` (or a ``ServerProfile``) as the server profile."""
        if isinstance(values, Mapping) and isinstance(values.get("profile"), (str, ServerProfile)):
            values = dict(values)
            if values.get("server_profile") is not None:
                raise ValueError("pass the server profile as `profile` or `server_profile`")
            values["server_profile"] = values.pop("profile")
        return values

    @model_validator(mode="after")
    def _require_base_url(self) -> Self:
        if not self.base_url and not self._server.default_base_url:
            raise ValueError(
                "base_url is required (e.g. 'http://localhost:8000/v1'), or name a server "
                "profile that has a default URL, such as profile='ollama'"
            )
        return self

    @property
    def _server(self) -> ServerProfile:
        return get_profile(self.server_profile)

    def _resolve_model_profile(self) -> ModelProfile | None:
        server = self._server
        profile = ModelProfile(
            text_inputs=True,
            text_outputs=True,
            tool_calling=server.supports_tools,
            tool_choice=server.supports_tool_choice,
            tool_call_streaming=server.supports_tools,
            structured_output=server.supports_json_schema,
        )
        if server.context_window:
            profile["max_input_tokens"] = server.context_window
        return profile

    def discover_profile(self) -> ModelProfile:
        """Ask the server for the model's context window and record it in ``profile``.

        One round of discovery requests (``/props``, ``/v1/models``, ...); call it once,
        e.g. before handing the model to an agent that trims history to fit.
        """
        with translated_errors():
            info = self.client.server_info()
        return self._record_server_info(info)

    async def adiscover_profile(self) -> ModelProfile:
        """Async :meth:`discover_profile`."""
        with translated_errors():
            info = await self.async_client.server_info()
        return self._record_server_info(info)

    def _record_server_info(self, info: ServerInfo) -> ModelProfile:
        profile = ModelProfile(**(self.profile or {}))
        if info.context_window:
            profile["max_input_tokens"] = info.context_window
        self.profile = profile
        return profile

    # -- serialization and tracing --------------------------------------------

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["oaicompat", "langchain"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": API_KEY_ENV}

    @property
    def _llm_type(self) -> str:
        return "oaicompat-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        server = self.server_profile
        return {
            "model": self.model,
            "base_url": self.base_url,
            "server_profile": server.name if isinstance(server, ServerProfile) else server,
            **self._default_params(),
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=PROVIDER,
            ls_model_name=str(kwargs.get("model") or self.model),
            ls_model_type="chat",
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        if stops := stop or kwargs.get("stop") or self.stop:
            params["ls_stop"] = stops
        return params

    # -- clients --------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "max_retries": self.max_retries,
            "profile": self.server_profile,
            "http2": self.http2,
        }
        if self.api_key is not None:
            options["api_key"] = self.api_key.get_secret_value()
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.default_headers:
            options["headers"] = dict(self.default_headers)
        base_url = self.base_url or self._server.default_base_url
        return {"base_url": base_url, "model": self.model, **options}

    def _own_clients(self) -> _OwnedClients:
        """This instance's clients; a copy of a model (``model_copy``, ``deepcopy``,
        pickling) starts with none, since its settings may differ. Call under the lock."""
        if self._clients.owner != id(self):
            self._clients = _OwnedClients(owner=id(self))
        return self._clients

    @property
    def client(self) -> Client:
        """The sync core client, built on first use and kept for this model's lifetime."""
        with _CLIENTS_LOCK:
            clients = self._own_clients()
            if clients.sync is None:
                clients.sync = Client(**self._client_options(), http_client=self.http_client)
                # Models are often dropped without close() (notebooks, chains built per
                # request); closing the pool with the model keeps sockets from leaking.
                weakref.finalize(self, clients.sync.close)
            return clients.sync

    @property
    def async_client(self) -> AsyncClient:
        """The async core client, built on first use and kept for this model's lifetime."""
        with _CLIENTS_LOCK:
            clients = self._own_clients()
            if clients.async_ is None:
                clients.async_ = AsyncClient(
                    **self._client_options(), http_client=self.http_async_client
                )
            return clients.async_

    def close(self) -> None:
        """Close the sync client's connections (an ``http_client`` you passed stays open)."""
        with _CLIENTS_LOCK:
            clients = self._own_clients()
            client, clients.sync = clients.sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close both clients' connections."""
        with _CLIENTS_LOCK:
            clients = self._own_clients()
            async_client, clients.async_ = clients.async_, None
        if async_client is not None:
            await async_client.aclose()
        self.close()

    # -- requests -------------------------------------------------------------

    def _default_params(self) -> dict[str, Any]:
        optional = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": self.stop or None,
        }
        return {
            **{key: value for key, value in optional.items() if value is not None},
            **self.model_kwargs,
            **(self.extra_body or {}),
        }

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> _Request:
        params = self._default_params()
        params.update(
            (key, value) for key, value in kwargs.items() if key not in _NOT_REQUEST_PARAMS
        )
        if stop:
            params["stop"] = stop
        return _Request(
            messages=to_openai_messages(messages, send_reasoning=self.send_reasoning),
            params=params,
            model=str(params.get("model") or self.model),
        )

    def _wants_stream(self, kwargs: dict[str, Any]) -> bool:
        return bool(kwargs.get("stream", self.streaming))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._wants_stream(kwargs):
            return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
        request = self._request(messages, stop, kwargs)
        with translated_errors(), request.outcome() as outcome:
            outcome.response = self.client.chat(request.messages, **request.params)
        return outcome.chat_result()

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._wants_stream(kwargs):
            return await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs))
        request = self._request(messages, stop, kwargs)
        with translated_errors(), request.outcome() as outcome:
            outcome.response = await self.async_client.chat(request.messages, **request.params)
        return outcome.chat_result()

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs)
        converter = ChunkConverter()
        # The core judges a structured answer once the last chunk is in.
        with (
            translated_errors(),
            request.outcome() as outcome,
            self.client.stream(request.messages, **request.params) as stream,
        ):
            for chunk in stream:
                if (generation := converter.convert(chunk)) is not None:
                    if run_manager is not None:
                        run_manager.on_llm_new_token(generation.text, chunk=generation)
                    yield generation
            outcome.response = stream.final()
        last = outcome.closing_chunk()
        if run_manager is not None:
            run_manager.on_llm_new_token(last.text, chunk=last)
        yield last

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs)
        converter = ChunkConverter()
        # The core judges a structured answer once the last chunk is in.
        with translated_errors(), request.outcome() as outcome:
            async with self.async_client.stream(request.messages, **request.params) as stream:
                async for chunk in stream:
                    if (generation := converter.convert(chunk)) is not None:
                        if run_manager is not None:
                            await run_manager.on_llm_new_token(generation.text, chunk=generation)
                        yield generation
                outcome.response = await stream.final()
        last = outcome.closing_chunk()
        if run_manager is not None:
            await run_manager.on_llm_new_token(last.text, chunk=last)
        yield last

    # -- tools and structured output -------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: dict[str, Any] | str | bool | None = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
        response_format: dict[str, Any] | type | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (LangChain tools, functions, pydantic models or OpenAI dicts).

        Args:
            tools: The tools the model may call.
            tool_choice: ``"auto"``, ``"none"``, ``"any"``/``"required"``/``True`` (some
                tool), a tool's name, or an OpenAI ``tool_choice`` dict.
            parallel_tool_calls: ``False`` asks for at most one call per turn.
            strict: Ask the server to follow each tool's JSON schema exactly.
            response_format: A schema the final (non-tool) answer must follow, as
                ``create_agent`` passes it.
            kwargs: Other request parameters to bind.
        """
        formatted = format_tools(tools, strict=strict)
        choice = normalize_tool_choice(tool_choice, formatted)
        if choice is not None:
            kwargs["tool_choice"] = choice
        if parallel_tool_calls is not None:
            kwargs["parallel_tool_calls"] = parallel_tool_calls
        if response_format is not None:
            kwargs["response_format"] = response_format_for(response_format, strict=strict)
        return super().bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type | None = None,
        *,
        method: StructuredMethod | None = None,
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """A runnable whose output follows ``schema``.

        Args:
            schema: A pydantic class (output is an instance), a ``TypedDict``, a JSON
                schema or an OpenAI tool dict (output is a dict). Optional only for
                ``json_mode``.
            method: ``"json_schema"`` (the server constrains the answer to the schema),
                ``"function_calling"`` (a forced tool call) or ``"json_mode"`` (any JSON
                object; say the shape in the prompt). Defaults to what the server profile
                says works best.
            include_raw: Return ``{"raw": AIMessage, "parsed": ..., "parsing_error": ...}``
                instead of raising when the answer does not parse.
            strict: Ask the server to follow the schema exactly (``json_schema`` and
                ``function_calling``).
            kwargs: Other request parameters to bind.
        """
        if method not in (None, "json_schema", "function_calling", "json_mode"):
            raise ValueError(
                f"method must be 'json_schema', 'function_calling' or 'json_mode', not {method!r}"
            )
        if schema is None:
            if method != "json_mode":
                raise ValueError("schema is required unless method='json_mode'")
            json_only = self.bind(
                response_format={"type": "json_object"}, structured_method="json_object", **kwargs
            )
            return with_parser(json_only, parser_for({}, "json_mode"), include_raw=include_raw)
        # What LangChain's tracing records as the requested output format.
        kwargs["ls_structured_output_format"] = {
            "kwargs": {"method": method or default_method(self._server), "strict": strict},
            "schema": schema,
        }
        if method == "function_calling":
            llm = self.bind_tools(
                [schema], tool_choice=schema_name(schema), strict=strict, **kwargs
            )
            return with_parser(llm, parser_for(schema, method), include_raw=include_raw)
        # The core builds the request for the method ("auto": the profile's best one),
        # moves to another method when the server refuses it, and hands back the value.
        llm = self.bind(
            response_format=response_format_for(schema, strict=strict),
            structured_method=_CORE_METHOD[method] if method else "auto",
            **kwargs,
        )
        return with_parser(
            llm, parser_for(schema, method or "json_schema"), include_raw=include_raw
        )
