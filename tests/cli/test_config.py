"""Stored tokens: per gateway URL, under XDG_CONFIG_HOME, readable by the user only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from lectern_cli import config


@pytest.fixture(autouse=True)
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_credentials_live_under_xdg_config_home(xdg: Path) -> None:
    assert config.credentials_path() == xdg / "lectern" / "credentials.json"
    assert config.stored_credentials("http://gw") is None
    token = {"access_token": "t-1", "user_id": "u-1", "is_guest": True}
    path = config.store_credentials("http://gw/", token)
    assert path == xdg / "lectern" / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = config.stored_credentials("http://gw")
    assert stored == {"access_token": "t-1", "user_id": "u-1", "is_guest": True, "email": None}
    assert json.loads(path.read_text())["version"] == 1


def test_each_gateway_has_its_own_token() -> None:
    config.store_credentials("http://a", {"access_token": "ta", "user_id": "ua"}, email="a@x.org")
    config.store_credentials("http://b", {"access_token": "tb", "user_id": "ub"})
    assert config.stored_credentials("http://a")["access_token"] == "ta"  # type: ignore[index]
    assert config.forget_credentials("http://a") is True
    assert config.forget_credentials("http://a") is False
    assert config.stored_credentials("http://a") is None
    assert config.stored_credentials("http://b")["access_token"] == "tb"  # type: ignore[index]


def test_home_config_when_xdg_is_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config.config_dir() == tmp_path / ".config" / "lectern"


def test_an_unreadable_file_is_no_credentials(xdg: Path) -> None:
    (xdg / "lectern").mkdir(parents=True)
    (xdg / "lectern" / "credentials.json").write_text("{not json")
    assert config.stored_credentials("http://gw") is None
