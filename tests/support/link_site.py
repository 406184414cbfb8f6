"""A small web site on a free loopback port that counts what it served: the stand-in for
the web in link preview tests (no internet here; sockets and HTTP are real)."""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from tests.support.attachment_helpers import png_claiming_size


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, format="PNG")
    return out.getvalue()


ARTICLE = """<!doctype html><html><head>
<meta charset="utf-8"><title>Fallback title</title>
<meta property="og:title" content="Parley &amp; friends ship 2.0">
<meta property="og:description" content="  Threads, pins   and a faster   gateway. ">
<meta property="og:site_name" content="The Parley Blog">
<meta property="og:image" content="/pic.png">
</head><body><h1>ignored</h1><meta property="og:title" content="not this"></body></html>"""


class Site:
    """A small web site on a free loopback port that counts what it served."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.pages: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
            "/article": (200, "text/html; charset=utf-8", ARTICLE.encode(), {}),
            "/pic.png": (200, "image/png", png(1200, 630), {}),
            "/title-only": (200, "text/html", b"<html><head><title>Just a title</title></head></html>", {}),
            "/plain": (200, "text/plain", b"og:title is not here", {}),
            "/missing": (404, "text/html", b"<title>Not found</title>", {}),
            "/moved": (302, "text/html", b"", {"Location": "/article"}),
            "/huge": (200, "text/html", b"<html><head><title>big</title>" + b" " * 1_000_000, {}),
            "/bomb-page": (200, "text/html", b'<head><title>Bomb</title><meta property="og:image" content="/bomb.png"></head>', {}),
            "/bomb.png": (200, "image/png", png_claiming_size(100_000, 100_000), {}),
        }
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                site.hits[self.path] += 1
                if self.path == "/slow":
                    time.sleep(4)
                status, content_type, body, headers = site.pages.get(self.path, (404, "text/plain", b"", {}))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Set-Cookie", "tracker=1")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def site() -> Iterator[Site]:
    web = Site()
    web.thread.start()
    try:
        yield web
    finally:
        web.server.shutdown()
        web.server.server_close()
