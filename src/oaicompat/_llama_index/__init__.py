"""Pure conversions between LlamaIndex types and oaicompat's normalized types.

Kept apart from ``oaicompat.llama_index`` so the class there stays a thin
adapter; nothing in this package does I/O. Importing it imports LlamaIndex.
"""
