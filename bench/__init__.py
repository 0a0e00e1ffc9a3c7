"""Benchmarks of oaicompat against the openai SDK, ChatOpenAI and OpenAILike.

Run ``python -m bench.run`` (full) or ``python -m bench.run --small`` (smoke).
See ``bench/README.md``.
"""
