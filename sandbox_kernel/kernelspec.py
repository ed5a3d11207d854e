"""Install the "Python 3 (Sandbox)" and "JavaScript (Sandbox)" kernelspecs where Jupyter finds
them."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager


@dataclass(frozen=True)
class Kernelspec:
    """A kernelspec shipped with the package: its directory name and what Jupyter shows."""

    name: str
    display_name: str


KERNELSPECS = {
    "python": Kernelspec("sandbox", "Python 3 (Sandbox)"),
    "javascript": Kernelspec("sandbox-javascript", "JavaScript (Sandbox)"),
}


def bundled_kernelspec(language: str = "python") -> Path:
    """The kernelspec directory shipped with the package (wheel shared-data or the source tree)."""
    name = KERNELSPECS[language].name
    candidates = [
        Path(sys.prefix) / "share" / "jupyter" / "kernels" / name,
        Path(__file__).resolve().parent.parent / "kernelspec" / name,
    ]
    for candidate in candidates:
        if (candidate / "kernel.json").is_file():
            return candidate
    raise FileNotFoundError(f"the {name} kernelspec is not installed with this package")


def install(
    *,
    language: str = "python",
    user: bool = False,
    prefix: str | None = None,
    name: str | None = None,
    display_name: str | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Install the kernelspec of `language`, pinned to this Python; returns the directory
    written. `name` and `display_name` default to the shipped ones."""
    shipped = KERNELSPECS[language]
    name = name or shipped.name
    with tempfile.TemporaryDirectory() as staging:
        spec_dir = Path(staging) / name
        shutil.copytree(bundled_kernelspec(language), spec_dir)
        spec_file = spec_dir / "kernel.json"
        spec = json.loads(spec_file.read_text())
        spec["argv"][0] = sys.executable
        spec["display_name"] = display_name or shipped.display_name
        if env:
            spec["env"] = {**spec.get("env", {}), **env}
        spec_file.write_text(json.dumps(spec, indent=2) + "\n")
        return KernelSpecManager().install_kernel_spec(
            str(spec_dir), kernel_name=name, user=user, prefix=prefix
        )
