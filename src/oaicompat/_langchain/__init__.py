"""Helpers behind ``oaicompat.langchain``: pure conversions between LangChain's types and ours.

Importing anything here imports langchain-core; ``import oaicompat`` never does.
"""
