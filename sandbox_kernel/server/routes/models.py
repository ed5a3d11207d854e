"""The request bodies and query parameters of the routes, validated before a route runs.

Extra fields are accepted and ignored, as clients of the cloud send them.
"""

from __future__ import annotations

from typing import Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..constants import DEFAULT_TIMEOUT_SECONDS, HOME
from ..errors import InvalidRequest
from ..names import requested


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def null_means_default(cls, value: Any) -> Any:
        """Clients of the cloud send `null` for options they leave out; use the default."""
        if isinstance(value, dict):
            return {key: item for key, item in value.items() if item is not None}
        return value

    @field_validator("*")
    @classmethod
    def text_is_unicode(cls, value: Any) -> Any:
        """JSON may escape a lone surrogate ("\\ud800"), which no file name or file can hold."""
        texts = [*value, *value.values()] if isinstance(value, dict) else [value]
        for text in texts:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError("must be valid Unicode text, not a lone surrogate") from None
        return value


class CreateSandbox(Body):
    template_name: str = Field(alias="templateName", min_length=1)
    idle_timeout: int | None = Field(default=600, alias="sandboxIdleTimeoutSeconds")
    sandbox_id: str | None = Field(default=None, alias="sandboxId")
    env: dict[str, str] | None = None
    allow_egress: list[str] | None = Field(default=None, alias="allowEgress")


class CreateContext(Body):
    language: str = "python"
    cwd: str = HOME
    history_file: str | None = Field(default=None, alias="historyFile", min_length=1)


class PastInput(Body):
    execution_count: int = Field(alias="executionCount", ge=0)
    code: str


class Execute(Body):
    code: str
    context_id: str | None = Field(default=None, alias="contextId")
    language: str | None = None
    timeout: float | None = Field(default=DEFAULT_TIMEOUT_SECONDS, allow_inf_nan=False)
    allow_stdin: bool | None = Field(default=None, alias="allowStdin")
    # The `reply` extension: what the notebook's execute_request asked for.
    silent: bool = False
    store_history: bool = Field(default=True, alias="storeHistory")
    user_expressions: dict[str, str] = Field(default_factory=dict, alias="userExpressions")
    execution_count: int | None = Field(default=None, alias="executionCount", ge=0)
    past_inputs: list[PastInput] = Field(default_factory=list, alias="pastInputs")
    # The `comms` extension: the execution's comm messages as `comm` entries.
    comms: bool = False

    @model_validator(mode="before")
    @classmethod
    def null_means_default(cls, value: Any) -> Any:
        """As for every body, except that `"timeout": null` asks for no time limit."""
        if isinstance(value, dict):
            return {
                key: item for key, item in value.items() if item is not None or key == "timeout"
            }
        return value


class CodePosition(Body):
    code: str
    cursor_pos: int = Field(alias="cursorPos", ge=0)
    detail_level: int = Field(default=0, alias="detailLevel", ge=0, le=1)


class Input(Body):
    value: str


class Paths(Body):
    """A body naming a path, as text or (for names that are not UTF-8) as base64 bytes."""

    path: str | None = None
    path_bytes: str | None = Field(default=None, alias="pathBytes")

    @property
    def target(self) -> str:
        return requested(self.path, self.path_bytes)


class WriteFile(Paths):
    content: str
    mode: str | None = "644"
    encoding: str | None = "utf-8"
    create_dir: bool = Field(default=True, alias="createDir")


class MakeDirectory(Paths):
    parents: bool = True
    mode: str | None = "0755"


class Move(Body):
    source: str | None = None
    destination: str | None = None
    source_bytes: str | None = Field(default=None, alias="sourceBytes")
    destination_bytes: str | None = Field(default=None, alias="destinationBytes")

    @property
    def targets(self) -> tuple[str, str]:
        """(source, destination), each from its text or its bytes."""
        source = requested(self.source, self.source_bytes, "source")
        return source, requested(self.destination, self.destination_bytes, "destination")


class Remove(Paths):
    pass


class Command(Body):
    command: str
    cwd: str = HOME
    timeout: float | None = Field(default=DEFAULT_TIMEOUT_SECONDS, allow_inf_nan=False)


def check_timeout(body: Execute | Command) -> None:
    """Refuse a timeout that is not a positive number of seconds (`null` is no limit)."""
    if body.timeout is not None and body.timeout <= 0:
        raise InvalidRequest("field 'timeout' must be a positive number of seconds")


PathQuery = Query(default=None, description="the sandbox path")
PathBytesQuery = Query(
    default=None, alias="pathBytes", description="the path's bytes in base64, for names not UTF-8"
)
