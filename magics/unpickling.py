"""Reading what `%sbx pull` brings back, which the sandbox's code fully controls.

`pickle.loads` of sandbox bytes would run any function the sandbox names, on the kernel's
host. The unpickler here resolves only the value types in `ALLOWED`: containers, numbers,
text, dates and numpy arrays. Anything else is refused with its name, before it is built.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

ALLOWED: dict[str, frozenset[str]] = {
    "builtins": frozenset(
        [
            "bool",
            "bytearray",
            "bytes",
            "complex",
            "dict",
            "float",
            "frozenset",
            "int",
            "list",
            "range",
            "set",
            "slice",
            "str",
            "tuple",
        ]
    ),
    "collections": frozenset(["Counter", "OrderedDict", "deque", "defaultdict"]),
    "datetime": frozenset(["date", "datetime", "time", "timedelta", "timezone"]),
    "decimal": frozenset(["Decimal"]),
    "fractions": frozenset(["Fraction"]),
    "uuid": frozenset(["UUID", "SafeUUID"]),
    "pathlib": frozenset(["PurePath", "PurePosixPath", "PureWindowsPath"]),
    "zoneinfo": frozenset(["ZoneInfo"]),
    "numpy": frozenset(["ndarray", "dtype"]),
    "numpy.core.multiarray": frozenset(["_reconstruct", "scalar"]),
    "numpy._core.multiarray": frozenset(["_reconstruct", "scalar"]),
}
"""Module -> names that may appear in a pulled pickle. Each builds a value and nothing else."""


class RefusedType(pickle.UnpicklingError):
    """A pulled pickle names something other than a plain value type."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(
            f"{module}.{name} is not a value type pull accepts (containers, numbers, text, "
            "dates, numpy arrays); save it to a file in the sandbox and `%sbx get` it"
        )


class ValueUnpickler(pickle.Unpickler):
    """An unpickler that builds only the types in `ALLOWED`."""

    def find_class(self, module: str, name: str) -> Any:
        if name not in ALLOWED.get(module, ()):
            raise RefusedType(module, name)
        return super().find_class(module, name)


def load_values(data: bytes) -> Any:
    """Unpickle sandbox bytes, refusing every type outside `ALLOWED`."""
    return ValueUnpickler(io.BytesIO(data)).load()
