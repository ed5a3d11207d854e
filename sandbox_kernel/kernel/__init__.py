"""The sandbox kernel: an IPython kernel that runs ordinary cells in a sandbox context."""

from .kernel import SandboxKernel

__all__ = ["SandboxKernel"]
