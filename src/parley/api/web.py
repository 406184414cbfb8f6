"""The web client: ``index.html`` for every page URL, its files under ``/static/``.

The client is plain ES modules and CSS (``parley/web``), no build step. Caching without a
build: ``index.html`` is served with ``no-cache`` and rewrites its ``/static/`` references to
``/static/<version>/``, where the version is a hash of the files' contents (the same on every
node). Files under a current version are ``immutable`` for a year; relative module imports
inherit the versioned prefix, so one deploy invalidates them all at once. Unversioned or
stale-version paths still work, with ``no-cache`` and an ``ETag``.

Page URLs (DESIGN §1 "Deep links"): ``/``, ``/login``, ``/register``, ``/c/{conversation}``,
``/c/{conversation}/m/{message}``, ``/g/{slug}``, ``/contacts``, ``/settings``, ``/search``,
``/forgot-password``, ``/reset-password``, ``/admin``, ``/admin/{section}``.
Any other path a browser asks for as a page gets the same document with status 404, and the
client shows its "not found" view (``not_found_page``); ``/api/`` paths and requests that do
not ask for HTML keep the JSON 404 of ``parley/api/errors.py``. ``/sw.js`` is the service
worker (at the root, so that its scope is the whole app) and ``/offline`` the page it shows
without a network (DESIGN §6.2: an installable app).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from parley.errors import NotFound

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_DIR = WEB_DIR / "static"
INDEX_FILE = WEB_DIR / "index.html"

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
VERSION_PATTERN = re.compile(r"^[0-9a-f]{12}$")
SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
PAGE_PATHS = (
    "/",
    "/login",
    "/register",
    "/forgot-password",
    "/reset-password",
    "/admin",
    "/admin/{section}",
    "/contacts",
    "/settings",
    "/settings/{section}",
    "/search",
    "/c/{conversation_id}",
    "/c/{conversation_id}/m/{message_id}",
    "/g/{slug}",
    "/threads",
    "/directory",
    "/invite/{token}",
)

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


class WebAssets:
    """Reads the client's files, and the version hash over all of them.

    Files are re-read when their size or modification time changes, so editing the client
    during development needs no restart; in production the stat calls are the only cost.
    """

    def __init__(self, web_dir: Path = WEB_DIR) -> None:
        self.web_dir = web_dir
        self.static_dir = web_dir / "static"
        self._cache: dict[Path, tuple[tuple[int, int], Asset]] = {}
        self._version: tuple[tuple[tuple[str, int, int], ...], str] | None = None

    def version(self) -> str:
        files = sorted(p for p in self.static_dir.rglob("*") if p.is_file())
        signature = tuple(
            (str(p.relative_to(self.static_dir)), p.stat().st_size, p.stat().st_mtime_ns)
            for p in files
        )
        if self._version is None or self._version[0] != signature:
            digest = hashlib.sha256()
            for path in files:
                digest.update(str(path.relative_to(self.static_dir)).encode() + b"\0")
                digest.update(self.read(path).etag.encode())
            self._version = (signature, digest.hexdigest()[:12])
        return self._version[1]

    def read(self, path: Path) -> Asset:
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is None or cached[0] != key:
            body = path.read_bytes()
            content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            cached = (key, Asset(body, content_type, etag))
            self._cache[path] = cached
        return cached[1]

    def static_file(self, relative: str) -> Path | None:
        """The file for a ``/static/`` path, or None for anything unsafe or missing."""
        segments = relative.split("/")
        if not segments or not all(SAFE_SEGMENT.fullmatch(s) for s in segments):
            return None
        path = self.static_dir.joinpath(*segments)
        if path.suffix.lower() not in CONTENT_TYPES or not path.is_file():
            return None
        resolved = path.resolve()
        if not resolved.is_relative_to(self.static_dir.resolve()):
            return None
        return resolved

    def index(self) -> bytes:
        html = (self.web_dir / "index.html").read_text(encoding="utf-8")
        return html.replace('"/static/', f'"/static/{self.version()}/').encode()


def _assets(request: Request) -> WebAssets:
    assets: WebAssets | None = getattr(request.app.state, "web_assets", None)
    if assets is None:
        assets = WebAssets()
        request.app.state.web_assets = assets
    return assets


def _not_modified(request: Request, etag: str) -> bool:
    wanted = request.headers.get("if-none-match", "")
    return any(tag.strip() in (etag, f"W/{etag}", "*") for tag in wanted.split(","))


async def page(request: Request) -> Response:
    """Every page URL gets the same document; the client routes on the path."""
    body = _assets(request).index()
    headers = {"Cache-Control": REVALIDATE}
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


# Paths that are never pages: a miss under them is the API's JSON 404 whatever was asked.
NON_PAGE_PREFIXES = ("/api/", "/static/", "/ws", "/hooks/", "/openapi.json", "/docs", "/metrics")


def not_found_page(request: Request) -> Response | None:
    """The app's page with status 404 for a browser asking for a page that does not exist
    (a mistyped or outdated link), or None when the JSON error is the right answer."""
    path = request.url.path
    if request.method not in ("GET", "HEAD") or path.startswith(NON_PAGE_PREFIXES):
        return None
    if "text/html" not in request.headers.get("accept", ""):
        return None
    body = _assets(request).index()
    headers = {"Cache-Control": REVALIDATE}
    return Response(body, status_code=404, media_type="text/html; charset=utf-8", headers=headers)


for _path in PAGE_PATHS:
    router.add_api_route(_path, page, methods=["GET", "HEAD"], name=f"web:{_path}")


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
async def static(path: str, request: Request) -> Response:
    assets = _assets(request)
    version, _, rest = path.partition("/")
    cache_control = REVALIDATE
    if VERSION_PATTERN.fullmatch(version) and rest:
        path = rest
        if version == assets.version():
            cache_control = IMMUTABLE
    file = assets.static_file(path)
    if file is None:
        raise NotFound("No such file")
    asset = assets.read(file)
    headers = {"Cache-Control": cache_control, "ETag": asset.etag}
    if _not_modified(request, asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


@router.api_route("/sw.js", methods=["GET", "HEAD"])
async def service_worker(request: Request) -> Response:
    """The service worker, at the root so that its scope is the whole app (a worker under
    /static/<version>/ would be a new worker at every deploy). Always revalidated: browsers
    check it for updates themselves."""
    assets = _assets(request)
    file = assets.static_file("sw.js")
    if file is None:
        raise NotFound("No such file")
    asset = assets.read(file)
    headers = {"Cache-Control": REVALIDATE, "ETag": asset.etag, "Service-Worker-Allowed": "/"}
    return Response(asset.body, media_type=asset.content_type, headers=headers)


@router.api_route("/offline", methods=["GET", "HEAD"])
async def offline_page(request: Request) -> Response:
    """The page the service worker shows for a navigation without a network."""
    body = (_assets(request).web_dir / "offline.html").read_bytes()
    return Response(body, media_type="text/html; charset=utf-8", headers={"Cache-Control": REVALIDATE})


@router.get("/favicon.ico")
async def favicon(request: Request) -> Response:
    file = _assets(request).static_file("icon.svg")
    if file is None:
        raise NotFound("No such file")
    asset = _assets(request).read(file)
    headers = {"Cache-Control": "public, max-age=86400"}
    return Response(asset.body, media_type=asset.content_type, headers=headers)
