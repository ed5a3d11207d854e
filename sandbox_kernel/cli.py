"""The `sandbox-kernel` command: run the embedded server, install the kernelspecs.

Over 400 lines as one job: most of it is the argparse declaration of each command's options.
"""

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

DEFAULT_MEMORY_MB = 2048
DEFAULT_MAX_SANDBOXES = 64
DEFAULT_MAX_CONTEXTS = 32
SANDBOX_HOST_ID = 2_000_000_000
"""The host uid and gid that sandbox uid 1000 maps onto when the server runs as root: far
above login users and the usual subordinate-id ranges, and owned by no one."""


def count(text: str) -> int:
    """An argparse type for sizes and limits: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def egress_rule(text: str) -> str:
    """An argparse type for --allow-egress: HOST, HOST:PORT, [IPV6] or [IPV6]:PORT."""
    from .server.egress import Rule

    try:
        return str(Rule.parse(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def default_root() -> Path:
    return Path(user_data_dir("sandbox-kernel")) / "sandboxes"


def default_templates() -> Path:
    return Path(user_data_dir("sandbox-kernel")) / "templates"


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
        default=os.environ.get("SANDBOX_KERNEL_ISOLATION", "auto"),
        help="how sandboxes are isolated from this machine: auto or bwrap (bubblewrap; the "
        "server refuses to start where it cannot work), or none, which runs cells on this "
        "machine as this user (default: %(default)s, or $SANDBOX_KERNEL_ISOLATION)",
    )
    serve.add_argument(
        "--network",
        nargs="?",
        const="user",
        default="none",
        choices=["none", "user", "host"],
        help="what sandboxes may reach: none (default); user, or --network alone: egress "
        "through user-mode networking (slirp4netns or pasta), with this host's loopback and "
        "this server out of reach; host: this host's own network, loopback included (unsafe)",
    )
    serve.add_argument(
        "--allow-egress",
        action="append",
        default=[],
        type=egress_rule,
        metavar="HOST[:PORT]",
        help="let sandboxes reach HOST (on PORT, or any port) through an HTTP proxy that the "
        "server runs, named by HTTP_PROXY and HTTPS_PROXY in the sandbox; repeatable; "
        "everything else is refused and logged",
    )
    serve.add_argument(
        "--memory-mb",
        type=count,
        default=DEFAULT_MEMORY_MB,
        help="memory limit of each sandbox, in MiB (its cgroup's; where none can be made, "
        "each process's address space); 0 = none (default: %(default)s)",
    )
    serve.add_argument(
        "--sandbox-uid",
        type=count,
        default=SANDBOX_HOST_ID,
        help="host uid and gid that sandbox code runs as when the server is root "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--max-sandboxes",
        type=count,
        default=DEFAULT_MAX_SANDBOXES,
        help="running sandboxes this server holds at once; 0 = no limit (default: %(default)s)",
    )
    serve.add_argument(
        "--max-contexts",
        type=count,
        default=DEFAULT_MAX_CONTEXTS,
        help="contexts one sandbox holds at once; 0 = no limit (default: %(default)s)",
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
        "--templates",
        type=Path,
        default=None,
        help=f"directory of the templates sandboxes may name (default: {default_templates()})",
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

    template = commands.add_parser(
        "template",
        help="manage templates: Python environments that sandboxes run on",
        description="A sandbox created with templateName=NAME (c.SandboxKernel.template) runs "
        "its interpreters on template NAME: its packages, read-only, over the server's own.",
    )
    template.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"templates directory, as the server's --templates (default: {default_templates()})",
    )
    template_commands = template.add_subparsers(dest="template_command", required=True)
    add = template_commands.add_parser("add", help="build a template")
    add.add_argument("name", metavar="NAME")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--requirements", type=Path, metavar="FILE", help="install FILE's requirements with pip"
    )
    source.add_argument(
        "--python",
        type=Path,
        metavar="PREFIX",
        help="use the existing environment at PREFIX (same Python version as the server)",
    )
    template_commands.add_parser("ls", help="list the templates")
    remove = template_commands.add_parser("rm", help="remove a template")
    remove.add_argument("name", metavar="NAME")

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


def run_template(options: argparse.Namespace) -> int:
    from .server.templates import TemplateError, TemplateStore

    store = TemplateStore((options.dir or default_templates()).expanduser())
    try:
        if options.template_command == "add":
            if options.requirements is not None:
                made = store.add_from_requirements(options.name, options.requirements)
            else:
                made = store.add_from_prefix(options.name, options.python)
            print(f"Template {made.name}: {made.site_packages}")
        elif options.template_command == "rm":
            store.remove(options.name)
            print(f"Removed template {options.name}")
        else:
            for found in store.list():
                print(f"{found.name}\t{found.prefix}\t{found.created_at}")
    except TemplateError as error:
        print(f"sandbox-kernel template: {error}", file=sys.stderr)
        return 1
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
    # What the server makes for sandboxes (mount points, /etc files) must be readable there.
    os.umask(0o022)
    if not is_loopback(options.host):
        print(
            f"sandbox-kernel serve: WARNING: listening on {options.host}, not loopback: anyone "
            "who can reach it and has the token can run code here",
            file=sys.stderr,
        )
    if options.isolation == "none" and (options.network != "none" or options.allow_egress):
        print(
            "sandbox-kernel serve: --network needs isolation (unisolated code already has "
            "this host's network)",
            file=sys.stderr,
        )
        return 2
    try:
        confinement = configure(
            options.isolation,
            network_mode=options.network,
            egress=tuple(options.allow_egress),
            memory_mb=options.memory_mb or None,
            max_processes=options.max_processes or None,
            host_id=options.sandbox_uid,
        )
    except IsolationUnavailable as error:
        print(f"sandbox-kernel serve: {error}", file=sys.stderr)
        return 2
    root = (options.root or default_root()).expanduser().resolve()
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)  # sandboxes hold other users' secrets and foreign binaries
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
        max_sandboxes=options.max_sandboxes or None,
        max_contexts=options.max_contexts or None,
        templates=(options.templates or default_templates()).expanduser(),
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
    if options.command == "template":
        return run_template(options)
    if options.command == "demo":
        from .demo import run

        return run(options.notebook, options.output_dir, options.kernel)
    return 2


if __name__ == "__main__":
    sys.exit(main())
