"""sandbox-kernel: a Jupyter kernel whose cells run inside a code-interpreter sandbox."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sandbox-kernel")
except PackageNotFoundError:
    __version__ = "0.0.0"

from .client import CodeInterpreterSandbox, SandboxError, SandboxNotFoundError

__all__ = ["CodeInterpreterSandbox", "SandboxError", "SandboxNotFoundError", "__version__"]
