"""Server-sent events, decoded from raw bytes.

Follows the WHATWG event-stream rules that matter for chat servers: lines end
in ``\\r\\n``, ``\\n`` or a lone ``\\r``; lines starting with ``:`` are comments
(keep-alives); ``data:`` lines of one event are joined with ``\\n``; a blank
line ends an event; a stream may stop without a final blank line.

Decoding works on bytes and splits with ``bytes.split`` rather than decoding
to text line by line, because this loop runs once per streamed token.
"""

from __future__ import annotations

from oaicompat.errors import StreamError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEDecoder", "SSEEvent"]

DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024

SSEEvent = tuple[bytes | None, bytes]
"""``(event name or None, data)`` for one dispatched event."""

_CR = b"\r"
_LF = b"\n"
_COLON = 58  # ord(":")


class SSEDecoder:
    """Feed bytes as they arrive, get whole events back."""

    __slots__ = ("_data", "_data_size", "_event", "_skip_lf", "_tail", "max_event_bytes")

    def __init__(self, *, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self._tail = b""
        self._data: list[bytes] = []
        self._data_size = 0
        self._event: bytes | None = None
        self._skip_lf = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode ``chunk`` (any split of the stream) and return the events it completed."""
        if not chunk:
            # An empty read must not clear the pending-CR state below.
            return []
        if (
            # Most servers send exactly one `data: ...` event per read: skip the
            # general line machinery for it (this runs once per streamed token).
            chunk[-2:] == b"\n\n"
            and chunk[:6] == b"data: "
            and not self._tail
            and not self._data
            and self._event is None
            and not self._skip_lf
            and chunk.find(_LF) == len(chunk) - 2
            and _CR not in chunk
            and len(chunk) <= self.max_event_bytes
        ):
            return [(None, chunk[6:-2])]
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == _LF:
                chunk = chunk[1:]
        if self._tail:
            chunk = self._tail + chunk
        if _CR in chunk:
            if chunk[-1:] == _CR:
                # A final CR ends a line on its own; if the next read starts with LF,
                # that LF is the second half of a CRLF and must not end another line.
                self._skip_lf = True
                chunk = chunk[:-1].replace(b"\r\n", _LF).replace(_CR, _LF) + _LF
            else:
                chunk = chunk.replace(b"\r\n", _LF).replace(_CR, _LF)
        lines = chunk.split(_LF)
        tail = lines.pop()
        if len(tail) > self.max_event_bytes:
            self._tail = b""
            raise StreamError(f"an SSE line exceeded the {self.max_event_bytes}-byte limit")
        self._tail = tail
        return self._consume(lines)

    def close(self) -> list[SSEEvent]:
        """End of stream: dispatch what is pending (servers may skip the last blank line)."""
        lines = [self._tail, b""] if self._tail else [b""]
        self._tail = b""
        self._skip_lf = False
        return self._consume(lines)

    def _consume(self, lines: list[bytes]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    data.clear()
                    self._data_size = 0
                self._event = None
                continue
            if len(line) > self.max_event_bytes:
                # Checked on whole lines too, not only on a line still arriving, so
                # whether a stream breaks the limit does not depend on how it was read.
                data.clear()
                self._data_size = 0
                raise StreamError(f"an SSE line exceeded the {self.max_event_bytes}-byte limit")
            if line[0] == _COLON:
                continue
            name, sep, value = line.partition(b":")
            if sep and value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                self._data_size += len(value) + 1
                if self._data_size > self.max_event_bytes:
                    data.clear()
                    self._data_size = 0
                    raise StreamError(
                        f"an SSE event exceeded the {self.max_event_bytes}-byte limit"
                    )
                data.append(value)
            elif name == b"event":
                self._event = value
            # `id:` and `retry:` are reconnection hints; chat streams are never resumed.
        return events
