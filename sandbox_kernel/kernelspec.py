"""Install the "Python 3 (Sandbox)" kernelspec where Jupyter finds it."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager

DEFAULT_NAME = "sandbox"
DEFAULT_DISPLAY_NAME = "Python 3 (Sandbox)"


def bundled_kernelspec() -> Path:
    """The kernelspec directory shipped with the package (wheel shared-data or the source tree)."""
    candidates = [
        Path(sys.prefix) / "share" / "jupyter" / "kernels" / DEFAULT_NAME,
        Path(__file__).resolve().parent.parent / "kernelspec",
    ]
    for candidate in candidates:
        if (candidate / "kernel.json").is_file():
            return candidate
    raise FileNotFoundError("the sandbox kernelspec is not installed with this package")


def install(
    *,
    user: bool = False,
    prefix: str | None = None,
    name: str = DEFAULT_NAME,
    display_name: str = DEFAULT_DISPLAY_NAME,
    env: dict[str, str] | None = None,
) -> str:
    """Install the kernelspec, pinned to this Python; returns the directory written."""
    with tempfile.TemporaryDirectory() as staging:
        spec_dir = Path(staging) / name
        shutil.copytree(bundled_kernelspec(), spec_dir)
        spec_file = spec_dir / "kernel.json"
        spec = json.loads(spec_file.read_text())
        spec["argv"][0] = sys.executable
        spec["display_name"] = display_name
        if env:
            spec["env"] = {**spec.get("env", {}), **env}
        spec_file.write_text(json.dumps(spec, indent=2) + "\n")
        return KernelSpecManager().install_kernel_spec(
            str(spec_dir), kernel_name=name, user=user, prefix=prefix
        )
