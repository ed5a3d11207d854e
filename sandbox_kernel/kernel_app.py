"""Run the notebook's kernel as an IPKernelApp whose output streams are `PromptOutStream`s."""

from __future__ import annotations

from typing import Any

from ipykernel.kernelapp import IPKernelApp

from .prompt_stream import PromptOutStream


def launch(kernel_class: type | None = None) -> None:
    """Run an IPKernelApp (with `kernel_class`, default IPython's) on these streams."""
    options: dict[str, Any] = {"outstream_class": f"{PromptOutStream.__module__}.PromptOutStream"}
    if kernel_class is not None:
        options["kernel_class"] = kernel_class
    IPKernelApp.launch_instance(**options)
