"""Serving the built web app: its routes get index.html, the API is never shadowed."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.gateway import spa


def client(dist: Path) -> TestClient:
    app = FastAPI()

    @app.get("/v1/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    spa.mount(app, dist)
    return TestClient(app)


def built(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root></div>")
    (dist / "assets" / "app-1234.js").write_text("console.log('app')")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("not for the web")
    return dist


def test_app_routes_get_index_with_a_strict_csp(tmp_path: Path) -> None:
    c = client(built(tmp_path))
    for path in ("/", "/courses", "/courses/abc/lessons/2"):
        resp = c.get(path)
        assert resp.status_code == 200 and "id=root" in resp.text, path
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        assert resp.headers["cache-control"] == "no-cache"
    asset = c.get("/assets/app-1234.js")
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    assert c.get("/favicon.svg").text == "<svg/>"


def test_the_api_and_files_outside_dist_are_not_the_apps(tmp_path: Path) -> None:
    c = client(built(tmp_path))
    assert c.get("/v1/ping").json() == {"pong": "yes"}
    missing = c.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    assert c.get("/assets/missing.js").status_code == 404
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"):
        assert "not for the web" not in c.get(path).text, path


def test_an_unbuilt_app_says_how_to_build_it(tmp_path: Path) -> None:
    resp = client(tmp_path / "nothing").get("/courses")
    assert resp.status_code == 503 and "make run" in resp.text
