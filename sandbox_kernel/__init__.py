"""sandbox-kernel: a Jupyter kernel whose cells run inside a code-interpreter sandbox."""

from typing import Any

from .client.fallback import register_default

__all__ = ["CodeInterpreterSandbox", "SandboxError", "SandboxNotFoundError", "__version__"]

_CLIENT_NAMES = {"CodeInterpreterSandbox", "SandboxError", "SandboxNotFoundError"}


def _embedded_endpoint() -> tuple[str, str]:
    """The embedded server, where nothing names a server: the seed API's zero-config default
    (`CodeInterpreterSandbox.create()`). Loaded when first needed."""
    from .local import embedded_endpoint

    return embedded_endpoint()


register_default(_embedded_endpoint)


def __getattr__(name: str) -> Any:
    # Loaded when first asked for: the server and the command line need neither the client
    # (httpx) nor the package metadata to start.
    if name in _CLIENT_NAMES:
        from . import client

        return getattr(client, name)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("sandbox-kernel")
        except PackageNotFoundError:
            return "0.0.0"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(shell: object) -> None:
    """`%load_ext sandbox_kernel` adds the `%sbx` magics to any IPython kernel."""
    from .magics import load_ipython_extension as load

    load(shell)
