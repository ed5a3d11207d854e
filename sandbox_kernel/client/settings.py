"""Where the sandbox server is and how to authenticate: arguments first, then the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from .errors import SandboxError
from .fallback import Fallback, default

DEFAULT_REGION = "cn-hangzhou"
EMBEDDED = "embedded server"
"""The `source` of settings that point at the embedded local server."""

_RAM_DATA_DOMAINS = (".agentrun-data.", ".funagent-data-pre.")


@dataclass(frozen=True)
class AccessKey:
    """An Alibaba Cloud access key, used to sign every request with the RAM signature."""

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None
    region: str = DEFAULT_REGION

    def __repr__(self) -> str:
        return f"AccessKey(access_key_id={self.access_key_id!r}, region={self.region!r})"


@dataclass(frozen=True)
class ClientSettings:
    """A resolved endpoint plus credentials; `source` says where the endpoint came from."""

    endpoint: str
    token: str | None = None
    access_key: AccessKey | None = None
    source: str = "argument"

    def __repr__(self) -> str:
        token = "***" if self.token else None
        return (
            f"ClientSettings(endpoint={self.endpoint!r}, token={token}, "
            f"access_key={self.access_key!r}, source={self.source!r})"
        )

    @property
    def where(self) -> str:
        """The endpoint and where it came from, for error messages."""
        if self.source == "argument":
            return self.endpoint
        if self.source == EMBEDDED:
            return f"{self.endpoint} (the {EMBEDDED})"
        return f"{self.endpoint} (from {self.source})"

    @classmethod
    def planned_where(
        cls, endpoint: str | None = None, environ: Mapping[str, str] | None = None
    ) -> str:
        """What `where` will say once resolved, found without starting anything."""
        if endpoint:
            return endpoint
        source, found = _endpoint_from(os.environ if environ is None else environ)
        return f"the {EMBEDDED}" if found is None else f"{found} (from {source})"

    @classmethod
    def resolve(
        cls,
        endpoint: str | None = None,
        token: str | None = None,
        environ: Mapping[str, str] | None = None,
        fallback: Fallback | None = None,
    ) -> ClientSettings:
        """Fill what the caller left out from the environment, else ask the fallback.

        Endpoint: argument, `SANDBOX_KERNEL_ENDPOINT`, `AGENTRUN_DATA_ENDPOINT`, the AgentRun
        data endpoint of `AGENTRUN_ACCOUNT_ID`, then `fallback()` (by default the one
        registered in `fallback.py`: the embedded server), whose own token is used unless
        one is passed.
        """
        env = os.environ if environ is None else environ
        source, endpoint = ("argument", endpoint) if endpoint else _endpoint_from(env)
        if endpoint is None:
            fallback = fallback or default()
            if fallback is None:
                raise SandboxError(
                    "no sandbox server named: pass an endpoint or set SANDBOX_KERNEL_ENDPOINT"
                )
            url, own_token = fallback()
            return cls(endpoint=_checked(url, EMBEDDED), token=token or own_token, source=EMBEDDED)
        token = token or _first(env, "SANDBOX_KERNEL_TOKEN")[1]
        access_key = _access_key_from(env)
        endpoint = _checked(endpoint, source)
        if access_key is not None:
            endpoint = _ram_endpoint(endpoint)
        return cls(endpoint=endpoint, token=token, access_key=access_key, source=source)


def chooses_embedded(endpoint: str | None, environ: Mapping[str, str] | None = None) -> bool:
    """True when neither `endpoint` nor the environment names a server: the embedded one."""
    env = os.environ if environ is None else environ
    return not endpoint and _endpoint_from(env)[1] is None


def _first(env: Mapping[str, str], *names: str) -> tuple[str, str | None]:
    """The first of `names` set to a non-empty value, as (name, value)."""
    for name in names:
        if env.get(name):
            return name, env[name]
    return names[0], None


def _endpoint_from(env: Mapping[str, str]) -> tuple[str, str | None]:
    name, endpoint = _first(env, "SANDBOX_KERNEL_ENDPOINT", "AGENTRUN_DATA_ENDPOINT")
    if endpoint:
        return name, endpoint
    name, account_id = _first(env, "AGENTRUN_ACCOUNT_ID", "FC_ACCOUNT_ID")
    if account_id:
        region = _first(env, "AGENTRUN_REGION", "FC_REGION")[1] or DEFAULT_REGION
        return name, f"https://{account_id}.agentrun-data.{region}.aliyuncs.com"
    return EMBEDDED, None


def _access_key_from(env: Mapping[str, str]) -> AccessKey | None:
    access_key_id = _first(env, "AGENTRUN_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_ID")[1]
    secret = _first(env, "AGENTRUN_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ACCESS_KEY_SECRET")[1]
    if not (access_key_id and secret):
        return None
    return AccessKey(
        access_key_id=access_key_id,
        access_key_secret=secret,
        security_token=_first(env, "AGENTRUN_SECURITY_TOKEN", "ALIBABA_CLOUD_SECURITY_TOKEN")[1],
        region=_first(env, "AGENTRUN_REGION", "FC_REGION")[1] or DEFAULT_REGION,
    )


def _checked(endpoint: str, source: str) -> str:
    """The endpoint without a trailing slash, or a clear error when it is not an http(s) URL."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SandboxError(
            f"invalid sandbox endpoint {endpoint!r} (from {source}): expected http(s)://host[:port]"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _ram_endpoint(endpoint: str) -> str:
    """AgentRun serves signed requests on a sibling host whose first label ends in `-ram`."""
    parts = urlsplit(endpoint)
    host, _, rest = parts.netloc.partition(".")
    if not any(domain in parts.netloc for domain in _RAM_DATA_DOMAINS) or host.endswith("-ram"):
        return endpoint
    return urlunsplit((parts.scheme, f"{host}-ram.{rest}", parts.path, "", ""))
