"""What decoding an image may cost, with real crafted images (media.images, media.image_workers).

- pixels over all frames of an animation are bounded: a 5 KB GIF of fifty 2000x2000 frames
  (200 megapixels to decode and re-encode; the adversarial pass measured 19.7 s of CPU and
  827 MB) is refused;
- samples deeper than 8 bits count double: a 36-megapixel 16-bit PNG (708 MB in that pass)
  is refused, a small one is processed;
- decoding runs in worker processes under an address-space cap and a time limit: an image
  that needs more memory or time than allowed is refused, the worker is replaced, the
  next upload works, and the server process's own peak memory does not grow by what the
  image needed.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import struct
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image

from parley.container import Container
from tests.conftest import make_user
from tests.support.attachment_helpers import png_bytes, upload, upload_ok

pytestmark = pytest.mark.usefixtures("backend")


def many_large_frames_gif(frames: int = 50, size: int = 2000) -> bytes:
    """Frames that differ by one pixel each (identical frames would be merged): tiny on
    disk, ``frames`` x ``size``² pixels to decode."""
    images = []
    for i in range(frames):
        frame = Image.new("P", (size, size), 0)
        frame.putpixel((i, i), 1)
        images.append(frame)
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    return out.getvalue()


def png16_grey(width: int, height: int) -> bytes:
    """A 16-bit greyscale PNG, written by hand (Pillow decodes it as mode I;16)."""
    row = b"\x00" + b"\x12\x34" * width
    raw = zlib.compress(row * height, 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def big_png(width: int = 7000, height: int = 6400) -> bytes:
    """45 megapixels (under the 50 MP limit): about a second and 500 MB to process."""
    image = Image.new("RGB", (width, height), (10, 120, 200))
    image.putpixel((5, 5), (0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def peak_rss_kib_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_animation_pixels_are_bounded_over_all_frames(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    crafted = many_large_frames_gif()
    assert len(crafted) < 200_000
    response = await upload(client, alice, crafted, "frames.gif", "image/gif")
    assert response.status_code == 413 and code(response) == "IMAGE_TOO_LARGE", response.text
    assert "frames" in response.json()["error"]["message"]
    small = await upload_ok(client, alice, many_large_frames_gif(frames=5, size=200), "ok.gif", "image/gif")
    assert small["kind"] == "image"


async def test_deep_samples_count_double(client: httpx.AsyncClient) -> None:
    alice = await make_user(client, "alice")
    response = await upload(client, alice, png16_grey(6000, 6000), "deep.png", "image/png")
    assert response.status_code == 413 and code(response) == "IMAGE_TOO_LARGE", response.text
    small = await upload_ok(client, alice, png16_grey(800, 600), "small.png", "image/png")
    assert (small["width"], small["height"]) == (800, 600)
    assert {v for v in small["variants"]} >= {"original", "thumb320"}


@pytest.mark.settings(image_worker_memory_mb=300)
async def test_an_image_needing_more_memory_than_a_worker_has_is_refused(
    client: httpx.AsyncClient, container: Container
) -> None:
    alice = await make_user(client, "alice")
    response = await upload(client, alice, big_png(), "big.png", "image/png")
    assert response.status_code == 413 and code(response) == "IMAGE_TOO_LARGE", response.text
    assert "memory" in response.json()["error"]["message"]
    assert (await upload_ok(client, alice, png_bytes(), "next.png"))["kind"] == "image"


@pytest.mark.settings(image_worker_timeout_seconds=2.0, image_processing_concurrency=1)
async def test_an_image_taking_too_long_is_refused_and_its_worker_replaced(
    client: httpx.AsyncClient, container: Container
) -> None:
    """24 frames of 2000x2000 (96 MP, within the pixel limits) take several seconds to
    re-encode (7.5 s on an idle core here): past the 2 s limit, the worker is killed."""
    alice = await make_user(client, "alice")
    assert (await upload_ok(client, alice, png_bytes(), "warm.png"))["kind"] == "image"
    before = set(container.uploads.image_workers.worker_pids())
    slow = many_large_frames_gif(frames=24)
    response = await upload(client, alice, slow, "slow.gif", "image/gif")
    assert response.status_code == 413 and code(response) == "IMAGE_TOO_LARGE", response.text
    assert "longer than" in response.json()["error"]["message"]
    assert (await upload_ok(client, alice, png_bytes(), "next.png"))["kind"] == "image"
    after = set(container.uploads.image_workers.worker_pids())
    assert before and after and not before & after  # the overrunning worker is gone


async def test_the_server_process_does_not_hold_what_decoding_needed(client: httpx.AsyncClient) -> None:
    """A 45-megapixel image (about 500 MB to process) is processed in a worker: this
    process's peak memory grows by far less than that."""
    alice = await make_user(client, "alice")
    data = big_png()
    peak_rss_kib_reset()
    before = peak_rss_kib()
    processed = await upload_ok(client, alice, data, "big.png", "image/png")
    assert (processed["width"], processed["height"]) == (7000, 6400)
    assert peak_rss_kib() - before < 150 * 1024


async def test_a_worker_that_died_is_replaced(client: httpx.AsyncClient, container: Container) -> None:
    """A worker killed from outside (as the kernel's OOM killer would) is replaced: the
    next images are processed by a new one."""
    alice = await make_user(client, "alice")
    assert (await upload_ok(client, alice, png_bytes(), "warm.png"))["kind"] == "image"
    workers = container.uploads.image_workers
    victims = set(workers.worker_pids())
    assert victims
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    for pid in victims:
        await wait_until_gone(pid)
    for name in ("after1.png", "after2.png", "after3.png"):
        assert (await upload_ok(client, alice, png_bytes(), name))["kind"] == "image"
    assert not victims & set(workers.worker_pids())


async def wait_until_gone(pid: int, timeout: float = 10.0) -> None:
    """Until ``pid`` has exited (a zombie counts as gone)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except (FileNotFoundError, ProcessLookupError):  # reaped between open and read
            return
        if state in {"Z", "X"}:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"worker {pid} still running")
