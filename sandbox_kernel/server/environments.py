"""Each isolated sandbox's own Python environment, layered over the server's read-only one.

A virtual environment at SANDBOX_VENV inside the sandbox, whose site-packages holds a `.pth`
file naming the server's own site-packages: everything the server has imports, and
`%pip install` / `!pip install` install into the sandbox's files, which are writable, survive
a restart of the kernel and shadow the server's versions. pip leaves the server's packages
alone (they lie outside the environment it installs into).

It is made from inside the sandbox, as the sandbox user (`setup_command`), never by the
server through host paths: the sandbox owns its home, and a link planted there must mean
the sandbox's own `/`.
"""

from __future__ import annotations

import os
import site
import sys

from .constants import HOME

SANDBOX_VENV = f"{HOME}/.venv"
SANDBOX_PYTHON = f"{SANDBOX_VENV}/bin/python"
LAYER_FILE = "00-sandbox-kernel-server.pth"
# argv: venv, site-packages of the venv, base bin directory, executable, version, then the
# server's site-packages directories.
SETUP_SCRIPT = f"""\
import os, sys
venv, site_packages, home, executable, version, *layers = sys.argv[1:]
if not os.path.exists(os.path.join(venv, "pyvenv.cfg")):
    os.makedirs(site_packages, exist_ok=True)
    os.makedirs(os.path.join(venv, "bin"), exist_ok=True)
    short = "python" + ".".join(version.split(".")[:2])
    for name in ("python", "python3", short):
        link = os.path.join(venv, "bin", name)
        if not os.path.lexists(link):
            os.symlink(executable, link)
    with open(os.path.join(site_packages, "{LAYER_FILE}"), "w") as layer:
        layer.writelines(path + "\\n" for path in layers)
    with open(os.path.join(venv, "pyvenv.cfg"), "w") as config:
        config.write(f"home = {{home}}\\ninclude-system-site-packages = false\\n"
                     f"version = {{version}}\\nexecutable = {{executable}}\\n")
"""


def site_packages_of(prefix: str) -> str:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return f"{prefix}/lib/{version}/site-packages"


def setup_command(python: str, layers: tuple[str, ...] = ()) -> list[str]:
    """The command that makes the sandbox's environment (if missing), run in the sandbox;
    `layers` are site-packages directories (a template's) above the server's own."""
    executable = os.path.realpath(sys.executable)
    version = ".".join(map(str, sys.version_info[:3]))
    return [
        python,
        "-I",
        "-S",
        "-c",
        SETUP_SCRIPT,
        SANDBOX_VENV,
        site_packages_of(SANDBOX_VENV),
        os.path.join(sys.base_prefix, "bin"),
        executable,
        version,
        *layers,
        *site.getsitepackages(),
    ]
