"""LlamaIndex adapter: ``OpenAICompatible``, a function-calling LLM over `oaicompat.Client`.

Example::

    from llama_index.core import Settings
    from oaicompat.llama_index import OpenAICompatible

    Settings.llm = OpenAICompatible(model="llama3.1", base_url="http://localhost:11434")

Compared with ``OpenAILike`` it is chat-first and tool-calling by default,
accepts any model name, asks the server for the context window, reports usage
when streaming, keeps reasoning as ``ThinkingBlock``s, retries once (in the
core, never twice), and keeps the API key out of every dump and event.

The adapter converts types and delegates; the HTTP, retries, stream parsing
and structured-output logic all live in the core client. Importing this module
imports LlamaIndex; ``import oaicompat`` does not.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.bridge.pydantic import Field, PrivateAttr, field_serializer
from llama_index.core.callbacks import CallbackManager
from llama_index.core.constants import DEFAULT_CONTEXT_WINDOW
from llama_index.core.instrumentation.events.llm import (
    LLMStructuredPredictEndEvent,
    LLMStructuredPredictStartEvent,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection
from llama_index.core.types import PydanticProgramMode
from llama_index_instrumentation import get_dispatcher

from oaicompat._llama_index import completions
from oaicompat._llama_index.connections import Connections, current
from oaicompat._llama_index.folding import afold_stream, fold_stream
from oaicompat._llama_index.messages import to_message_dicts
from oaicompat._llama_index.responses import StreamFolder, to_chat_response
from oaicompat._llama_index.structured import PartialStructured, parsed_value, structured_kwargs
from oaicompat._llama_index.tools import (
    build_history,
    keep_first_tool_call,
    resolve_tool_choice,
    tool_selections,
    tool_specs,
)
from oaicompat.errors import OAICompatError
from oaicompat.profiles import PRESETS, ServerProfile, get_profile
from oaicompat.types import Message

if TYPE_CHECKING:
    from llama_index.core.program.utils import FlexibleModel
    from llama_index.core.prompts import PromptTemplate
    from llama_index.core.tools.types import BaseTool
    from llama_index.core.types import Model

    from oaicompat.client import AsyncClient, Client

__all__ = ["DEFAULT_CONTEXT_WINDOW", "OpenAICompatible"]

logger = logging.getLogger(__name__)
dispatcher = get_dispatcher(__name__)

StructuredMethod = Literal["auto", "json_schema", "tool", "json_object"]

_F = TypeVar("_F", bound=Callable[..., Any])

_CLIENTS_LOCK = threading.Lock()
"""Guards building an instance's core clients on first use."""

_Core = TypeVar("_Core", "Client", "AsyncClient")


def _chat_callback(method: _F) -> _F:
    """LlamaIndex's chat callback decorator, typed (callback handlers and
    instrumentation events fire through it)."""
    return cast(_F, llm_chat_callback()(method))


def _completion_callback(method: _F) -> _F:
    return cast(_F, llm_completion_callback()(method))


class OpenAICompatible(FunctionCallingLLM):
    """Any OpenAI-compatible chat server as a LlamaIndex function-calling LLM.

    ``context_window=None`` asks the server (once) and falls back to
    `DEFAULT_CONTEXT_WINDOW` with a warning when it does not say. Request
    options left unset are not sent, so the server's own defaults apply.
    """

    model: str = Field(description="The model name, exactly as the server knows it.")
    base_url: str | None = Field(
        default=None,
        description="Server URL such as http://localhost:11434 (a bare host means /v1). "
        "None uses the profile's default URL.",
    )
    api_key: str | None = Field(
        default=None, exclude=True, repr=False, description="API key; never serialized."
    )
    temperature: float | None = Field(default=None, description="Sampling temperature.")
    max_tokens: int | None = Field(
        default=None, gt=0, description="Most tokens to generate; None lets the server decide."
    )
    timeout: float | None = Field(
        default=None, description="Request timeout in seconds; None uses the core's default."
    )
    max_retries: int = Field(
        default=2, ge=0, description="Retries of failed requests, done by the core client."
    )
    profile: str | ServerProfile | None = Field(
        default=None, description="Server preset name (e.g. 'ollama') or a ServerProfile."
    )
    context_window: int | None = Field(
        default=None, gt=0, description="Context window; None asks the server."
    )
    is_chat_model: bool = Field(default=True, description="Always True: engines send messages.")
    is_function_calling_model: bool | None = Field(
        default=None, description="Tool calling support; None takes it from the profile."
    )
    default_headers: dict[str, str] | None = Field(
        default=None, exclude=True, repr=False, description="Extra headers; never serialized."
    )
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra fields for every request body."
    )
    send_reasoning: bool = Field(
        default=False,
        description="Send earlier turns' reasoning back as reasoning_content "
        "(servers that require it, such as DeepSeek thinking with tools).",
    )
    structured_output_method: StructuredMethod = Field(
        default="auto", description="How the core asks for structured output."
    )
    http2: bool = Field(default=False, description="Use HTTP/2 (needs httpx[http2]).")
    chat_path: str | None = Field(
        default=None, description="Endpoint path for servers with unusual routes."
    )
    use_completions_endpoint: bool = Field(
        default=False, description="complete() and its variants use the legacy /completions."
    )

    _connections: Connections = PrivateAttr(default_factory=Connections)

    def __init__(
        self,
        *,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(callback_manager=callback_manager, **kwargs)
        if self.base_url is None and get_profile(self.profile).default_base_url is None:
            raise ValueError("base_url is required when the profile has no default URL")
        self._connections = Connections(http_client, async_http_client)

    @classmethod
    def class_name(cls) -> str:
        return "OpenAICompatible"

    @field_serializer("profile")
    def _serialize_profile(self, profile: str | ServerProfile | None) -> Any:
        if isinstance(profile, ServerProfile):
            if PRESETS.get(profile.name) == profile:
                return profile.name
            data = asdict(profile)
            data["unsupported_params"] = sorted(profile.unsupported_params)
            return data
        return profile

    # ----- the core clients, built on first use -----

    def _client_options(self) -> dict[str, Any]:
        profile = get_profile(self.profile)
        options: dict[str, Any] = {
            "api_key": self.api_key,
            "max_retries": self.max_retries,
            "profile": profile,
            "headers": self.default_headers,
            "http2": self.http2,
        }
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.chat_path is not None:
            options["chat_path"] = self.chat_path
        options["base_url"] = self.base_url or profile.default_base_url
        return options

    def _client_config(self, options: dict[str, Any]) -> tuple[Any, ...]:
        headers = tuple(sorted((options["headers"] or {}).items()))
        return (self.model, *(value for key, value in options.items() if key != "headers"), headers)

    def _own_connections(self) -> Connections:
        options = self._client_options()
        self._connections = current(self._connections, self, self._client_config(options))
        return self._connections

    def _new_client(
        self, client_type: type[_Core], http_client: httpx.Client | httpx.AsyncClient | None
    ) -> _Core:
        options = self._client_options()
        return client_type(options.pop("base_url"), self.model, http_client=http_client, **options)

    def _get_client(self) -> Client:
        # Under a lock: threads sharing one LLM would otherwise each build a client,
        # and all but the one kept would never be closed.
        with _CLIENTS_LOCK:
            connections = self._own_connections()
            if connections.sync_client is None:
                from oaicompat.client import Client

                connections.sync_client = self._new_client(Client, connections.http_client)
            return connections.sync_client

    def _get_aclient(self) -> AsyncClient:
        # The core renews its own pool when the event loop changes (repeated asyncio.run).
        with _CLIENTS_LOCK:
            connections = self._own_connections()
            if connections.async_client is None:
                from oaicompat.client import AsyncClient

                connections.async_client = self._new_client(
                    AsyncClient, connections.async_http_client
                )
            return connections.async_client

    def close(self) -> None:
        """Close the sync client's pool (not an injected http_client)."""
        connections = self._connections
        if connections.owner == id(self) and connections.sync_client is not None:
            connections.sync_client.close()
            connections.sync_client = None

    async def aclose(self) -> None:
        """Close both clients' pools (not injected http clients)."""
        self.close()
        connections = self._connections
        if connections.owner == id(self) and connections.async_client is not None:
            await connections.async_client.aclose()
            connections.async_client = None

    def _server_profile(self) -> ServerProfile:
        # A live client's profile may have learned, at run time, what the server refuses.
        client = self._connections.built_client(self)
        return client.profile if client is not None else get_profile(self.profile)

    # ----- metadata -----

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self._resolve_context_window(),
            num_output=self.max_tokens or -1,
            is_chat_model=True,
            is_function_calling_model=self._supports_tools(),
            model_name=self.model,
        )

    def _supports_tools(self) -> bool:
        if self.is_function_calling_model is not None:
            return self.is_function_calling_model
        return self._server_profile().supports_tools

    def _known_context_window(self) -> int | None:
        connections = self._connections
        discovered = (
            connections.context_window
            if connections.is_current(self, self._client_config(self._client_options()))
            else None
        )
        return self.context_window or self._server_profile().context_window or discovered

    def _resolve_context_window(self) -> int:
        known = self._known_context_window()
        if known is not None:
            return known
        discovered = self._discover_context_window()
        if discovered is None:
            logger.warning(
                "The server did not report a context window for %r; assuming %d tokens. "
                "Pass context_window=... to OpenAICompatible to set it.",
                self.model,
                DEFAULT_CONTEXT_WINDOW,
            )
            discovered = DEFAULT_CONTEXT_WINDOW
        self._own_connections().context_window = discovered
        return discovered

    def _discover_context_window(self) -> int | None:
        # Metadata is read everywhere in LlamaIndex; a server that cannot say must not break it.
        try:
            window = self._get_client().server_info().context_window
        except (OAICompatError, ValueError) as exc:
            logger.debug("context window discovery failed: %s", exc)
            return None
        return window if isinstance(window, int) and window > 0 else None

    def to_payload(self) -> dict[str, Any]:
        """What instrumentation events and callbacks see: no key, no headers, no
        credentials in the URL, and no network call to fill it in."""
        payload: dict[str, Any] = {
            "class_name": self.class_name(),
            "model_name": self.model,
            "base_url": _without_credentials(self._client_options()["base_url"]),
            "profile": self._server_profile().name,
            "is_chat_model": True,
            "is_function_calling_model": self._supports_tools(),
            "num_output": self.max_tokens or -1,
            "temperature": self.temperature,
        }
        context_window = self._known_context_window()
        if context_window is not None:
            payload["context_window"] = context_window
        return payload

    # ----- requests -----

    def _params(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **self.additional_kwargs,
            **kwargs,
        }
        return {key: value for key, value in params.items() if value is not None}

    def _request(
        self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
    ) -> tuple[list[Message], dict[str, Any]]:
        return to_message_dicts(messages, send_reasoning=self.send_reasoning), self._params(kwargs)

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        message_dicts, params = self._request(messages, kwargs)
        return to_chat_response(self._get_client().chat(message_dicts, **params))

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        message_dicts, params = self._request(messages, kwargs)
        return to_chat_response(await self._get_aclient().chat(message_dicts, **params))

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        message_dicts, params = self._request(messages, kwargs)
        return fold_stream(self._get_client().stream(message_dicts, **params), StreamFolder())

    async def _astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        message_dicts, params = self._request(messages, kwargs)
        return afold_stream(self._get_aclient().stream(message_dicts, **params), StreamFolder())

    # ----- the LLM interface -----

    @_chat_callback
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._chat(messages, **kwargs)

    @_chat_callback
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return self._stream_chat(messages, **kwargs)

    @_completion_callback
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        if self.use_completions_endpoint:
            return completions.complete(self, prompt, formatted, kwargs)
        return chat_to_completion_decorator(self._chat)(prompt, **kwargs)

    @_completion_callback
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        if self.use_completions_endpoint:
            return completions.stream_complete(self, prompt, formatted, kwargs)
        return stream_chat_to_completion_decorator(self._stream_chat)(prompt, **kwargs)

    @_chat_callback
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await self._achat(messages, **kwargs)

    @_chat_callback
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return await self._astream_chat(messages, **kwargs)

    @_completion_callback
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        if self.use_completions_endpoint:
            return await completions.acomplete(self, prompt, formatted, kwargs)
        return await achat_to_completion_decorator(self._achat)(prompt, **kwargs)

    @_completion_callback
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        if self.use_completions_endpoint:
            return completions.astream_complete(self, prompt, formatted, kwargs)
        return await astream_chat_to_completion_decorator(self._astream_chat)(prompt, **kwargs)

    # ----- tools -----

    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        prepared: dict[str, Any] = {"messages": build_history(user_msg, chat_history), **kwargs}
        specs = tool_specs(tools)
        if specs:
            prepared["tools"] = specs
            choice = resolve_tool_choice(tool_choice, tool_required)
            if choice is not None:
                prepared["tool_choice"] = choice
            if (
                "parallel_tool_calls" not in prepared
                and self._server_profile().supports_parallel_tool_calls
            ):
                prepared["parallel_tool_calls"] = allow_parallel_tool_calls
        return prepared

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        return response if allow_parallel_tool_calls else keep_first_tool_call(response)

    def get_tool_calls_from_response(
        self, response: ChatResponse, error_on_no_tool_call: bool = True, **kwargs: Any
    ) -> list[ToolSelection]:
        return tool_selections(response, error_on_no_tool_call=error_on_no_tool_call)

    # ----- structured output, through the core -----

    def _use_llama_index_program(self) -> bool:
        """Whether the user picked one of LlamaIndex's own structured-output
        programs (``pydantic_program_mode``) instead of the core's."""
        return self.pydantic_program_mode != PydanticProgramMode.DEFAULT

    def _structured_request(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None,
        prompt_args: dict[str, Any],
    ) -> tuple[list[ChatMessage], dict[str, Any]]:
        messages = self._extend_messages(prompt.format_messages(llm=self, **prompt_args))
        return messages, structured_kwargs(output_cls, self.structured_output_method, llm_kwargs)

    def _announce_prediction(
        self, output_cls: type[Model], prompt: PromptTemplate, prompt_args: dict[str, Any]
    ) -> None:
        dispatcher.event(
            LLMStructuredPredictStartEvent(
                output_cls=output_cls, template=prompt, template_args=prompt_args
            )
        )

    def _finish_prediction(self, response: ChatResponse, output_cls: type[Model]) -> Model:
        """The value of a structured prediction, announced to instrumentation."""
        result = parsed_value(response, output_cls)
        dispatcher.event(LLMStructuredPredictEndEvent(output=result))
        return result

    def structured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        if self._use_llama_index_program():
            fallback: Model = super().structured_predict(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
            return fallback
        self._announce_prediction(output_cls, prompt, prompt_args)
        messages, kwargs = self._structured_request(output_cls, prompt, llm_kwargs, prompt_args)
        return self._finish_prediction(self.chat(messages, **kwargs), output_cls)

    async def astructured_predict(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Model:
        if self._use_llama_index_program():
            afallback: Model = await super().astructured_predict(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
            return afallback
        self._announce_prediction(output_cls, prompt, prompt_args)
        messages, kwargs = self._structured_request(output_cls, prompt, llm_kwargs, prompt_args)
        return self._finish_prediction(await self.achat(messages, **kwargs), output_cls)

    def _structured_stream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> Generator[Model | list[Model] | FlexibleModel | list[FlexibleModel], None, None]:
        if self._use_llama_index_program():
            return super()._structured_stream_call(output_cls, prompt, llm_kwargs, **prompt_args)
        messages, kwargs = self._structured_request(output_cls, prompt, llm_kwargs, prompt_args)
        responses = self.stream_chat(messages, **kwargs)

        def partials() -> Generator[Model | FlexibleModel, None, None]:
            state = PartialStructured(output_cls)
            for response in responses:
                yield state.update(response)

        return partials()

    async def _structured_astream_call(
        self,
        output_cls: type[Model],
        prompt: PromptTemplate,
        llm_kwargs: dict[str, Any] | None = None,
        **prompt_args: Any,
    ) -> AsyncGenerator[Model | list[Model] | FlexibleModel | list[FlexibleModel], None]:
        if self._use_llama_index_program():
            return await super()._structured_astream_call(
                output_cls, prompt, llm_kwargs, **prompt_args
            )
        messages, kwargs = self._structured_request(output_cls, prompt, llm_kwargs, prompt_args)
        responses = await self.astream_chat(messages, **kwargs)

        async def partials() -> AsyncGenerator[Model | FlexibleModel, None]:
            state = PartialStructured(output_cls)
            async for response in responses:
                yield state.update(response)

        return partials()


def _without_credentials(url: str | None) -> str | None:
    """``url`` without user:password and query string, where keys sometimes hide."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
