"""A scripted OpenAI-compatible server on loopback, for tests and demos.

``ScriptedServer`` is a real HTTP server (random free port, background
thread, standard library only) that answers ``/v1/chat/completions`` (and the
legacy ``/v1/completions``) from a queue of scripted replies and, when the
queue is empty, from a default policy that behaves like a capable model. It
records every request it receives.

::

    from oaicompat.testing import Reply, ScriptedServer, ScriptedToolCall, rate_limited

    with ScriptedServer() as server:
        server.enqueue(rate_limited(retry_after=0.1))
        server.enqueue(Reply(text="", tool_calls=[ScriptedToolCall("add", {"a": 1, "b": 2})]))
        ...  # point any OpenAI-compatible client at server.base_url

In pytest, the ``scripted_server`` fixture from
``oaicompat.testing.pytest_plugin`` yields a started server.
"""

from oaicompat.testing.policy import DefaultPolicy
from oaicompat.testing.replies import (
    Disconnect,
    RawReply,
    Reply,
    ReplyFactory,
    ReplyLike,
    ScriptedToolCall,
    UsageStyle,
    context_length_exceeded,
    error_in_200,
    html_error,
    invalid_api_key,
    model_not_found,
    rate_limited,
    server_error,
    service_unavailable,
    validation_error,
)
from oaicompat.testing.server import CHAT_PATH, COMPLETIONS_PATH, RecordedRequest, ScriptedServer
from oaicompat.testing.tokens import count_tokens

__all__ = [
    "CHAT_PATH",
    "COMPLETIONS_PATH",
    "DefaultPolicy",
    "Disconnect",
    "RawReply",
    "RecordedRequest",
    "Reply",
    "ReplyFactory",
    "ReplyLike",
    "ScriptedServer",
    "ScriptedToolCall",
    "UsageStyle",
    "context_length_exceeded",
    "count_tokens",
    "error_in_200",
    "html_error",
    "invalid_api_key",
    "model_not_found",
    "rate_limited",
    "server_error",
    "service_unavailable",
    "validation_error",
]
