"""The ``oaicompat`` command (also ``python -m oaicompat``).

::

    oaicompat chat "Why is the sky blue?"     # stream one answer, then usage and timing
    oaicompat chat                            # a multi-turn conversation (/exit to quit)
    oaicompat models                          # what the server serves
    oaicompat doctor                          # local servers: kind, version, models, features
    oaicompat demo                            # core client, LangChain and LlamaIndex in turn

The server comes from ``--base-url`` / ``OAICOMPAT_BASE_URL``, or a
``--profile`` / ``OAICOMPAT_PROFILE`` with a default URL; otherwise the
command looks for a server on the default local ports, and when none answers
it starts the built-in scripted server and says so. ``--model`` /
``OAICOMPAT_MODEL`` picks the model (default: the first the server lists),
``--api-key`` / ``OAICOMPAT_API_KEY`` the key, which is never printed.

Errors print one line with the server's message and exit 1; ``--debug`` adds
the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from oaicompat import __version__
from oaicompat._cli.chat import ChatOptions, run_chat
from oaicompat._cli.console import Console, describe_error
from oaicompat._cli.demo import run_demo
from oaicompat._cli.servers import run_doctor, run_models
from oaicompat._cli.target import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    ENV_PROFILE,
    ServerOptions,
    connect,
)
from oaicompat.errors import OAICompatError

__all__ = ["build_parser", "main"]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _server_options() -> argparse.ArgumentParser:
    """Options every command takes; shared as an argparse parent."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("server")
    group.add_argument(
        "--base-url",
        metavar="URL",
        help=f"server URL, e.g. http://localhost:11434/v1 "
        f"(env {ENV_BASE_URL}); default: a local server, else the built-in one",
    )
    group.add_argument("--model", metavar="NAME", help=f"model name (env {ENV_MODEL})")
    group.add_argument(
        "--profile",
        metavar="NAME",
        help=f"server preset: ollama, vllm, llamacpp, lmstudio, openai... (env {ENV_PROFILE})",
    )
    group.add_argument(
        "--api-key", metavar="KEY", help=f"API key (env {ENV_API_KEY}); never printed"
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="longest wait for the server to answer, and between streamed chunks (default 300)",
    )
    group.add_argument(
        "--scripted",
        action="store_true",
        help="use the built-in scripted server even when a local server is running",
    )
    parent.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and the client's log",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oaicompat",
        description="Talk to any OpenAI-compatible chat server (Ollama, vLLM, llama.cpp, "
        "LM Studio, OpenAI, OpenRouter...).",
    )
    parser.add_argument("--version", action="version", version=f"oaicompat {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and the client's log")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = [_server_options()]

    chat = commands.add_parser(
        "chat",
        parents=common,
        help="chat with a model (interactive without a prompt)",
        description="Stream an answer to the terminal, then usage and timing. Without a "
        "prompt, start a conversation (/exit or Ctrl-D to quit, /reset to start over).",
    )
    chat.add_argument("prompt", nargs="?", help='what to ask; "-" reads it from stdin')
    chat.add_argument("--system", metavar="TEXT", help="a system message")
    chat.add_argument(
        "--json-schema",
        metavar="FILE",
        help="answer with JSON valid for the schema in FILE (printed once validated)",
    )
    chat.add_argument("--no-stream", action="store_true", help="wait for the whole answer")
    chat.add_argument("--temperature", type=float, metavar="T")
    chat.add_argument("--max-tokens", type=int, metavar="N")

    commands.add_parser("models", parents=common, help="list the models the server serves")
    commands.add_parser(
        "doctor",
        parents=common,
        help="show local servers: kind, version, models, context window, features",
    )
    commands.add_parser(
        "demo",
        parents=common,
        help="run the core client, a LangChain chain and a LlamaIndex query engine",
    )
    return parser


def _run(args: argparse.Namespace, console: Console) -> int:
    options = ServerOptions.from_args(args)
    if args.command == "doctor":
        return run_doctor(options, console)
    if args.command == "chat":
        chat_options = ChatOptions.from_args(args)  # a bad schema file fails before connecting
        with connect(options, console, need_model=True) as target:
            return run_chat(target, args.prompt, args.system, chat_options, console)
    if args.command == "models":
        with connect(options, console, need_model=False) as target:
            return run_models(target, console)
    # The demo is a show to read top to bottom: notes and usage go in line with the text.
    console = Console(out=console.out, err=console.out)
    with connect(options, console, need_model=True) as target:
        return run_demo(target, console)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    console = Console()
    if debug:
        # Our own log only: httpcore's debug trace is noise to someone debugging a server.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("oaicompat").setLevel(logging.DEBUG)
    try:
        return _run(args, console)
    except KeyboardInterrupt:
        console.aside("\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`oaicompat demo | head`): stop quietly, and keep Python
        # from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except (OAICompatError, ValueError, OSError) as error:
        if debug:
            traceback.print_exc(file=console.err)
        console.error(describe_error(error))
        return EXIT_ERROR
    except Exception as error:
        if debug:
            raise
        console.error(f"unexpected {describe_error(error)} (run with --debug for the traceback)")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
