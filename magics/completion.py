"""Tab completion of `%sbx` lines: verbs, options and sandbox paths.

Sandbox directories are listed in a background thread and kept a few seconds; a slow server
gives no completions for that Tab instead of freezing the notebook, and the listing it
eventually sends serves the next Tab.
"""

from __future__ import annotations

import argparse
import re
import shlex
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

from IPython.core.completer import (
    CompletionContext,
    SimpleCompletion,
    SimpleMatcherResult,
    context_matcher,
)

from sandbox_kernel.client import CodeInterpreterSandbox, SandboxError
from sandbox_kernel.client.session import SandboxSession

from .constants import REMOTE_HOME
from .tables import Entry, entries_of
from .verbs import Verb, remote_path

SBX_LINE = re.compile(r"(?:^|[\s=;(])%{1,2}sbx\s+(?P<arguments>.*)$")


class ListingCache:
    """Sandbox directory listings for completion, fetched off the main thread."""

    def __init__(self) -> None:
        self._listings: dict[str, tuple[float, list[Entry]]] = {}
        self._pending: dict[str, Future] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sbx-complete")

    def entries(
        self, sandbox: CodeInterpreterSandbox, directory: str, wait: float, lifetime: float
    ) -> list[Entry]:
        """The directory's entries, or [] when they are not known within `wait` seconds."""
        cached = self._listings.get(directory)
        if cached is not None and time.monotonic() - cached[0] < lifetime:
            return cached[1]
        future = self._pending.get(directory)
        if future is None:
            future = self._executor.submit(self._list, sandbox, directory)
            self._pending[directory] = future
        try:
            return future.result(timeout=wait)
        except (FutureTimeout, SandboxError):
            return []

    def _list(self, sandbox: CodeInterpreterSandbox, directory: str) -> list[Entry]:
        try:
            entries = entries_of(sandbox.file_system.list(directory))
            self._listings[directory] = (time.monotonic(), entries)
            return entries
        finally:
            self._pending.pop(directory, None)

    def forget(self) -> None:
        """Drop every listing (after a verb changed the sandbox's files)."""
        self._listings.clear()


def _result(completions: list[str], fragment: str, kind: str = "sbx") -> SimpleMatcherResult:
    """These completions replace `fragment`, and no other matcher's (local files, Python names).

    IPython lets a matcher silence the others only when it has a completion, so where nothing
    matches the one completion is `fragment` itself: Tab then changes nothing.
    """
    return {
        "completions": [SimpleCompletion(text, type=kind) for text in completions or [fragment]],
        "matched_fragment": fragment,
        "suppress": True,
        "ordered": True,
    }


def _nothing() -> SimpleMatcherResult:
    """No completions from here; other matchers (local files, Python names) may have some.

    A new dict each time: IPython fills in `matched_fragment` of the dict it gets."""
    return {"completions": [], "suppress": False}


class CompletionSource(Protocol):
    """What completion reads of the magics (`SbxMagics` is one): the verbs, the session,
    the listing cache and its two settings, read at each Tab."""

    verbs: Mapping[str, Verb]
    listings: ListingCache
    completion_timeout: float
    completion_cache_seconds: float

    @property
    def session(self) -> SandboxSession | None: ...


class SbxCompleter:
    """An IPython matcher (API v2) for `%sbx` and `%%sbx` lines."""

    def __init__(self, magics: CompletionSource) -> None:
        self.magics = magics

    @context_matcher(identifier="sbx")
    def complete(self, context: CompletionContext) -> SimpleMatcherResult:
        match = SBX_LINE.search(context.text_until_cursor)
        if match is None:
            return _nothing()
        arguments = match.group("arguments")
        word = re.search(r"\S*$", arguments).group()  # type: ignore[union-attr]
        words = _split(arguments[: len(arguments) - len(word)])
        verbs = self.magics.verbs
        if not words or (len(words) == 1 and words[0] == "help"):
            return _result(_starting_with(verbs, word), word)
        verb = verbs.get(words[0])
        if verb is None:
            return _nothing()
        parser, words = _innermost_parser(verb.parser, words[1:])
        if parser is None:
            return _result(_starting_with(_subcommands(verb.parser), word), word)
        options = _options(parser)
        if word.startswith("-") and "=" not in word:
            return _result(_starting_with(options, word), word)
        if word.startswith("--") and "=" in word:
            option, _, value = word.partition("=")
            return self._option_value(verb, option, value)
        if words and words[-1] in options and options[words[-1]]:
            return self._option_value(verb, words[-1], word)
        position = _positional_index(words, options)
        if position in verb.remote_positions:
            return self._paths(word)
        if position in verb.local_positions:
            return _nothing()  # IPython's own file matcher completes local paths
        return _result([], word)

    def _option_value(self, verb: Verb, option: str, value: str) -> SimpleMatcherResult:
        return self._paths(value) if option in verb.remote_options else _result([], value)

    def _paths(self, word: str) -> SimpleMatcherResult:
        """Sandbox paths that start with `word`; directories end with `/`."""
        session = self.magics.session
        if session is None or session.sandbox is None or not session.is_open:
            return _result([], word)
        head, slash, partial = word.rpartition("/")
        directory = remote_path(head or "/") if slash else REMOTE_HOME
        prefix = head + slash
        entries = self.magics.listings.entries(
            session.sandbox,
            directory,
            self.magics.completion_timeout,
            self.magics.completion_cache_seconds,
        )
        matches = [
            prefix + entry.name + ("/" if entry.is_dir else "")
            for entry in entries
            if entry.name.startswith(partial) and (partial[:1] == "." or entry.name[:1] != ".")
        ]
        return _result(sorted(matches), word, "path")


def _starting_with(names: Iterable[str], word: str) -> list[str]:
    return sorted(name for name in names if name.startswith(word))


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _innermost_parser(
    parser: argparse.ArgumentParser, words: list[str]
) -> tuple[argparse.ArgumentParser | None, list[str]]:
    """The parser of a verb's sub-command (`ctx use`), or None while its name is typed."""
    subcommands = _subcommands(parser)
    if not subcommands:
        return parser, words
    if not words:
        return None, words
    return subcommands.get(words[0], parser), words[1:]


def _options(parser: argparse.ArgumentParser) -> dict[str, bool]:
    """Each option string of a parser, and whether it takes a value."""
    return {
        option: action.nargs != 0 for action in parser._actions for option in action.option_strings
    }


def _positional_index(words: list[str], options: dict[str, Any]) -> int:
    """How many positional arguments come before the word being completed."""
    count, skip_value = 0, False
    for word in words:
        if skip_value:
            skip_value = False
        elif word.startswith("-"):
            skip_value = "=" not in word and bool(options.get(word))
        else:
            count += 1
    return count
