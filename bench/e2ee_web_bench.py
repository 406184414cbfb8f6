"""What the web client's end-to-end encryption extras cost in the browser (Chromium):

- the local search index of decrypted messages (static/e2ee/search_index.js): filing a
  message (blinding its terms and sealing its text), and searching ``--messages`` of them
  for a word, a prefix, a CJK substring and two words;
- a safety number (static/e2ee/safety.js: 2 x 5,200 SHA-512 rounds through WebCrypto),
  computed once per set of keys (e2ee/trust.js caches it).

One ``parley serve`` on SQLite serves the page; nothing is sent to it (the modules run on
the login page). Times are medians of wall time in the page (performance.now()).

    python bench/e2ee_web_bench.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.browser_helpers import CHROMIUM, CHROMIUM_ARGS, SERVER_ENV  # noqa: E402
from tests.support.free_ports import free_port  # noqa: E402
from tests.support.server_process import ServerProcess  # noqa: E402

MEASURE = """async ([count]) => {
  const app = [...document.scripts].map((s) => s.src).find((s) => s.includes("/static/"));
  const base = app.replace(/app\\.js.*$/, "");
  const index = await import(base + "e2ee/search_index.js");
  const safety = await import(base + "e2ee/safety.js");
  const words = ["deploy", "release", "meeting", "quarterly", "numbers", "review", "coffee",
    "naïve", "résumé", "東京タワーに行く", "北京欢迎你", "server", "client", "notes", "party"];
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const user = "bench-" + Math.random().toString(16).slice(2);
  const adds = [];
  for (let i = 0; i < count; i++) {
    const text = Array.from({ length: 12 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(" ") + ` n${i}`;
    const at = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
    const started = performance.now();
    const id = `m${String(i).padStart(8, "0")}`; // time-ordered, as the server's ids
    await index.add(user, { id, conversation_id: "c", sender_id: "s", created_at: at, content: text });
    adds.push(performance.now() - started);
  }
  const searches = {};
  for (const q of ["quarterly", "quart*", "タワー", "deploy coffee", "n4999"]) {
    const times = [];
    let found = 0;
    for (let k = 0; k < 5; k++) {
      const started = performance.now();
      found = (await index.search(user, q)).length;
      times.push(performance.now() - started);
    }
    searches[q] = { ms: median(times), results: found };
  }
  const keys = () => crypto.getRandomValues(new Uint8Array(32));
  const numbers = [];
  for (let k = 0; k < 3; k++) {
    const started = performance.now();
    await safety.safetyNumber("01USERA", [keys(), keys()], "01USERB", [keys()]);
    numbers.push(performance.now() - started);
  }
  await index.forget(user);
  return { add_ms: median(adds), searches, safety_number_ms: median(numbers) };
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = SERVER_ENV | {
            "PARLEY_DATABASE_URL": f"sqlite:///{root / 'parley.db'}",
            "PARLEY_DATA_DIR": str(root / "data"),
        }
        with ServerProcess(port, env, root) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(server.base_url + "/login")
            result: dict[str, Any] = page.evaluate(MEASURE, [args.messages])
            browser.close()
    print(json.dumps({"messages": args.messages} | result, indent=2))


if __name__ == "__main__":
    main()
