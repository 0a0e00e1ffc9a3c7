"""The generated model file: deterministic, small, and carrying what the servers need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import pytest
from tiny_model import CONTEXT_LENGTH, write_tiny_llama

pytestmark = pytest.mark.live


def field_value(reader: gguf.GGUFReader, key: str) -> Any:
    return reader.fields[key].contents()


def test_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    first = write_tiny_llama(tmp_path / "a.gguf", seed=7).read_bytes()
    second = write_tiny_llama(tmp_path / "b.gguf", seed=7).read_bytes()
    other = write_tiny_llama(tmp_path / "c.gguf", seed=8).read_bytes()

    assert first == second
    assert first != other
    assert 100_000 < len(first) < 1_000_000


def test_metadata_is_what_llama_cpp_needs(tmp_path: Path) -> None:
    reader = gguf.GGUFReader(write_tiny_llama(tmp_path / "m.gguf"))

    assert field_value(reader, "general.architecture") == "llama"
    assert field_value(reader, "llama.context_length") == CONTEXT_LENGTH
    assert field_value(reader, "tokenizer.ggml.model") == "llama"
    assert field_value(reader, "tokenizer.ggml.add_space_prefix") is False
    template = field_value(reader, "tokenizer.chat_template")
    assert "<|im_start|>" in template
    assert "tools" in template

    tokens = field_value(reader, "tokenizer.ggml.tokens")
    types = field_value(reader, "tokenizer.ggml.token_type")
    assert len(tokens) == len(types) == field_value(reader, "llama.vocab_size")
    byte_tokens = [t for t, kind in zip(tokens, types, strict=True) if kind == gguf.TokenType.BYTE]
    assert byte_tokens == [f"<0x{b:02X}>" for b in range(256)]
    for special in ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"):
        assert special in tokens
    eos = field_value(reader, "tokenizer.ggml.eos_token_id")
    assert tokens[eos] == "</s>"


def test_every_prefix_of_a_word_is_a_token(tmp_path: Path) -> None:
    # SentencePiece merges only pieces whose concatenation is in the vocabulary.
    reader = gguf.GGUFReader(write_tiny_llama(tmp_path / "m.gguf"))
    tokens = set(field_value(reader, "tokenizer.ggml.tokens"))

    for word in ("\u2581hello", "\u2581weather", "\u2581arguments"):
        for end in range(1, len(word) + 1):
            assert word[:end] in tokens
