"""Templates: named Python environments that sandboxes run their interpreters on.

A template is a directory under the server's templates directory holding `template.json`
and, for one built from requirements, a prefix (`env/`) whose site-packages pip filled. A
sandbox created with that `templateName` sees the template's site-packages, read-only,
layered over the server's own (so ipykernel and the rest come from the server), and below
the sandbox's own environment (environments.py). Any other template name runs on the
server's environment alone, as `default` does.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .environments import site_packages_of

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RECORD = "template.json"
DEFAULT = "default"


class TemplateError(RuntimeError):
    """A template cannot be made, found or removed; the message says why."""


@dataclass(frozen=True)
class Template:
    """A built template: the prefix whose site-packages a sandbox of it sees."""

    name: str
    prefix: str
    created_at: str

    @property
    def site_packages(self) -> str:
        return site_packages_of(self.prefix)

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "prefix": self.prefix, "createdAt": self.created_at}


class TemplateStore:
    """The templates in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def list(self) -> list[Template]:
        found = []
        if self.directory.is_dir():
            for record in sorted(self.directory.glob(f"*/{RECORD}")):
                template = self._read(record)
                if template is not None:
                    found.append(template)
        return found

    def names(self) -> list[str]:
        return [template.name for template in self.list()]

    def get(self, name: str) -> Template | None:
        """The template called `name`, or None (the server's environment alone)."""
        if name == DEFAULT or not NAME_PATTERN.match(name):
            return None
        return self._read(self.directory / name / RECORD)

    def _read(self, record: Path) -> Template | None:
        try:
            data = json.loads(record.read_text())
            return Template(data["name"], data["prefix"], data["createdAt"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("skipping unreadable template record %s: %s", record, error)
            return None

    def add_from_requirements(self, name: str, requirements: Path) -> Template:
        """Build a template by installing `requirements` with pip into a prefix of its own;
        what the server's environment already has is not installed again."""
        directory = self._new_directory(name)
        prefix = directory / "env"
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--prefix", str(prefix)]
        command += ["--no-warn-script-location", "-r", str(requirements)]
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode != 0:
            shutil.rmtree(directory, ignore_errors=True)
            lines = (finished.stderr or finished.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"exit code {finished.returncode}"
            raise TemplateError(f"pip could not install {requirements}: {reason}")
        Path(site_packages_of(str(prefix))).mkdir(parents=True, exist_ok=True)
        return self._record(name, directory, str(prefix))

    def add_from_prefix(self, name: str, prefix: Path) -> Template:
        """Use an environment that exists already (same Python version as the server)."""
        prefix = prefix.resolve()
        if not Path(site_packages_of(str(prefix))).is_dir():
            raise TemplateError(
                f"{prefix} has no {site_packages_of('').lstrip('/')}: a template must be an "
                f"environment of the server's Python {sys.version_info.major}."
                f"{sys.version_info.minor}"
            )
        return self._record(name, self._new_directory(name), str(prefix))

    def remove(self, name: str) -> None:
        if self.get(name) is None:
            raise TemplateError(f"no template {name!r} in {self.directory}")
        shutil.rmtree(self.directory / name)

    def _new_directory(self, name: str) -> Path:
        if not NAME_PATTERN.match(name) or name == DEFAULT:
            raise TemplateError(
                "a template name holds letters, digits, '.', '_' and '-' (at most 64), "
                f"and is not {DEFAULT!r}"
            )
        directory = self.directory / name
        if directory.exists():
            raise TemplateError(f"template {name!r} exists already (template rm {name} first)")
        directory.mkdir(parents=True, mode=0o755)
        return directory

    def _record(self, name: str, directory: Path, prefix: str) -> Template:
        template = Template(name, prefix, datetime.now(timezone.utc).isoformat())
        staged = directory / f"{RECORD}.tmp"
        staged.write_text(json.dumps(template.describe()))
        os.replace(staged, directory / RECORD)
        return template
