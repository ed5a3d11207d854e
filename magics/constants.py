"""Values the magics' modules share: the sandbox's home, how deep a tree is listed, timeouts."""

from __future__ import annotations

REMOTE_HOME = "/home/user"
"""The sandbox's home: `~` in a sandbox path, and where the verbs start without a session."""
TREE_DEPTH = 64
"""How deep a sandbox directory is listed to copy or compare all of it (`get -r`, `diff`,
the browser's download)."""
HELPER_TIMEOUT = 30
"""Seconds a short command the magics run for themselves in the sandbox may take."""
COMPLETION_TIMEOUT = 0.5
"""Seconds Tab waits for a sandbox directory listing (`SbxMagics.completion_timeout`)."""
COMPLETION_CACHE_SECONDS = 5.0
"""Seconds a listing keeps serving Tab (`SbxMagics.completion_cache_seconds`)."""
