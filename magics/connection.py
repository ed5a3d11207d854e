"""The session the verbs use: the sandbox kernel's own, or one the magics open themselves."""

from __future__ import annotations

import os
from collections.abc import Callable

from IPython.core.error import UsageError

from sandbox_kernel.client import CodeInterpreterSandbox, SandboxError
from sandbox_kernel.client.session import SandboxSession
from sandbox_kernel.local import embedded_endpoint

IN_THE_SANDBOX_KERNEL = (
    "in the sandbox kernel %sbx uses the kernel's own sandbox; to change it set "
    "c.SandboxKernel.endpoint / sandbox_id (or SANDBOX_KERNEL_ENDPOINT) and restart the kernel"
)


class Connection:
    """Which session the verbs use, and whether it is theirs to open and close.

    In the sandbox kernel the kernel hands over its session (`use_kernel_session`); in any
    other IPython the first verb connects to the configured server, unless `connect` chose
    another. `changed` runs whenever the session is replaced.
    """

    def __init__(self, changed: Callable[[], None] = lambda: None) -> None:
        self._session: SandboxSession | None = None
        self._owns_session = False
        self._changed = changed
        self.kernel_folder: str | None = None
        """The kernel's working directory when it handed over its session."""

    @property
    def session(self) -> SandboxSession | None:
        """The session, or None before the first one connects."""
        return self._session

    def use_kernel_session(self, session: SandboxSession | None) -> None:
        """Use a session that its owner (the sandbox kernel) opens and closes."""
        self.close_own_session()
        self._session, self._owns_session = session, False
        self.kernel_folder = os.getcwd() if session is not None else None
        self._changed()

    @property
    def shares_session(self) -> bool:
        """True in the sandbox kernel: the session belongs to the kernel."""
        return self._session is not None and not self._owns_session

    def connected(self) -> SandboxSession:
        """The open session; outside the sandbox kernel the first call connects."""
        if self._session is None:
            self._session, self._owns_session = SandboxSession(fallback=embedded_endpoint), True
        session = self._session
        if not session.is_open:
            if self.shares_session:
                reason = session.failure or "the kernel is still connecting"
                raise SandboxError(f"not connected to a sandbox: {reason}")
            session.open()
        return session

    @property
    def sandbox(self) -> CodeInterpreterSandbox:
        """The connected sandbox (connecting first when needed)."""
        sandbox = self.connected().sandbox
        assert sandbox is not None
        return sandbox

    def connect(self, session: SandboxSession) -> None:
        """Replace the magics' own session by `session` and open it."""
        if self.shares_session:
            raise UsageError(f"%sbx connect: {IN_THE_SANDBOX_KERNEL}")
        self.close_own_session()
        self._session, self._owns_session = session, True
        self._changed()
        session.open()

    def close_own_session(self) -> None:
        """Close the session the magics opened (never the kernel's)."""
        if self._owns_session and self._session is not None:
            self._session.close()
            self._session, self._owns_session = None, False
