"""`sandbox-kernel demo`: run a notebook on the sandbox kernel and show what came back."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


def describe_output(output: dict[str, Any]) -> str:
    """A short text rendering of one notebook output."""
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("text", "").rstrip("\n")
    if kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    data = output.get("data", {})
    for mime in IMAGE_TYPES:
        if mime in data:
            return f"[{mime} image, {len(data[mime])} bytes encoded]"
    if "text/html" in data and "text/plain" not in data:
        return "[html]"
    return str(data.get("text/plain", "")).rstrip("\n")


def run(notebook: Path, output_dir: Path, kernel_name: str = "sandbox") -> int:
    try:
        import nbformat
        from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor
    except ImportError:
        print("the demo needs nbconvert: pip install 'sandbox-kernel[demo]'", file=sys.stderr)
        return 2
    if not notebook.is_file():
        print(f"no notebook at {notebook}", file=sys.stderr)
        return 2
    document = nbformat.read(notebook, as_version=4)
    runner = ExecutePreprocessor(kernel_name=kernel_name, timeout=600, allow_errors=True)
    print(f"Running {notebook} on the '{kernel_name}' kernel...\n")
    try:
        runner.preprocess(document, {"metadata": {"path": str(notebook.parent)}})
    except CellExecutionError as error:
        print(error, file=sys.stderr)
        return 1
    for cell in document.cells:
        if cell.cell_type != "code":
            continue
        prompt = f"In [{cell.get('execution_count') or ' '}]: "
        print(prompt + cell.source.replace("\n", "\n" + " " * (len(prompt) - 5) + "...: "))
        for output in cell.get("outputs", []):
            text = describe_output(output)
            if text:
                print("    " + text.replace("\n", "\n    "))
        print()
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / notebook.name
    nbformat.write(document, target)
    print(f"Executed notebook written to {target}")
    return 0
