"""sandbox-kernel: a Jupyter kernel whose cells run inside a code-interpreter sandbox."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sandbox-kernel")
except PackageNotFoundError:
    __version__ = "0.0.0"

from .client import CodeInterpreterSandbox, SandboxError, SandboxNotFoundError

__all__ = ["CodeInterpreterSandbox", "SandboxError", "SandboxNotFoundError", "__version__"]


def load_ipython_extension(shell: object) -> None:
    """`%load_ext sandbox_kernel` adds the `%sbx` magics to any IPython kernel."""
    from .magics import load_ipython_extension as load

    load(shell)
