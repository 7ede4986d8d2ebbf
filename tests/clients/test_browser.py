"""A real browser: headless Chromium loads nats.ws from a page and talks to trionats over WebSocket.

Skipped when Chromium is not installed (Debian: `apt-get install chromium`). The page is served
by the test on 127.0.0.1; the websocket listener only allows that origin, so the browser's
Origin header is checked too. A nats-py client on the TCP port answers the page's requests.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from tests.helpers import TrionatsProcess, free_port

JS_DIR = Path(__file__).parent.parent / "js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>trionats in a browser</title>
<script type="module">
import { connect, headers, StringCodec } from "/nats.js";
const sc = StringCodec();
const results = [];
async function report(extra) {
  await fetch("/result", { method: "POST", body: JSON.stringify({ results, ...extra }) });
}
try {
  const nc = await connect({ servers: "ws://127.0.0.1:WS_PORT", name: "chromium" });
  const other = await connect({ servers: "ws://127.0.0.1:WS_PORT" });

  const sub = nc.subscribe("browser.>", { max: 2 });
  await nc.flush();
  other.publish("browser.a", sc.encode("one"));
  other.publish("browser.b", sc.encode("two"));
  const got = [];
  for await (const m of sub) got.push(`${m.subject}=${sc.decode(m.data)}`);
  if (got.join(",") === "browser.a=one,browser.b=two") results.push("pubsub");

  const reply = await nc.request("tcp.upper", sc.encode("from chromium"), { timeout: 5000 });
  if (sc.decode(reply.data) === "FROM CHROMIUM") results.push("request-reply");

  const hsub = nc.subscribe("browser.hdr", { max: 1 });
  await nc.flush();
  const h = headers();
  h.set("X-Browser", "chromium");
  other.publish("browser.hdr", sc.encode("with headers"), { headers: h });
  for await (const m of hsub) {
    if (m.headers.get("X-Browser") === "chromium") results.push("headers");
  }
  await nc.drain();
  await other.drain();
  await report({});
} catch (error) {
  await report({ error: String(error) });
}
</script>
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    page = b""
    results: list = []

    def do_GET(self):
        if self.path == "/":
            body, kind = self.page, "text/html"
        elif self.path == "/nats.js":
            body = (JS_DIR / "node_modules" / "nats.ws" / "esm" / "nats.js").read_bytes()
            kind = "text/javascript"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.results.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_nats_ws_in_chromium(tmp_path):
    import nats

    if not (JS_DIR / "node_modules" / "nats.ws").is_dir():
        pytest.fail("nats.ws is not installed: run `make test` (it runs npm ci in tests/js)")
    ws_port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    page_port = httpd.server_address[1]
    _Handler.page = PAGE.replace("WS_PORT", str(ws_port)).encode()
    _Handler.results = []
    config = Path(tempfile.mkstemp(prefix="browser-", suffix=".conf")[1])
    config.write_text(
        f"websocket {{ host: 127.0.0.1, port: {ws_port}, no_tls: true,\n"
        f'  allowed_origins: ["http://127.0.0.1:{page_port}"] }}\n'
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with TrionatsProcess("-c", str(config)) as server:

            async def main():
                nc = await nats.connect(server.url, allow_reconnect=False)

                async def upper(msg):
                    await msg.respond(msg.data.upper())

                await nc.subscribe("tcp.upper", cb=upper)
                await nc.flush()
                browser = await asyncio.create_subprocess_exec(
                    CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"http://127.0.0.1:{page_port}/",
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                try:
                    for _ in range(600):  # 60 s
                        if _Handler.results:
                            break
                        await asyncio.sleep(0.1)
                finally:
                    browser.kill()
                    await browser.wait()
                    await nc.close()

            asyncio.run(main())
            assert _Handler.results == [{"results": ["pubsub", "request-reply", "headers"]}], (
                _Handler.results, server.log()
            )
    finally:
        httpd.shutdown()
        httpd.server_close()
