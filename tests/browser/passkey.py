#!/usr/bin/env python3
"""Passkeys in a real browser: Debian's Chromium with a virtual authenticator (CDP
`WebAuthn.addVirtualAuthenticator`: CTAP2, internal transport, resident keys, user verification)
signs up with a passkey only and signs in with it through a Kratos-style page that loads
/.well-known/ory/webauthn.js from its script node and calls the functions the nodes name.

The page and the API are both on `localhost` (different ports, one site), as WebAuthn needs a
secure context and an RP id the page's host ends with.

Usage: passkey.py <path to the sallyport binary>
"""

import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from playwright.sync_api import sync_playwright

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 15_000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_ui(port, public):
    page = open(os.path.join(HERE, "passkey.html"), encoding="utf-8").read().replace("__PUBLIC__", public)

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


def start_sallyport(binary, work, public_port, admin_port, ui, builtin=False):
    """With `builtin`, no ui_url is set: Sallyport's own pages under /ui/ are the front end."""
    public = f"http://localhost:{public_port}/"
    schema = os.path.join(REPO, "crates/sallyport/tests/fixtures/passkey.schema.json")
    cfg = {
        "dsn": f"sqlite://{work}/db.sqlite?mode=rwc",
        "serve": {
            "public": {"base_url": public, "host": "127.0.0.1", "port": public_port,
                       "cors": {"enabled": True, "allowed_origins": [ui], "allow_credentials": True}},
            "admin": {"base_url": f"http://localhost:{admin_port}/", "host": "127.0.0.1", "port": admin_port},
        },
        "selfservice": {
            "default_browser_return_url": f"{ui}/welcome",
            "allowed_return_urls": [ui],
            "methods": {
                "password": {"enabled": False},
                "passkey": {"enabled": True, "config": {"rp": {
                    "id": "localhost", "display_name": "Sallyport browser test", "origins": [ui]}}},
            },
            "flows": {
                "error": {"ui_url": f"{ui}/error"},
                "login": {"ui_url": f"{ui}/login"},
                "registration": {"ui_url": f"{ui}/registration", "style": "unified",
                                 "after": {"passkey": {"hooks": [{"hook": "session"}]}}},
                "settings": {"ui_url": f"{ui}/settings"},
            },
        },
        "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": f"file://{schema}"}]},
        "secrets": {"cookie": ["a-browser-test-cookie-secret-xyz"]},
        "log": {"level": "debug", "format": "text"},
    }
    if builtin:
        cfg["serve"]["public"].pop("cors")
        cfg["selfservice"]["default_browser_return_url"] = public + "ui/welcome"
        cfg["selfservice"]["allowed_return_urls"] = [public]
        cfg["selfservice"]["methods"]["passkey"]["config"]["rp"]["origins"] = [public.rstrip("/")]
        for f in list(cfg["selfservice"]["flows"].values()):
            f.pop("ui_url", None)
    path = os.path.join(work, "kratos.yml")
    with open(path, "w") as f:
        json.dump(cfg, f)  # JSON is YAML
    log = open(os.path.join(work, "server.log"), "w")
    subprocess.run([binary, "migrate", "sql", "-e", "--yes", "-c", path], check=True, stdout=log, stderr=log)
    proc = subprocess.Popen([binary, "serve", "-c", path], stdout=log, stderr=log)
    for _ in range(200):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{public_port}/health/ready", timeout=1).status == 200:
                return proc, public.rstrip("/")
        except Exception:
            time.sleep(0.1)
    raise AssertionError("sallyport did not become ready")


def ready(page, url_prefix):
    page.wait_for_url(lambda u: u.startswith(url_prefix), timeout=TIMEOUT_MS)
    page.wait_for_function(
        "document.body.getAttribute('data-ready') === '1'", timeout=TIMEOUT_MS)
    err = page.locator("#flow-error")
    if err.count():
        raise AssertionError(f"{page.url}: flow error: {err.inner_text()}")


def script_loaded(page):
    page.wait_for_function(
        "document.body.getAttribute('data-script') !== null", timeout=TIMEOUT_MS)
    state = page.evaluate("document.body.getAttribute('data-script')")
    assert state == "loaded", f"webauthn.js did not load (integrity or CORS): {state}"
    assert page.evaluate("typeof window.oryPasskeyLogin === 'function'")


def whoami(page, ui):
    page.goto(ui + "/welcome")
    ready(page, ui + "/welcome")
    w = page.locator("#whoami")
    return int(w.get_attribute("data-status")), w.get_attribute("data-email"), w.get_attribute("data-methods")


def run(binary):
    work = tempfile.mkdtemp(prefix="sallyport-passkey-")
    public_port, admin_port, ui_port = free_port(), free_port(), free_port()
    ui = f"http://localhost:{ui_port}"
    proc, public = start_sallyport(binary, work, public_port, admin_port, ui)
    srv = serve_ui(ui_port, public)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context()
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            auth = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                "hasUserVerification": True, "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }})["authenticatorId"]

            # 1. Sign up with a passkey only.
            page.goto(ui + "/registration")
            ready(page, ui + "/registration?flow=")
            script_loaded(page)
            page.locator("#flow input[name='traits.email']").fill("pat@example.org")
            with page.expect_navigation(url=lambda u: u.startswith(ui + "/welcome"), timeout=TIMEOUT_MS):
                page.locator("#flow button[name='passkey_register_trigger']").click()
            creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth})["credentials"]
            assert len(creds) == 1 and creds[0]["isResidentCredential"], creds
            status, email, methods = whoami(page, ui)
            assert (status, email, methods) == (200, "pat@example.org", "passkey"), (status, email, methods)
            print("ok: sign up with a passkey")

            # 2. Signed out, the login page's onload trigger starts conditional UI (passkey autofill);
            #    Chromium's virtual authenticator answers it at once and the page signs in by itself.
            context.clear_cookies()
            assert whoami(page, ui)[0] == 401
            page.goto(ui + "/login")
            page.wait_for_url(lambda u: u.startswith(ui + "/welcome"), timeout=TIMEOUT_MS)
            status, email, methods = whoami(page, ui)
            assert (status, email, methods) == (200, "pat@example.org", "passkey"), (status, email, methods)
            print("ok: sign in with passkey autofill (oryPasskeyLoginAutocompleteInit)")

            # 3. The same with the button (oryPasskeyLogin), the page's onload triggers switched off.
            context.clear_cookies()
            page.add_init_script("window.__noOnload = true")
            page.goto(ui + "/login")
            ready(page, ui + "/login?flow=")
            script_loaded(page)
            with page.expect_navigation(url=lambda u: u.startswith(ui + "/welcome"), timeout=TIMEOUT_MS):
                page.locator("#flow button[name='passkey_login_trigger']").click()
            status, email, methods = whoami(page, ui)
            assert (status, email, methods) == (200, "pat@example.org", "passkey"), (status, email, methods)
            creds = cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth})["credentials"]
            assert creds[0]["signCount"] >= 2, creds
            print("ok: sign in with the passkey button (oryPasskeyLogin)")
            browser.close()
    except Exception:
        print(open(os.path.join(work, "server.log")).read()[-6000:], file=sys.stderr)
        raise
    finally:
        srv.shutdown()
        proc.terminate()
        proc.wait(timeout=10)
    run_builtin(binary)


def run_builtin(binary):
    """The built-in pages (/ui/) load the script node too and bind trigger buttons to its functions."""
    work = tempfile.mkdtemp(prefix="sallyport-passkey-builtin-")
    public_port, admin_port = free_port(), free_port()
    proc, public = start_sallyport(binary, work, public_port, admin_port, "", builtin=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context()
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                "hasUserVerification": True, "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }})
            page.goto(public + "/ui/registration")
            page.wait_for_url(lambda u: "/ui/registration?flow=" in u, timeout=TIMEOUT_MS)
            page.locator("input[name='traits.email']").fill("una@example.org")
            with page.expect_navigation(url=lambda u: "/ui/welcome" in u, timeout=TIMEOUT_MS):
                page.locator("button[name='passkey_register_trigger']").click()
            assert "una@example.org" in page.locator("body").inner_text()
            print("ok: built-in pages: sign up with a passkey")
            context.clear_cookies()
            page.goto(public + "/ui/login")
            page.wait_for_url(lambda u: "/ui/login?flow=" in u, timeout=TIMEOUT_MS)
            with page.expect_navigation(url=lambda u: "/ui/welcome" in u, timeout=TIMEOUT_MS):
                page.locator("button[name='passkey_login_trigger']").click()
            assert "una@example.org" in page.locator("body").inner_text()
            print("ok: built-in pages: sign in with the passkey button")
            browser.close()
    except Exception:
        print(open(os.path.join(work, "server.log")).read()[-6000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    run(sys.argv[1])
