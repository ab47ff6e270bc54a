#!/usr/bin/env python3
"""A browser-level check that front ends built for Kratos work with Sallyport.

Starts an SMTP sink (aiosmtpd), the test UI (ui.html, served on 127.0.0.1 like a Kratos front end on
its own origin) and `sallyport serve --watch-courier`, then drives Debian's Chromium with Playwright
through: registration -> verification from the post-registration redirect -> verification from the
mail link in another browser -> TOTP enrolment -> logout -> login with TOTP -> backup codes ->
recovery (with a backup code for the second factor).

Usage: drive.py <path to the sallyport binary>
"""

import email
import email.policy
import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from aiosmtpd.controller import Controller
from playwright.sync_api import expect, sync_playwright

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PASSWORD = "a-browser-test-passw0rd!"
TIMEOUT_MS = 15_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- mail

class Sink:
    """Keeps every mail; `next_to` hands them out in order per recipient."""

    def __init__(self):
        self.mails = []
        self.seen = {}
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain", "html"))
        text = part.get_content() if part else ""
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.mails.append((rcpt.lower(), msg["subject"] or "", text))
        return "250 OK"

    def next_to(self, to, within=20):
        deadline = time.time() + within
        while time.time() < deadline:
            with self.lock:
                mine = [m for m in self.mails if m[0] == to]
                n = self.seen.get(to, 0)
                if len(mine) > n:
                    self.seen[to] = len(mine)
                    return mine[-1]
            time.sleep(0.05)
        raise AssertionError(f"no mail to {to}; got {self.mails}")


def code_in(text):
    m = re.search(r"\b(\d{6})\b", text)
    assert m, f"no code in mail: {text}"
    return m.group(1)


def link_in(text, needle):
    for w in text.split():
        if w.startswith("http") and needle in w:
            return w
    raise AssertionError(f"no link with {needle} in mail: {text}")


# ---------------------------------------------------------------- TOTP (RFC 6238, SHA-1, 6 digits, 30 s)

def totp(secret_b32, at=None):
    key = __import__("base64").b32decode(secret_b32 + "=" * (-len(secret_b32) % 8), casefold=True)
    step = int((at if at is not None else time.time()) // 30)
    h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = h[-1] & 0xF
    return "%06d" % ((struct.unpack(">I", h[off:off + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def fresh_totp(secret_b32):
    """A code of the next time step: Sallyport refuses a step that was already used (no replay)."""
    return totp(secret_b32, time.time() + 30)


# ---------------------------------------------------------------- the UI's own origin

def serve_ui(port, public):
    page = open(os.path.join(HERE, "ui.html"), encoding="utf-8").read().replace("__PUBLIC__", public)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# ---------------------------------------------------------------- the server

def start_sallyport(binary, work, public_port, admin_port, ui, smtp_port, schema=None):
    public = f"http://127.0.0.1:{public_port}/"
    schema = schema or os.path.join(REPO, "crates/sallyport/tests/fixtures/email-password.schema.json")
    cfg = {
        "dsn": f"sqlite://{work}/db.sqlite?mode=rwc",
        "serve": {
            "public": {"base_url": public, "host": "127.0.0.1", "port": public_port,
                       "cors": {"enabled": True, "allowed_origins": [ui], "allow_credentials": True}},
            "admin": {"base_url": f"http://127.0.0.1:{admin_port}/", "host": "127.0.0.1", "port": admin_port},
        },
        "selfservice": {
            "default_browser_return_url": f"{ui}/welcome",
            "allowed_return_urls": [ui],
            "methods": {
                "password": {"enabled": True, "config": {"haveibeenpwned_enabled": False}},
                "totp": {"enabled": True, "config": {"issuer": "Sallyport browser test"}},
                "lookup_secret": {"enabled": True},
                "code": {"enabled": True},
            },
            "flows": {
                "error": {"ui_url": f"{ui}/error"},
                "login": {"ui_url": f"{ui}/login"},
                "registration": {"ui_url": f"{ui}/registration", "after": {
                    "password": {"hooks": [{"hook": "session"}, {"hook": "show_verification_ui"}]}}},
                "verification": {"enabled": True, "use": "code", "ui_url": f"{ui}/verification"},
                "recovery": {"enabled": True, "use": "code", "ui_url": f"{ui}/recovery"},
                "settings": {"ui_url": f"{ui}/settings", "required_aal": "highest_available"},
                "logout": {"after": {"default_browser_return_url": f"{ui}/login"}},
            },
        },
        "session": {"whoami": {"required_aal": "highest_available"}},
        "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": f"file://{schema}"}]},
        "courier": {"smtp": {"connection_uri": f"smtp://127.0.0.1:{smtp_port}/?disable_starttls=true",
                             "from_address": "no-reply@sallyport.test"},
                    "worker": {"pull_wait": "100ms"}},
        "secrets": {"cookie": ["a-browser-test-cookie-secret-xyz"], "cipher": ["browser-test-cipher-secret-32chr"]},
        "hashers": {"algorithm": "bcrypt", "bcrypt": {"cost": 4}},
        "log": {"level": "debug", "format": "text"},
    }
    path = os.path.join(work, "kratos.yml")
    with open(path, "w") as f:
        json.dump(cfg, f)  # JSON is YAML
    log = open(os.path.join(work, "server.log"), "w")
    subprocess.run([binary, "migrate", "sql", "-e", "--yes", "-c", path], check=True, stdout=log, stderr=log)
    proc = subprocess.Popen([binary, "serve", "-c", path, "--watch-courier"], stdout=log, stderr=log)
    for _ in range(200):
        try:
            if urllib.request.urlopen(f"{public}health/ready", timeout=1).status == 200:
                return proc, public.rstrip("/")
        except Exception:
            time.sleep(0.1)
    raise AssertionError("sallyport did not become ready")


# ---------------------------------------------------------------- steps

class Ui:
    def __init__(self, page, ui):
        self.page = page
        self.ui = ui

    def ready(self, path_prefix):
        """Waits until the UI at `path_prefix` rendered its flow; fails on a flow error."""
        page = self.page
        page.wait_for_url(re.compile("^" + re.escape(self.ui + path_prefix)), timeout=TIMEOUT_MS)
        page.wait_for_function(
            "document.body.getAttribute('data-ready') === '1' || document.getElementById('flow-error')",
            timeout=TIMEOUT_MS)
        err = page.locator("#flow-error")
        if err.count():
            raise AssertionError(f"{page.url}: the UI could not show the flow: {err.inner_text()}")

    def messages(self):
        return [int(x) for x in self.page.locator("[data-id]").evaluate_all(
            "els => els.filter(e => e.classList.contains('msg')).map(e => e.getAttribute('data-id'))")]

    def fill(self, name, value):
        self.page.locator(f"#flow input[name='{name}']").fill(value)

    def click(self, name, value=None):
        """Submits the form with that button and waits for the page the answer leads to."""
        sel = f"#flow button[name='{name}']" + (f"[value='{value}']" if value else "")
        with self.page.expect_navigation(timeout=TIMEOUT_MS):
            self.page.locator(sel).click()

    def whoami(self):
        self.page.goto(self.ui + "/welcome")
        self.ready("/welcome")
        w = self.page.locator("#whoami")
        return int(w.get_attribute("data-status")), w.get_attribute("data-aal"), w.get_attribute("data-email")


def register_and_verify(ui, mail, addr):
    ui.page.goto(ui.ui + "/registration")
    ui.ready("/registration?flow=")
    ui.fill("traits.email", addr)
    ui.click("method", "profile")
    ui.ready("/registration?flow=")
    ui.fill("password", "short")
    ui.click("method", "password")
    ui.ready("/registration?flow=")
    errors = ui.page.locator("#flow [data-name='password'] .msg[data-type='error']").all_inner_texts()
    assert errors, "a refused password says why, next to the password field"
    ui.fill("password", PASSWORD)
    ui.click("method", "password")
    # show_verification_ui: straight to the verification flow created at registration.
    ui.ready("/verification?flow=")
    assert 1080003 in ui.messages(), ui.messages()
    return mail.next_to(addr)


def run(binary):
    work = tempfile.mkdtemp(prefix="sallyport-browser-")
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    public_port, admin_port, ui_port = free_port(), free_port(), free_port()
    ui_origin = f"http://127.0.0.1:{ui_port}"
    proc, public = start_sallyport(binary, work, public_port, admin_port, ui_origin, smtp_port)
    ui_srv = serve_ui(ui_port, public)
    started = time.time()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

            # 1. Registration, then verification on the flow the registration created.
            alice = Ui(browser.new_context().new_page(), ui_origin)
            _, _, text = register_and_verify(alice, sink, "alice@example.org")
            alice.fill("code", code_in(text))
            alice.click("method", "code")
            alice.ready("/verification?flow=")
            assert 1080002 in alice.messages(), alice.messages()
            print("ok: registration -> verification from the post-registration redirect")

            # 2. Verification from the mail link, opened in another browser.
            bob = Ui(browser.new_context().new_page(), ui_origin)
            _, _, text = register_and_verify(bob, sink, "bob@example.org")
            other = Ui(browser.new_context().new_page(), ui_origin)
            other.page.goto(link_in(text, "code="))
            other.ready("/verification?flow=")
            assert other.page.locator("#flow input[name='code']").input_value() == code_in(text)
            other.click("method", "code")
            other.ready("/verification?flow=")
            assert 1080002 in other.messages(), other.messages()
            print("ok: verification from the mail link in another browser")

            # 3. TOTP enrolment keeps the session usable.
            alice.page.goto(ui_origin + "/settings")
            alice.ready("/settings?flow=")
            secret = alice.page.locator("#totp_secret_key").inner_text().strip()
            alice.fill("totp_code", totp(secret))
            alice.click("method", "totp")
            alice.ready("/settings?flow=")
            assert 1050001 in alice.messages(), alice.messages()
            assert alice.page.locator("#flow button[name='totp_unlink']").count() == 1
            assert alice.whoami()[:2] == (200, "aal2")
            print("ok: TOTP enrolment")

            # 4. Logout.
            alice.page.goto(ui_origin + "/settings")
            alice.ready("/settings?flow=")
            with alice.page.expect_navigation(timeout=TIMEOUT_MS):
                alice.page.locator("#logout").click()
            alice.ready("/login?flow=")
            assert alice.whoami()[0] == 401
            print("ok: logout")

            # 5. Login with password, then TOTP.
            alice.page.goto(ui_origin + "/login")
            alice.ready("/login?flow=")
            label = alice.page.locator("label[for='identifier']").inner_text()
            assert label == "E-Mail", f"identifier label from the schema title: {label!r}"
            alice.fill("identifier", "alice@example.org")
            alice.fill("password", PASSWORD)
            alice.click("method", "password")
            alice.ready("/login?flow=")
            assert 1010004 in alice.messages(), alice.messages()
            alice.fill("totp_code", "000000" if fresh_totp(secret) != "000000" else "111111")
            alice.click("method", "totp")
            alice.ready("/login?flow=")
            assert 4000008 in alice.messages(), f"a wrong code says so on the flow: {alice.messages()}"
            alice.fill("totp_code", fresh_totp(secret))
            alice.click("method", "totp")
            alice.page.wait_for_url(ui_origin + "/welcome", timeout=TIMEOUT_MS)
            assert alice.whoami()[:2] == (200, "aal2")
            print("ok: login with TOTP")

            # 6. Backup codes: generate, confirm, reveal.
            alice.page.goto(ui_origin + "/settings")
            alice.ready("/settings?flow=")
            alice.click("lookup_secret_regenerate")
            alice.ready("/settings?flow=")
            codes = alice.page.locator("code.secret[data-id='1050009']").all_inner_texts()
            assert len(codes) == 12 and all(re.fullmatch(r"[a-z0-9]{8}", c) for c in codes), codes
            alice.click("lookup_secret_confirm")
            alice.ready("/settings?flow=")
            assert 1050001 in alice.messages(), alice.messages()
            alice.click("lookup_secret_reveal")
            alice.ready("/settings?flow=")
            assert alice.page.locator("code.secret[data-id='1050009']").all_inner_texts() == codes
            print("ok: backup codes")

            # 7. Recovery in a fresh browser; the second factor is a backup code.
            carol = Ui(browser.new_context().new_page(), ui_origin)
            carol.page.goto(ui_origin + "/recovery")
            carol.ready("/recovery?flow=")
            carol.fill("email", "alice@example.org")
            carol.click("method", "code")
            carol.ready("/recovery?flow=")
            _, _, text = sink.next_to("alice@example.org")
            carol.fill("code", code_in(text))
            carol.click("method", "code")
            # Recovery issues an aal1 session; settings then ask for the second factor.
            carol.page.wait_for_url(re.compile(re.escape(ui_origin) + "/(settings|login)\\?flow="), timeout=TIMEOUT_MS)
            carol.page.wait_for_url(re.compile(re.escape(ui_origin) + "/login\\?flow="), timeout=TIMEOUT_MS)
            carol.ready("/login?flow=")
            carol.fill("lookup_secret", codes[0])
            carol.click("method", "lookup_secret")
            carol.page.wait_for_url(re.compile(re.escape(ui_origin) + "/(settings|welcome)"), timeout=TIMEOUT_MS)
            assert carol.whoami()[:2] == (200, "aal2")
            carol.page.goto(ui_origin + "/settings")
            carol.ready("/settings?flow=")
            carol.fill("password", "a-new-browser-passw0rd!")
            carol.click("method", "password")
            carol.ready("/settings?flow=")
            assert 1050001 in carol.messages(), carol.messages()
            print("ok: recovery")

            browser.close()
        print(f"browser flows passed in {time.time() - started:.1f}s")
    except BaseException:
        print(open(os.path.join(work, "server.log")).read()[-20000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        controller.stop()
        ui_srv.shutdown()


if __name__ == "__main__":
    run(sys.argv[1])
