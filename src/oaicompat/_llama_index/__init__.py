"""Helpers of ``oaicompat.llama_index``: conversions between LlamaIndex types and
oaicompat's normalized types, and the per-instance holder of core clients.

Kept apart so the adapter class stays thin; nothing here does I/O. Importing
these modules imports LlamaIndex.
"""
