#!/usr/bin/env python3
"""Takes the README's screenshots of every page, at 1280x800 and 360x740, in English and Russian.

    cargo build --release && python3 docs/screenshots/shoot.py [--out docs/screenshots]

Starts `target/release/webcall` on a free port (dev mode, a temporary SQLite file, the embedded
relay), registers three people through the API, makes two rooms with access rules and drives headless Chromium (`chromedriver`,
fake camera and microphone) over plain WebDriver HTTP, so it needs nothing but Python 3, Chromium
and chromedriver. The phone size is a real 360 px viewport (Chromium's window cannot be made
narrower than 500 px, so the DevTools device metrics are overridden). The call pages show people
from the demo mode (`?demo=call`, canvas "cameras") as well as a real two-person call.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSWORD = "correct horse battery staple"
SECRET = "screenshot-registration-secret"
SIZES = {"desktop": (1280, 800), "phone": (360, 740)}
FILE_LIMIT = 10 * 1024 * 1024  # the server's largest file here, so "too big" is quick to show


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, json.loads(raw) if raw else None


class Browser:
    """One headless Chromium through chromedriver's W3C WebDriver endpoint."""

    def __init__(self, driver):
        self.driver = driver
        self.profile = tempfile.mkdtemp(prefix="shots-profile-")
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                     "--autoplay-policy=no-user-gesture-required", "--hide-scrollbars",
                     "--window-size=1280,800", f"--user-data-dir={self.profile}",
                     "--force-device-scale-factor=1", "--lang=en"]}}}}
        _, r = http("POST", f"{driver}/session", caps)
        self.sid = r["value"]["sessionId"]
        self.base = f"{driver}/session/{self.sid}"

    def cmd(self, method, path, body=None):
        status, r = http(method, f"{self.base}{path}", body)
        if status != 200:
            raise RuntimeError(f"{path}: {r}")
        return r["value"]

    def size(self, name):
        w, h = SIZES[name]
        self.cmd("POST", "/goog/cdp/execute", {"cmd": "Emulation.setDeviceMetricsOverride", "params": {
            "width": w, "height": h, "deviceScaleFactor": 1, "mobile": name == "phone"}})

    def goto(self, url):
        self.cmd("POST", "/url", {"url": url})

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait(self, what, script, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                v = self.js(script)
                if v:
                    return v
            except RuntimeError:
                pass  # a navigation in progress
            time.sleep(0.2)
        raise RuntimeError(f"never true: {what}")

    def click(self, selector):
        self.wait(selector, f"const e = document.querySelector({json.dumps(selector)}); "
                            "if (!e || e.offsetParent === null) return false; e.click(); return true;")

    def shot(self, path):
        import base64
        time.sleep(1.2)  # let transitions and re-layouts settle
        png = self.cmd("GET", "/screenshot")
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))
        print("wrote", os.path.relpath(path, ROOT))

    def quit(self):
        try:
            http("DELETE", self.base)
        except Exception:
            pass


class Server:
    """The release binary on a free port, with a throw-away data directory."""

    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="shots-server-")
        self.port = free_port()
        env = dict(os.environ, APP_ENV="dev", HOST="127.0.0.1", PORT=str(self.port),
                   DATABASE_URL=f"sqlite://{self.dir}/webcall.db",
                   REGISTRATION_SECRET=SECRET, JWT_SECRET="s" * 48, TURN_SECRET="t" * 48,
                   TURN_LISTEN=f"127.0.0.1:{free_port()}", TURN_PUBLIC_IP="127.0.0.1",
                   TURN_ALLOW_LOOPBACK_PEERS="true", METRICS_LISTEN="off", RUST_LOG="warn",
                   ATTACHMENT_MAX_BYTES=str(FILE_LIMIT), ATTACHMENT_DIR=f"{self.dir}/attachments")
        env.pop("REDIS_URL", None)
        self.log = open(os.path.join(self.dir, "webcall.log"), "w")
        self.proc = subprocess.Popen([binary], env=env, stdout=self.log, stderr=self.log)
        self.origin = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                if http("GET", f"{self.origin}/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not start; see {self.dir}/webcall.log")

    def token(self, name):
        http("POST", f"{self.origin}/api/v1/auth/register", {
            "email": f"{name}@example.org", "username": name, "password": PASSWORD, "secret": SECRET})
        status, body = http("POST", f"{self.origin}/api/v1/auth/login", {"username": name, "password": PASSWORD})
        assert status == 200, body
        return body

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def png(width, height):
    """A small PNG (a slide with a chart) made with zlib alone, for the chat's image preview."""
    import struct
    import zlib
    rows = []
    bars = [(0.45, (14, 165, 233)), (0.7, (14, 165, 233)), (0.55, (14, 165, 233)), (0.9, (124, 58, 237)), (0.62, (14, 165, 233))]
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            c = (248, 250, 252)
            if y < height * 0.2 and width * 0.08 < x < width * 0.6 and height * 0.08 < y < height * 0.14:
                c = (30, 41, 59)  # the title
            for i, (v, colour) in enumerate(bars):
                left = width * (0.1 + i * 0.16)
                if left <= x < left + width * 0.1 and height * (0.92 - v * 0.65) <= y < height * 0.92:
                    c = colour
            row += bytes(c)
        rows.append(bytes(row))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


def upload(origin, room, login, name, content_type, data):
    """Shares a file in a room's chat as `login` (POST /api/v1/rooms/{room}/attachments)."""
    from urllib.parse import quote
    req = urllib.request.Request(f"{origin}/api/v1/rooms/{room}/attachments?name={quote(name)}", data=data,
                                 method="POST")
    req.add_header("Content-Type", content_type)
    req.add_header("Authorization", f"Bearer {login['access_token']}")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 201, r.status


# In the page: a file of arguments[1] bytes named arguments[0] dropped onto the chat (as a drag from
# the desktop would), for the rows of files being sent.
DROP = """const [name, size, type] = arguments; const dt = new DataTransfer();
dt.items.add(new File([new Uint8Array(size)], name, { type }));
for (const t of ['dragenter', 'dragover', 'drop']) document.querySelector('[data-testid=chat-log]')
  .dispatchEvent(new DragEvent(t, { bubbles: true, cancelable: true, dataTransfer: dt }));"""


def sign_in(browser, origin, login, lang):
    """Puts the language and a token in the page's localStorage, as the sign-in page would."""
    browser.goto(f"{origin}/static/auth.html")
    browser.js("localStorage.setItem('webcall.lang', arguments[0]);"
               "if (arguments[1]) { localStorage.setItem('webcall.token', arguments[1]);"
               " localStorage.setItem('webcall.token_exp', String(Date.now() + arguments[2] * 1000)); }"
               " else { localStorage.removeItem('webcall.token'); localStorage.removeItem('webcall.token_exp'); }",
               lang, login["access_token"] if login else None, login["expires_in"] if login else 0)


def in_call(browser, origin, room):
    browser.goto(f"{origin}/r/{room}")
    browser.click("[data-testid=prejoin-join]")
    browser.wait("in the call", "return !document.querySelector('[data-testid=call-view]').hidden;")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "screenshots"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "webcall"))
    ap.add_argument("--only", help="shoot only scenes whose name contains this")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    server = Server(args.binary)
    driver_port = free_port()
    driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(1)
    drv = f"http://127.0.0.1:{driver_port}"
    ada, bob = server.token("ada"), server.token("bob")
    origin = server.origin
    # Bob sits in the room the whole time, so ada's pre-join and call have somebody in them.
    guest = Browser(drv)
    sign_in(guest, origin, bob, "en")
    in_call(guest, origin, "team-standup")
    guest.js("document.querySelector('[data-testid=chat-input]') && 0")

    # Who may enter: ada's "vault" has a password; her "board" asks newcomers to wait for her.
    http("POST", f"{origin}/api/v1/rooms", {"name": "vault", "password": "open sesame"}, ada["access_token"])
    http("POST", f"{origin}/api/v1/rooms", {"name": "board", "ask_to_join": True}, ada["access_token"])
    # Files in "design-review"'s chat: Bob's slide (a preview) and ada's PDF.
    http("POST", f"{origin}/api/v1/rooms", {"name": "design-review"}, ada["access_token"])
    upload(origin, "design-review", bob, "roadmap-slide.png", "image/png", png(960, 540))
    upload(origin, "design-review", ada, "Q3 release plan — final (v7).pdf", "application/pdf",
           b"%PDF-1.4\n" + bytes(2_400_000))

    shooter = Browser(drv)
    try:
        for lang in ("en", "ru"):
            for size in SIZES:
                def shot(name, lang=lang, size=size):
                    suffix = "" if (lang, size) == ("en", "desktop") else f"-{lang}-{size}"
                    shooter.shot(os.path.join(args.out, f"{name}{suffix}.png"))

                def want(name):
                    return not args.only or args.only in name

                shooter.size(size)
                sign_in(shooter, origin, None, lang)
                if want("auth"):
                    shooter.goto(f"{origin}/static/auth.html")
                    shooter.wait("auth page", "return !!document.querySelector('[data-testid=login-form]');")
                    shot("auth")
                sign_in(shooter, origin, ada, lang)
                if want("lobby"):
                    shooter.goto(f"{origin}/static/index.html")
                    shooter.wait("lobby", "return !document.querySelector('[data-testid=lobby]').hidden"
                                 " && document.querySelectorAll('[data-testid=room-item]').length > 0;")
                    shot("lobby")
                if want("prejoin"):
                    shooter.goto(f"{origin}/r/team-standup")
                    shooter.wait("pre-join", "const w = document.querySelector('[data-testid=prejoin-who]');"
                                 " return w && w.dataset.state === 'people';")
                    shooter.wait("preview", "const v = document.querySelector('[data-testid=prejoin-video]');"
                                 " return v && v.videoWidth > 0;")
                    shot("prejoin")
                if want("call"):
                    in_call(shooter, origin, "team-standup")
                    shooter.wait("bob's video", "const t = document.querySelector('[data-testid=remote-tile]');"
                                 " return t && t.dataset.showVideo === 'true';")
                    shot("call")
                    if shooter.js("return document.querySelector('[data-testid=chat-panel]').hidden;"):
                        shooter.click("[data-testid=toggle-chat]")
                    shooter.js("const i = document.querySelector('[data-testid=chat-input]');"
                               "i.value = arguments[0]; i.form.requestSubmit();",
                               "Hi Bob! Can you see my screen?" if lang == "en" else "Привет! Видно мой экран?")
                    shooter.wait("chat", "return document.querySelectorAll('[data-testid=chat-message]').length > 0;")
                    shot("call-chat")
                    if size == "phone":
                        shooter.click("[data-testid=chat-close]")
                    shooter.click("[data-testid=open-settings]")
                    shooter.wait("settings", "return document.querySelector('[data-testid=settings-dialog]').open;")
                    shot("call-settings")
                    shooter.click("[data-testid=settings-close]")
                    shooter.click("[data-testid=leave]")
                    shooter.wait("left view", "return !document.querySelector('[data-testid=left-view]').hidden;")
                    shot("call-left")
                if want("chat-files"):
                    # The chat of a call with files: a preview, a PDF, a file being sent (the upload
                    # slowed down by DevTools) and one refused as too big.
                    in_call(shooter, origin, "design-review")
                    if shooter.js("return document.querySelector('[data-testid=chat-panel]').hidden;"):
                        shooter.click("[data-testid=toggle-chat]")
                    shooter.wait("preview", "const i = document.querySelector('[data-testid=file-preview]');"
                                 " return !!i && i.complete && i.naturalWidth > 0;")
                    shooter.js(DROP, "all-recordings.zip", FILE_LIMIT + (4 << 20), "application/zip")
                    shooter.wait("refused", "return !!document.querySelector('[data-testid=upload-row][data-state=failed]');")
                    shooter.cmd("POST", "/goog/cdp/execute", {"cmd": "Network.enable", "params": {}})
                    shooter.cmd("POST", "/goog/cdp/execute", {"cmd": "Network.emulateNetworkConditions", "params": {
                        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 300_000}})
                    shooter.js(DROP, "standup-recording.mp4", 8_800_000, "video/mp4")
                    shooter.wait("sending", "const b = document.querySelector('[data-testid=upload-row][data-state=uploading]"
                                 " [data-testid=upload-progress]'); return !!b && b.value > 25;")
                    shot("chat-files")
                    shooter.click("[data-testid=upload-row][data-state=uploading] [data-testid=upload-cancel]")
                    shooter.click("[data-testid=upload-dismiss]")
                    shooter.cmd("POST", "/goog/cdp/execute", {"cmd": "Network.emulateNetworkConditions", "params": {
                        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}})
                    shooter.click("[data-testid=leave]")
                if want("access"):
                    # Bob is asked for vault's password, then waits in board's lobby (ada is not
                    # there: "waiting for the host"); ada, in board, opens its Room access dialog.
                    sign_in(shooter, origin, bob, lang)
                    shooter.goto(f"{origin}/r/vault")
                    shooter.wait("password prompt", "const i = document.querySelector('[data-testid=room-password]');"
                                 " return !!i && i.offsetParent !== null;")
                    shot("prejoin-password")
                    in_call(shooter, origin, "board")
                    shooter.wait("lobby", "return !document.querySelector('[data-testid=lobby-waiting]').hidden;")
                    shot("call-lobby-waiting")
                    shooter.click("[data-testid=lobby-cancel]")
                    sign_in(shooter, origin, ada, lang)
                    in_call(shooter, origin, "board")
                    shooter.js("document.querySelector('[data-testid=room-access-open]').click();")
                    shooter.wait("room access", "const d = document.querySelector('[data-testid=access-dialog]');"
                                 " return !!d && d.open && document.querySelectorAll('[data-testid=access-level] option').length === 3;")
                    time.sleep(0.5)
                    shot("call-room-access")
                    shooter.click("[data-testid=access-close]")
                    shooter.click("[data-testid=leave]")
                if want("demo"):
                    demo = f"http://localhost:{server.port}/static/index.html?demo=call"
                    shooter.goto(demo)
                    shooter.js("localStorage.setItem('webcall.lang', arguments[0])", lang)
                    for name, query, key in (("call-grid-9", "&peers=8", None),
                                             ("call-speaker", "&peers=6&view=speaker&present=1", None),
                                             ("call-people", "&peers=5", "p"),
                                             ("call-shortcuts", "&peers=3", "?")):
                        shooter.goto(demo + query)
                        shooter.wait("demo call", "return document.querySelectorAll('[data-testid=remote-tile]').length > 0;")
                        time.sleep(1)
                        if key:
                            shooter.js("document.body.dispatchEvent(new KeyboardEvent('keydown',"
                                       " {key: arguments[0], bubbles: true}));", key)
                        shot(name)
                if want("guest"):
                    # The host's "Invite guests" dialog, then the link opened as a guest (the pass is
                    # per tab, sessionStorage), its pre-join, the call with the badge, and a dead link.
                    in_call(shooter, origin, "team-standup")
                    if shooter.js("return document.querySelector('[data-testid=people-panel]').hidden;"):
                        shooter.click("[data-testid=toggle-people]")
                    shooter.wait("invite button", "const b = document.querySelector('[data-testid=invite-guests]');"
                                 " return !!b && b.offsetParent !== null;")
                    shooter.js("document.querySelector('[data-testid=invite-guests]').click();")
                    shooter.click("[data-testid=invite-create]")
                    shooter.wait("link made", "return !!document.querySelector('[data-testid=invite-url]').value;")
                    shot("call-invite")
                    url = shooter.js("return document.querySelector('[data-testid=invite-url]').value;")
                    shooter.click("[data-testid=invite-close]")
                    shooter.click("[data-testid=leave]")
                    shooter.goto(url)
                    shooter.wait("guest landing", "return !document.querySelector('[data-testid=guest-form]').hidden;")
                    shooter.js("document.querySelector('[data-testid=guest-name]').value = arguments[0];",
                               "Anna K." if lang == "en" else "Анна К.")
                    shot("guest-landing")
                    shooter.click("[data-testid=guest-submit]")
                    shooter.wait("guest pre-join", "const v = document.querySelector('[data-testid=prejoin-video]');"
                                 " return !document.querySelector('[data-testid=prejoin]').hidden && v.videoWidth > 0;")
                    shot("guest-prejoin")
                    shooter.click("[data-testid=prejoin-join]")
                    shooter.wait("guest in the call", "return !!document.querySelector('[data-testid=local-tile]"
                                 " [data-testid=guest-badge]') && !!document.querySelector('[data-testid=remote-tile]');")
                    shot("guest-call")
                    shooter.js("sessionStorage.clear();")
                    shooter.goto(f"{origin}/join#{'0' * 64}")
                    shooter.wait("dead link", "return !document.querySelector('[data-testid=guest-problem]').hidden;")
                    shot("guest-bad-link")
                if want("404"):
                    shooter.goto(f"{origin}/r/team%20call!")
                    shooter.wait("room 404", "return !!document.querySelector('[data-testid=not-found]');")
                    shot("room-404")
                if want("admin"):
                    # ada registered first: she is the admin. Bob is in a call (live calls).
                    for tab in ("users", "rooms", "calls", "turn", "keys", "audit"):
                        shooter.goto("about:blank")  # a fresh load, not just a new fragment
                        shooter.goto(f"{origin}/admin#{tab}")
                        shooter.wait(f"admin {tab}", "const p = document.querySelector"
                                     f"('[data-testid=admin-panel-{tab}]'); return p && !p.hidden"
                                     " && p.children.length > 0 && !p.querySelector('[aria-busy=true]');")
                        shot(f"admin-{tab}")
                    shooter.goto(f"{origin}/admin#users")
                    shooter.click("[data-testid=user-row][data-username=bob] [data-testid=user-reset]")
                    shooter.click("[data-testid=confirm-ok]")
                    shooter.wait("reset link", "return !!document.querySelector('[data-testid=reset-link-dialog]');")
                    shot("admin-reset-link")
                    link = shooter.js("return document.querySelector('[data-testid=reset-link-url]').value;")
                    sign_in(shooter, origin, None, lang)
                    shooter.goto(f"{origin}/reset#{link.split('#', 1)[1]}")
                    shooter.wait("reset page", "return !document.querySelector('[data-testid=reset-form]').hidden;")
                    shot("reset")
                    sign_in(shooter, origin, ada, lang)
                if want("check"):
                    shooter.goto(f"{origin}/check")
                    shooter.wait("check", "return document.querySelectorAll('[data-testid^=check-] strong').length > 0;")
                    time.sleep(4)
                    shot("check")
    finally:
        shooter.quit()
        guest.quit()
        driver.terminate()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
