"""Write a tiny random-weight llama model in GGUF, so that real llama.cpp servers can run.

No model weights can be downloaded in CI, and the live tests check protocol facts
(types, token counts, finish reasons, grammar-constrained JSON, forced tool calls), not
the quality of the text. The model is deterministic for a given seed and a few hundred KB.

Choices that matter to the servers:

- The vocabulary is SentencePiece-style (``tokenizer.ggml.model = "llama"``): control
  tokens, the 256 byte-fallback tokens so any text tokenizes, printable characters, and
  words reachable through merges of their prefixes.
- ``add_space_prefix`` is false: with it, llama.cpp's grammar-constrained sampling
  tokenizes its prefill differently and fails to start.
- Output rows of control and byte tokens are zero while the others are large, so sampling
  practically never ends a reply early nor emits broken UTF-8: replies run until
  ``max_tokens``, a stop sequence or the grammar ends them.
- The chat template is ChatML with Hermes-style ``<tool_call>`` blocks, which llama-server
  run with ``--jinja`` recognises as a tool-calling format.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np

N_EMBD = 64
N_LAYERS = 2
N_HEADS = 4
N_FF = 128
CONTEXT_LENGTH = 2048

SPACE = "\u2581"  # SentencePiece's visible space
CONTROL_TOKENS = ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>")
UNK_ID, BOS_ID, EOS_ID, IM_START_ID, IM_END_ID = range(len(CONTROL_TOKENS))

WORDS = (
    "the",
    "a",
    "is",
    "of",
    "and",
    "to",
    "in",
    "hello",
    "world",
    "name",
    "value",
    "city",
    "weather",
    "answer",
    "true",
    "false",
    "null",
    "user",
    "assistant",
    "system",
    "tool",
    "call",
    "function",
    "arguments",
)

CHAT_TEMPLATE = """\
{%- if tools %}<|im_start|>system
{% if messages and messages[0].role == 'system' %}{{ messages[0].content }}

{% endif %}You may call one or more functions. Their signatures:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>
To call one, answer <tool_call>{"name": NAME, "arguments": ARGS}</tool_call><|im_end|>
{% elif messages and messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'system' and loop.first %}
{%- elif message.role == 'assistant' and message.tool_calls %}<|im_start|>assistant
{% if message.content %}{{ message.content }}
{% endif %}
{%- for call in message.tool_calls %}<tool_call>
{"name": "{{ call.function.name }}", "arguments": \
{% if call.function.arguments is string %}{{ call.function.arguments }}\
{% else %}{{ call.function.arguments | tojson }}{% endif %}}
</tool_call>
{% endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% else %}<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


def build_vocab() -> tuple[list[str], list[float], list[int]]:
    """Return tokens, scores and token types, in id order."""
    tokens: list[str] = []
    scores: list[float] = []
    types: list[int] = []

    def add(text: str, score: float, token_type: gguf.TokenType) -> None:
        tokens.append(text)
        scores.append(score)
        types.append(int(token_type))

    add(CONTROL_TOKENS[UNK_ID], 0.0, gguf.TokenType.UNKNOWN)
    for text in CONTROL_TOKENS[1:]:
        add(text, 0.0, gguf.TokenType.CONTROL)
    for byte in range(256):
        add(f"<0x{byte:02X}>", 0.0, gguf.TokenType.BYTE)
    singles = [SPACE, *(chr(c) for c in range(0x21, 0x7F))]
    for char in singles:
        add(char, -1.0, gguf.TokenType.NORMAL)
    # The SentencePiece tokenizer only merges adjacent pieces whose concatenation is in
    # the vocabulary, so every prefix of a word must be a token for the word to be one.
    seen = set(tokens)
    for word in WORDS:
        spelled = SPACE + word
        for end in range(2, len(spelled) + 1):
            piece = spelled[:end]
            if piece not in seen:
                seen.add(piece)
                add(piece, float(end), gguf.TokenType.NORMAL)
    return tokens, scores, types


def write_tiny_llama(path: Path, *, seed: int = 0) -> Path:
    """Write the model to ``path`` and return it. Same seed, same bytes."""
    rng = np.random.default_rng(seed)
    tokens, scores, types = build_vocab()
    n_vocab = len(tokens)

    def matrix(rows: int, cols: int, scale: float) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float16)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("oaicompat tiny random llama")
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYERS)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(N_EMBD // N_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(UNK_ID)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_eot_token_id(IM_END_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", matrix(n_vocab, N_EMBD, 1.0))
    for layer in range(N_LAYERS):
        prefix = f"blk.{layer}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", ones(N_EMBD))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{prefix}.{name}.weight", matrix(N_EMBD, N_EMBD, 0.1))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", ones(N_EMBD))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", matrix(N_FF, N_EMBD, 0.1))
        writer.add_tensor(f"{prefix}.ffn_up.weight", matrix(N_FF, N_EMBD, 0.1))
        writer.add_tensor(f"{prefix}.ffn_down.weight", matrix(N_EMBD, N_FF, 0.1))
    writer.add_tensor("output_norm.weight", ones(N_EMBD))
    output = matrix(n_vocab, N_EMBD, 1.0)
    silent = [i for i, t in enumerate(types) if t != int(gguf.TokenType.NORMAL)]
    output[silent] = 0
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-llama.gguf")
    print(write_tiny_llama(target))
