"""The `sandbox-kernel` command: run the embedded server, install the kernelspec."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from pathlib import Path

from platformdirs import user_data_dir

from . import __version__


def default_root() -> Path:
    return Path(user_data_dir("sandbox-kernel")) / "sandboxes"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandbox-kernel",
        description="A Jupyter kernel whose cells run inside a code-interpreter sandbox.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the embedded sandbox server",
        description="Run the embedded sandbox server. When ready it prints one JSON line "
        '{"url": ..., "token": ...} on stdout, then logs to stderr.',
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    serve.add_argument("--token", help="token clients must send (default: a new random one)")
    serve.add_argument(
        "--root",
        type=Path,
        default=None,
        help=f"directory holding the sandboxes (default: {default_root()})",
    )
    serve.add_argument(
        "--isolation",
        choices=["auto", "bwrap", "none"],
        default="auto",
        help="how sandboxes are isolated from this machine (default: %(default)s)",
    )
    serve.add_argument(
        "--max-upload-mb", type=int, default=100, help="upload size limit (default: %(default)s)"
    )
    serve.add_argument("--state-file", type=Path, help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default="INFO", help="logging level (default: %(default)s)")
    return parser


def run_serve(options: argparse.Namespace) -> int:
    from .server import ServerSettings
    from .server.runner import serve

    if options.isolation == "bwrap":
        message = "sandbox-kernel serve: --isolation bwrap is not supported yet; use none"
        print(message, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=options.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = ServerSettings(
        root=(options.root or default_root()).expanduser(),
        token=options.token or secrets.token_urlsafe(24),
        isolation="none",
        max_upload_bytes=options.max_upload_mb * 1024 * 1024,
    )
    try:
        asyncio.run(serve(settings, options.host, options.port, options.state_file))
    except OSError as error:
        print(f"sandbox-kernel serve: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    if options.command == "serve":
        return run_serve(options)
    return 2


if __name__ == "__main__":
    sys.exit(main())
