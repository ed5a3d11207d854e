"""The `sandbox-kernel` command: run the embedded server, install the kernelspecs."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import secrets
import sys
from pathlib import Path

from platformdirs import user_data_dir

from . import __version__


def count(text: str) -> int:
    """An argparse type for sizes and limits: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


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
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s); anything but loopback exposes the "
        "server to the network and prints a warning",
    )
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
        help="how sandboxes are isolated from this machine: bwrap (bubblewrap), none, or "
        "auto, which uses bwrap when it works here (default: %(default)s)",
    )
    serve.add_argument(
        "--network",
        action="store_true",
        help="let isolated sandboxes reach the network (default: cut off)",
    )
    serve.add_argument(
        "--memory-mb",
        type=count,
        default=0,
        help="address-space limit of each sandbox process, in MiB; 0 = none (default: %(default)s)",
    )
    serve.add_argument(
        "--max-processes",
        type=count,
        default=1024,
        help="processes and threads a sandbox may have at once; 0 = no limit "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--max-upload-mb", type=count, default=100, help="upload size limit (default: %(default)s)"
    )
    serve.add_argument(
        "--no-extensions",
        action="store_true",
        help="offer only the plain cloud protocol (no streaming, interrupt, stdin, completion)",
    )
    serve.add_argument(
        "--spares",
        type=count,
        default=1,
        help="sandboxes kept ready with a Python context started, so a kernel starts without "
        "waiting for one; 0 = none (default: %(default)s)",
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a web origin (scheme://host[:port]) whose pages may open the execution socket, "
        "besides loopback pages (repeatable)",
    )
    serve.add_argument("--state-file", type=Path, help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default="INFO", help="logging level (default: %(default)s)")

    install = commands.add_parser(
        "install",
        help="install the Jupyter kernelspecs",
        description="Install the 'Python 3 (Sandbox)' and 'JavaScript (Sandbox)' kernelspecs "
        "for this Python (one with --language, or with --name or --display-name, which name "
        "one kernelspec: python unless --language says otherwise). Use --env to bake settings "
        "into them, e.g. --env SANDBOX_KERNEL_ENDPOINT=https://...",
    )
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="install for the current user")
    where.add_argument(
        "--sys-prefix",
        action="store_true",
        help=f"install into this Python's prefix ({sys.prefix})",
    )
    where.add_argument("--prefix", help="install under PREFIX/share/jupyter/kernels")
    install.add_argument(
        "--language",
        choices=["python", "javascript"],
        help="install only this language's kernelspec (default: both)",
    )
    install.add_argument(
        "--name", help="kernel name (default: sandbox, or sandbox-javascript for javascript)"
    )
    install.add_argument("--display-name", help="name shown in Jupyter's launcher")
    install.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment variable for the kernel (repeatable)",
    )

    demo = commands.add_parser(
        "demo",
        help="run the quickstart notebook on the sandbox kernel",
        description="Execute a notebook on the sandbox kernel (default: the embedded server) "
        "and print its outputs.",
    )
    demo.add_argument(
        "notebook",
        nargs="?",
        type=Path,
        default=Path("notebooks/quickstart.ipynb"),
        help="notebook to run (default: %(default)s)",
    )
    demo.add_argument(
        "--output-dir",
        type=Path,
        default=Path("build/demo"),
        help="where to write the executed notebook (default: %(default)s)",
    )
    demo.add_argument("--kernel", default="sandbox", help="kernel name (default: %(default)s)")
    return parser


def run_install(parser: argparse.ArgumentParser, options: argparse.Namespace) -> int:
    from .kernelspec import install

    env = {}
    for item in options.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--env expects KEY=VALUE, got {item!r}")
        env[key] = value
    prefix = sys.prefix if options.sys_prefix else options.prefix
    if options.language:
        languages = [options.language]
    elif options.name or options.display_name:
        languages = ["python"]
    else:
        languages = ["python", "javascript"]
    for language in languages:
        try:
            path = install(
                language=language,
                user=options.user or prefix is None,
                prefix=prefix,
                name=options.name,
                display_name=options.display_name,
                env=env,
            )
        except (OSError, ValueError) as error:
            print(f"sandbox-kernel install: {error}", file=sys.stderr)
            return 1
        print(f"Installed kernelspec {Path(path).name} in {path}")
    return 0


def run_serve(options: argparse.Namespace) -> int:
    from .server import EXTENSIONS, ServerSettings
    from .server.isolation import IsolationUnavailable, configure, release
    from .server.runner import serve

    logging.basicConfig(
        level=options.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not is_loopback(options.host):
        print(
            f"sandbox-kernel serve: WARNING: listening on {options.host}, not loopback: anyone "
            "who can reach it and has the token can run code here",
            file=sys.stderr,
        )
    try:
        confinement = configure(
            options.isolation,
            network=options.network,
            memory_mb=options.memory_mb or None,
            max_processes=options.max_processes or None,
        )
    except IsolationUnavailable as error:
        print(f"sandbox-kernel serve: {error}", file=sys.stderr)
        return 2
    root = (options.root or default_root()).expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
        # Work from the root: a server whose working directory vanished cannot start kernels.
        os.chdir(root)
    except OSError as error:
        print(f"sandbox-kernel serve: cannot use --root {root}: {error}", file=sys.stderr)
        return 1
    settings = ServerSettings(
        root=root,
        token=options.token or secrets.token_urlsafe(24),
        max_upload_bytes=options.max_upload_mb * 1024 * 1024,
        extensions=[] if options.no_extensions else list(EXTENSIONS),
        confinement=confinement,
        spare_sandboxes=options.spares,
        allowed_origins=options.allow_origin,
    )
    try:
        asyncio.run(serve(settings, options.host, options.port, options.state_file))
    except OSError as error:
        print(f"sandbox-kernel serve: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        release(confinement)
    return 0


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (names other than localhost are not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.command == "serve":
        return run_serve(options)
    if options.command == "install":
        return run_install(parser, options)
    if options.command == "demo":
        from .demo import run

        return run(options.notebook, options.output_dir, options.kernel)
    return 2


if __name__ == "__main__":
    sys.exit(main())
