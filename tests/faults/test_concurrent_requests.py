"""Many requests at once on one client: every answer complete, none mixed with another.

Each request carries a unique prompt that the scripted server echoes back word
by word, so a chunk delivered to the wrong stream, a lost chunk or a doubled
one shows up as a text mismatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from faults_harness import (
    ScriptedServer,
    Way,
    assert_pool_released,
    expected_echo,
    streamed_text,
    unique_prompt,
)

from oaicompat import AsyncClient, Client

CONCURRENT_STREAMS = 1000
THREADS = 8
REQUESTS_PER_THREAD = 24


async def test_a_thousand_concurrent_streams_on_one_async_client(server: ScriptedServer) -> None:
    way = Way(is_async=True)
    client: AsyncClient = way.client(server.base_url)
    in_flight = 0
    most_in_flight = 0
    overlap = CONCURRENT_STREAMS // 10
    enough_open = asyncio.Event()

    async def one(index: int) -> tuple[str, str, str]:
        nonlocal in_flight, most_in_flight
        prompt = unique_prompt(index, words=12)
        async with client.stream(prompt) as stream:
            in_flight += 1
            most_in_flight = max(most_in_flight, in_flight)
            if most_in_flight >= overlap:
                enough_open.set()
            # Hold the first streams open until many are, so the overlap shown below
            # does not depend on how fast the server and client happen to be.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(enough_open.wait(), timeout=10)
            chunks = [chunk async for chunk in stream]
            final = await stream.final()
            in_flight -= 1
        return prompt, streamed_text(chunks), final.content

    try:
        results = await asyncio.gather(*(one(index) for index in range(CONCURRENT_STREAMS)))
        mismatched = [
            index
            for index, (prompt, streamed, final) in enumerate(results)
            if not (streamed == final == expected_echo(prompt))
        ]
        assert mismatched == []
        # They really overlapped, rather than running one after another.
        assert most_in_flight >= overlap
        received = sorted(request.json["messages"][-1]["content"] for request in server.requests)
        assert received == sorted(prompt for prompt, _, _ in results)
        assert_pool_released(client)
    finally:
        await way.close()


def test_threads_share_one_sync_client(server: ScriptedServer) -> None:
    client = Client(server.base_url, "scripted-model")
    start = threading.Barrier(THREADS)

    def work(thread: int) -> list[tuple[str, str]]:
        start.wait()
        answers = []
        for n in range(REQUESTS_PER_THREAD):
            prompt = unique_prompt(thread * 1000 + n, words=8)
            if n % 2:
                answers.append((prompt, client.chat(prompt).content))
            else:
                with client.stream(prompt) as stream:
                    streamed = streamed_text(list(stream))
                assert stream.final().content == streamed
                answers.append((prompt, streamed))
        return answers

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            results = [answer for answers in pool.map(work, range(THREADS)) for answer in answers]
        assert len(results) == THREADS * REQUESTS_PER_THREAD
        assert [prompt for prompt, text in results if text != expected_echo(prompt)] == []
        assert len(server.chat_requests) == THREADS * REQUESTS_PER_THREAD
        assert_pool_released(client)
    finally:
        client.close()
