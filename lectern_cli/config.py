"""Where ``lectern`` finds the gateway, the broker and its stored tokens.

Tokens are kept per gateway URL in ``$XDG_CONFIG_HOME/lectern/credentials.json``
(``~/.config/lectern/credentials.json`` by default), readable by the user only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def default_url() -> str:
    """The gateway: ``LECTERN_URL``, else http://127.0.0.1:8000 (what ``make run`` serves)."""
    return os.environ.get("LECTERN_URL") or DEFAULT_URL


def default_amqp_url() -> str:
    """RabbitMQ: ``LECTERN_AMQP_URL``, else ``AMQP_URL`` (the services' setting), else local."""
    return os.environ.get("LECTERN_AMQP_URL") or os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/lectern`` (``~/.config/lectern`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lectern"


def credentials_path() -> Path:
    """The credentials file."""
    return config_dir() / "credentials.json"


def _key(url: str) -> str:
    return url.rstrip("/")


def load_credentials() -> dict[str, dict[str, Any]]:
    """Stored tokens by gateway URL (empty when there is no file or it is unreadable)."""
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    servers = data.get("servers") if isinstance(data, dict) else None
    return servers if isinstance(servers, dict) else {}


def stored_credentials(url: str) -> dict[str, Any] | None:
    """The token stored for ``url`` (``access_token``, ``user_id``, ``email``, ``is_guest``)."""
    entry = load_credentials().get(_key(url))
    return entry if isinstance(entry, dict) and entry.get("access_token") else None


def _write(servers: dict[str, dict[str, Any]]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials.")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"version": 1, "servers": servers}, f, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)  # atomic: a crash never leaves half a file
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def store_credentials(url: str, token: dict[str, Any], email: str | None = None) -> Path:
    """Remember ``token`` (an auth answer) for ``url``; the file's path."""
    servers = load_credentials()
    servers[_key(url)] = {
        "access_token": token["access_token"],
        "user_id": token.get("user_id"),
        "is_guest": bool(token.get("is_guest", False)),
        "email": email,
    }
    return _write(servers)


def forget_credentials(url: str) -> bool:
    """Drop the token stored for ``url``; whether there was one."""
    servers = load_credentials()
    if servers.pop(_key(url), None) is None:
        return False
    _write(servers)
    return True
