"""Serving the web client (``parley.api.web``): page URLs, static files and their caching,
path safety, and source-level guards on the client (CSP-clean HTML, no HTML injection
sinks, every module import resolvable, every file shipped in the package)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import httpx
import pytest

from parley.api.web import PAGE_PATHS, STATIC_DIR, WEB_DIR, WebAssets
from tests.support.paths import REPO

VERSIONED = re.compile(r'"/static/([0-9a-f]{12})/app\.js"')


async def current_version(client: httpx.AsyncClient) -> str:
    page = await client.get("/")
    found = VERSIONED.search(page.text)
    assert found, page.text
    return found.group(1)


EXAMPLES = {
    "/": "/",
    "/login": "/login",
    "/register": "/register",
    "/forgot-password": "/forgot-password",
    "/reset-password": "/reset-password?token=abc",
    "/admin": "/admin",
    "/admin/{section}": "/admin/reports",
    "/contacts": "/contacts",
    "/settings": "/settings",
    "/settings/{section}": "/settings/sessions",
    "/search": "/search",
    "/c/{conversation_id}": "/c/01ABC",
    "/c/{conversation_id}/m/{message_id}": "/c/01ABC/m/01DEF",
    "/g/{slug}": "/g/design-team",
    "/threads": "/threads",
    "/directory": "/directory",
    "/invite/{token}": "/invite/Zm9vYmFyLWludml0ZS10b2tlbg",
}


def test_every_page_path_has_an_example() -> None:
    assert set(EXAMPLES) == set(PAGE_PATHS)


@pytest.mark.parametrize("path", list(EXAMPLES.values()))
async def test_page_urls_serve_the_client(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, params={"q": "x"} if path == "/search" else None)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert '<script type="module" src="/static/' in response.text
    assert (await client.head(path)).status_code == 200


@pytest.mark.parametrize("path", ["/c/01ABC/x", "/nope", "/api/v1/nope", "/c", "/g/a/b"])
async def test_other_paths_stay_json_404s(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_api_routes_still_win(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me")
    assert response.status_code == 401 and response.json()["error"]["code"]


async def test_versioned_files_are_immutable(client: httpx.AsyncClient) -> None:
    version = await current_version(client)
    response = await client.get(f"/static/{version}/app.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    etag = response.headers["etag"]
    assert response.text == (STATIC_DIR / "app.js").read_text()
    # Relative imports resolve inside the same versioned prefix.
    nested = await client.get(f"/static/{version}/views/timeline.js")
    assert nested.status_code == 200 and "immutable" in nested.headers["cache-control"]
    css = await client.get(f"/static/{version}/app.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    again = await client.get(f"/static/{version}/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


async def test_unversioned_and_stale_paths_revalidate(client: httpx.AsyncClient) -> None:
    plain = await client.get("/static/app.js")
    assert plain.status_code == 200 and plain.headers["cache-control"] == "no-cache"
    assert plain.headers["etag"]
    stale = await client.get("/static/000000000000/app.js")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    icon = await client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"


@pytest.mark.parametrize(
    "path",
    [
        "/static/%2e%2e/api/web.py",
        "/static/..%2fapi%2fweb.py",
        "/static/views/%2e%2e/%2e%2e/index.html",
        "/static/.hidden.js",
        "/static/nope.js",
        "/static/views",
        "/static/",
        "/static/app.js%00.css",
        "/static/000000000000/",
    ],
)
async def test_unsafe_or_missing_static_paths_are_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 404, path


def test_the_version_follows_the_contents(tmp_path: Path) -> None:
    web = tmp_path / "web"
    (web / "static").mkdir(parents=True)
    (web / "index.html").write_text('<script type="module" src="/static/app.js"></script>')
    (web / "static" / "app.js").write_text("one")
    assets = WebAssets(web)
    first = assets.version()
    assert first == WebAssets(web).version()  # the same files give the same version anywhere
    (web / "static" / "app.js").write_text("two!")
    second = assets.version()
    assert second != first
    assert f'"/static/{second}/app.js"' in assets.index().decode()


# --- source guards on the client


def web_files(suffix: str) -> list[Path]:
    return sorted(WEB_DIR.rglob(f"*{suffix}"))


def test_no_inline_scripts_or_styles_in_the_page() -> None:
    html = (WEB_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\ssrc=)", html), "inline <script>"
    assert not re.search(r"\sstyle=|<style", html), "inline style"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert not re.search(r'(src|href)="(https?:)?//', html), "a file from another host"


@pytest.mark.parametrize("path", web_files(".js"), ids=lambda p: str(p.relative_to(WEB_DIR)))
def test_client_modules_have_no_html_sinks(path: Path) -> None:
    source = path.read_text()
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("style"',
        "javascript:",
    ):
        # markdown.js names "javascript:" only in its comment about what it refuses.
        if sink == "javascript:" and path.name == "markdown.js":
            continue
        assert sink not in source, f"{path.name} uses {sink}"
    assert not re.search(r"""(import|from)\s*\(?\s*["']https?://""", source), (
        "a module from another host"
    )


@pytest.mark.parametrize("path", web_files(".js"), ids=lambda p: str(p.relative_to(WEB_DIR)))
def test_every_import_resolves(path: Path) -> None:
    for target in re.findall(
        r"""^\s*(?:import|export)\s[^"';]*?from\s+["'](\.[^"']+)["']""", path.read_text(), re.M
    ):
        assert (path.parent / target).resolve().is_file(), f"{path.name} imports missing {target}"


def test_nothing_is_loaded_from_other_hosts() -> None:
    for path in [*web_files(".css"), *web_files(".html")]:
        text = path.read_text()
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), path.name
        assert "@import" not in text, path.name


def test_package_data_ships_every_web_file() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["parley"]
    assert "web/**/*" in patterns
    package = REPO / "src" / "parley"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    for file in WEB_DIR.rglob("*"):
        if file.is_file():
            assert file in shipped, file
