#!/usr/bin/env python3
"""The built-in pages under /ui/, driven in Debian's Chromium with Playwright.

Starts an SMTP sink and `sallyport serve --watch-courier` with a config that names no `ui_url`
(so every flow uses the built-in pages), then: register (two steps; a refused password shows its
message next to the field) -> verify with the mailed code -> log out -> log in -> enrol TOTP (QR code
and secret shown) -> log out -> log in with TOTP -> backup codes -> recovery by code -> change password
-> passwordless code login; the German pages render for `Accept-Language: de`; axe-core, injected into
every page visited, finds no serious or critical violation; no page trips its Content-Security-Policy.
Screenshots of every open page go to $SCREENSHOT_DIR (default: the work directory) on failure.

Usage: builtin_ui.py <path to the sallyport binary>
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

from aiosmtpd.controller import Controller
from playwright.sync_api import sync_playwright

from drive import CHROMIUM, CHROMIUM_ARGS, REPO, Sink, code_in, free_port, fresh_totp, totp

HERE = os.path.dirname(os.path.abspath(__file__))
AXE = os.path.join(HERE, "axe", "node_modules", "axe-core", "axe.min.js")
PASSWORD = "a-builtin-ui-passw0rd!"
NEW_PASSWORD = "another-builtin-passw0rd!"
TIMEOUT_MS = 15_000
WEIGHTS = {}


def start_sallyport(binary, work, public_port, admin_port, smtp_port):
    public = f"http://127.0.0.1:{public_port}/"
    schema = os.path.join(REPO, "crates/sallyport-config/schema/default-identity.schema.json")
    cfg = {
        "dsn": f"sqlite://{work}/db.sqlite?mode=rwc",
        "serve": {
            "public": {"base_url": public, "host": "127.0.0.1", "port": public_port},
            "admin": {"base_url": f"http://127.0.0.1:{admin_port}/", "host": "127.0.0.1", "port": admin_port},
        },
        # No ui_url anywhere: the built-in pages are every flow's UI.
        "selfservice": {
            "default_browser_return_url": "/ui/welcome",
            "methods": {
                "password": {"enabled": True, "config": {"haveibeenpwned_enabled": False}},
                "totp": {"enabled": True, "config": {"issuer": "Sallyport built-in UI test"}},
                "lookup_secret": {"enabled": True},
                "code": {"enabled": True, "passwordless_enabled": True},
            },
            "flows": {
                "registration": {"after": {
                    "password": {"hooks": [{"hook": "session"}, {"hook": "show_verification_ui"}]}}},
                "verification": {"enabled": True, "use": "code"},
                "recovery": {"enabled": True, "use": "code"},
                "settings": {"required_aal": "highest_available"},
            },
        },
        "session": {"whoami": {"required_aal": "highest_available"}},
        "identity": {"default_schema_id": "default", "schemas": [{"id": "default", "url": f"file://{schema}"}]},
        "courier": {"smtp": {"connection_uri": f"smtp://127.0.0.1:{smtp_port}/?disable_starttls=true",
                             "from_address": "no-reply@sallyport.test"},
                    "worker": {"pull_wait": "100ms"}},
        "secrets": {"cookie": ["a-builtin-ui-test-cookie-secret"], "cipher": ["builtin-ui-test-cipher-secret-32"]},
        "hashers": {"algorithm": "bcrypt", "bcrypt": {"cost": 4}},
        "log": {"level": "debug", "format": "text"},
        "sallyport": {"ui": {"product_name": "Sallyport test"}},
    }
    path = os.path.join(work, "kratos.yml")
    with open(path, "w") as f:
        json.dump(cfg, f)
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


class Browser:
    """One browser context (one person's cookies) on the built-in pages."""

    def __init__(self, browser, public, report, locale="en-US", color_scheme="light"):
        self.ctx = browser.new_context(locale=locale, extra_http_headers={"Accept-Language": locale},
                                       color_scheme=color_scheme)
        self.page = self.ctx.new_page()
        self.public = public
        self.report = report
        self.csp_violations = []
        self.page.on("console", self._console)

    def _console(self, msg):
        if "Content Security Policy" in msg.text or "Refused to" in msg.text:
            self.csp_violations.append(msg.text)

    def at(self, path_prefix):
        """Waits for a built-in page under `path_prefix`, checks it, scans it with axe."""
        page = self.page
        page.wait_for_url(re.compile("^" + re.escape(self.public + path_prefix)), timeout=TIMEOUT_MS)
        page.wait_for_load_state("load")
        assert not self.csp_violations, f"{page.url}: CSP violations: {self.csp_violations}"
        assert page.evaluate("getComputedStyle(document.body).margin") == "0px", "the stylesheet loads"
        self.weigh()
        self.axe()

    def key(self):
        return re.sub(r"(flow|id)=[0-9a-f-]+", r"\1=…", self.page.url.replace(self.public, ""))

    def weigh(self):
        """Bytes of the page and everything it loads except images (no compression is configured,
        so this is what crosses the wire), and the first contentful paint."""
        m = self.page.evaluate(
            "() => { const nav = performance.getEntriesByType('navigation')[0];"
            " const res = performance.getEntriesByType('resource').filter(r => r.initiatorType !== 'img');"
            " const fcp = performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint');"
            " return {html: nav.decodedBodySize, other: res.reduce((n, r) => n + r.decodedBodySize, 0),"
            " fcp: fcp ? fcp.startTime - nav.responseEnd : null}; }")
        total = m["html"] + m["other"]
        assert total <= 30 * 1024, f"{self.page.url}: {total} bytes before images"
        WEIGHTS.setdefault(self.key(), []).append((m["html"], m["other"], m["fcp"]))

    def axe(self):
        page = self.page
        key = self.key()
        result = page.evaluate(
            "async (src) => { if (!window.axe) { (0, eval)(src); }"
            " const r = await axe.run(document, {resultTypes: ['violations']});"
            " return {passes: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact,"
            " nodes: v.nodes.length, help: v.help, targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))}; }",
            AXE_SOURCE)
        assert result["passes"] > 0, "axe-core ran its rules"
        result = result["violations"]
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        self.report.setdefault(key, [v["id"] + ":" + (v["impact"] or "") for v in result])
        assert not bad, f"{page.url}: axe found serious/critical violations: {json.dumps(bad, indent=1)}"

    def goto(self, path):
        self.page.goto(self.public + path)

    def fill(self, name, value):
        self.page.locator(f"#flow input[name='{name}']").fill(value)

    def click(self, name, value=None):
        sel = f"#flow button[name='{name}']" + (f"[value='{value}']" if value else "")
        with self.page.expect_navigation(timeout=TIMEOUT_MS):
            self.page.locator(sel).click()

    def messages(self):
        return [int(x) for x in self.page.locator(".msg[data-id]").evaluate_all(
            "els => els.map(e => e.getAttribute('data-id'))") if x]

    def aal(self):
        return self.page.locator("#aal").inner_text().strip()

    def log_out(self):
        self.goto("/ui/logout")
        self.at("/ui/logout")
        with self.page.expect_navigation(timeout=TIMEOUT_MS):
            self.page.locator("#logout").click()
        # Logout returns to the welcome page, which sends a signed-out browser to sign in.
        self.at("/ui/login?flow=")

    def log_in_password(self, email, password):
        self.goto("/ui/login")
        self.at("/ui/login?flow=")
        self.fill("identifier", email)
        self.fill("password", password)
        self.click("method", "password")


def run(binary):
    global AXE_SOURCE
    AXE_SOURCE = open(AXE, encoding="utf-8").read()
    work = tempfile.mkdtemp(prefix="sallyport-builtin-ui-")
    shots = os.environ.get("SCREENSHOT_DIR", work)
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    public_port, admin_port = free_port(), free_port()
    proc, public = start_sallyport(binary, work, public_port, admin_port, smtp_port)
    started = time.time()
    report = {}
    people = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                run_steps(browser, public, sink, report, people)
            except BaseException:
                os.makedirs(shots, exist_ok=True)
                for i, b in enumerate(people):
                    for j, pg in enumerate(b.ctx.pages):
                        path = os.path.join(shots, f"failure-{i}-{j}.png")
                        try:
                            pg.screenshot(path=path, full_page=True)
                            print(f"screenshot of {pg.url}: {path}", file=sys.stderr)
                        except Exception as e:  # a crashed page still lets the others be shot
                            print(f"no screenshot of {pg.url}: {e}", file=sys.stderr)
                raise
            browser.close()
        print("axe-core results (violations of any impact, per page):")
        for page, v in sorted(report.items()):
            print(f"  {page}: {', '.join(v) if v else 'none'}")
        print("page weights (largest HTML seen; stylesheet only when not cached) and first contentful paint"
              " after the response, median:")
        for page, ws in sorted(WEIGHTS.items()):
            fcps = sorted(w[2] for w in ws if w[2] is not None)
            fcp = f"{fcps[len(fcps) // 2]:.0f} ms" if fcps else "n/a"
            print(f"  {page}: html {max(w[0] for w in ws)} B, css {max(w[1] for w in ws)} B, FCP {fcp} ({len(ws)} loads)")
        print(f"built-in UI flows passed in {time.time() - started:.1f}s")
        shutil.rmtree(work, ignore_errors=True)
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


def axe_catches_violations(browser):
    """The scan can fail: a page with an unlabelled input and an image without alt text is flagged."""
    page = browser.new_page()
    page.set_content("<!doctype html><html lang=en><title>t</title><main><img src='data:,'><input></main></html>")
    ids = page.evaluate(
        "async (src) => { (0, eval)(src); const r = await axe.run(document);"
        " return r.violations.filter(v => v.impact === 'critical').map(v => v.id); }", AXE_SOURCE)
    page.close()
    assert "image-alt" in ids and "label" in ids, ids


def run_steps(browser, public, sink, report, people):
    axe_catches_violations(browser)
    alice = Browser(browser, public, report)
    people.append(alice)
    addr = "alice@example.org"

    # 1. Registration in two steps; a refused password shows why next to the field.
    alice.goto("/ui/registration")
    alice.at("/ui/registration?flow=")
    alice.fill("traits.email", addr)
    alice.click("method", "profile")
    alice.at("/ui/registration?flow=")
    alice.fill("password", "short")
    alice.click("method", "password")
    alice.at("/ui/registration?flow=")
    field = alice.page.locator("#flow .field[data-name='password']")
    assert field.locator(".msg-error").count() >= 1, "the password's error sits in the password field"
    pw = field.locator("input[name='password']")
    assert pw.get_attribute("aria-invalid") == "true"
    described = pw.get_attribute("aria-describedby") or ""
    assert described and alice.page.locator(f"#{described.split()[0]}").count() == 1, described
    alice.fill("password", PASSWORD)
    alice.click("method", "password")
    alice.at("/ui/verification?flow=")
    assert 1080003 in alice.messages(), alice.messages()
    print("ok: two-step registration; a refused password is explained at its field")

    # 2. Verification with the mailed code.
    _, _, text = sink.next_to(addr)
    alice.fill("code", code_in(text))
    alice.click("method", "code")
    alice.at("/ui/verification?flow=")
    assert 1080002 in alice.messages(), alice.messages()
    print("ok: verification with the mailed code")

    # 3. Log out, log in.
    alice.goto("/ui/welcome")
    alice.at("/ui/welcome")
    assert addr in alice.page.locator("#identity").inner_text()
    alice.log_out()
    alice.log_in_password(addr, PASSWORD)
    alice.at("/ui/welcome")
    assert alice.aal() == "aal1"
    print("ok: log out, log in with password")

    # 4. TOTP enrolment: QR code and secret shown.
    alice.goto("/ui/settings")
    alice.at("/ui/settings?flow=")
    qr = alice.page.locator("img#totp_qr")
    assert qr.count() == 1 and qr.get_attribute("src").startswith("data:image/png;base64,")
    assert qr.evaluate("i => i.complete && i.naturalWidth > 0"), "the QR code image decodes"
    secret = alice.page.locator("#totp_secret_key").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), secret
    alice.fill("totp_code", totp(secret))
    alice.click("method", "totp")
    alice.at("/ui/settings?flow=")
    assert 1050001 in alice.messages(), alice.messages()
    print("ok: TOTP enrolment")

    # 5. Log out; log in with password, then TOTP on the aal2 page.
    alice.log_out()
    alice.log_in_password(addr, PASSWORD)
    alice.at("/ui/login?flow=")
    assert 1010004 in alice.messages(), alice.messages()
    alice.fill("totp_code", fresh_totp(secret))
    alice.click("method", "totp")
    alice.at("/ui/welcome")
    assert alice.aal() == "aal2", alice.aal()
    print("ok: log in with TOTP")

    # 6. Backup codes: generate, confirm.
    alice.goto("/ui/settings")
    alice.at("/ui/settings?flow=")
    alice.click("lookup_secret_regenerate")
    alice.at("/ui/settings?flow=")
    codes = alice.page.locator("code.secret[data-id='1050009']").all_inner_texts()
    assert len(codes) == 12, codes
    alice.click("lookup_secret_confirm")
    alice.at("/ui/settings?flow=")
    assert 1050001 in alice.messages(), alice.messages()
    print("ok: backup codes")

    # 7. Recovery by code in a fresh browser, a backup code as second factor, then a new password.
    carol = Browser(browser, public, report)
    people.append(carol)
    carol.goto("/ui/recovery")
    carol.at("/ui/recovery?flow=")
    carol.fill("email", addr)
    carol.click("method", "code")
    carol.at("/ui/recovery?flow=")
    _, _, text = sink.next_to(addr)
    carol.fill("code", code_in(text))
    carol.click("method", "code")
    carol.at("/ui/login?flow=")
    carol.fill("lookup_secret", codes[0])
    carol.click("method", "lookup_secret")
    carol.page.wait_for_url(re.compile(re.escape(public) + "/ui/(settings|welcome)"), timeout=TIMEOUT_MS)
    carol.goto("/ui/settings")
    carol.at("/ui/settings?flow=")
    carol.fill("password", NEW_PASSWORD)
    carol.click("method", "password")
    carol.at("/ui/settings?flow=")
    assert 1050001 in carol.messages(), carol.messages()
    print("ok: recovery by code, then a new password")

    # 8. Passwordless: a code by mail signs in (then the second factor, a backup code).
    dave = Browser(browser, public, report)
    people.append(dave)
    dave.goto("/ui/login")
    dave.at("/ui/login?flow=")
    dave.fill("identifier", addr)
    dave.click("method", "code")
    dave.at("/ui/login?flow=")
    _, _, text = sink.next_to(addr)
    dave.fill("code", code_in(text))
    dave.click("method", "code")
    dave.at("/ui/login?flow=")
    dave.fill("lookup_secret", codes[1])
    dave.click("method", "lookup_secret")
    dave.at("/ui/welcome")
    assert dave.aal() == "aal2", dave.aal()
    methods = dave.page.locator("#methods li").evaluate_all("els => els.map(e => e.dataset.method)")
    assert "code" in methods and "lookup_secret" in methods, methods
    print("ok: passwordless code login")

    # 9. The old password no longer works; the new one does.
    erin = Browser(browser, public, report)
    people.append(erin)
    erin.log_in_password(addr, PASSWORD)
    erin.at("/ui/login?flow=")
    assert 4000006 in erin.messages(), erin.messages()
    print("ok: the changed password is in force")

    # 10. German.
    gerd = Browser(browser, public, report, locale="de-DE")
    people.append(gerd)
    gerd.goto("/ui/login")
    gerd.at("/ui/login?flow=")
    assert gerd.page.locator("html").get_attribute("lang") == "de"
    assert gerd.page.locator("h1").inner_text() == "Anmelden"
    assert gerd.page.locator("#flow button[value='password']").inner_text() == "Mit Passwort anmelden"
    gerd.fill("identifier", "nobody@example.org")
    gerd.fill("password", "wrong-password-123")
    gerd.click("method", "password")
    gerd.at("/ui/login?flow=")
    assert "Anmeldedaten sind ungültig" in gerd.page.locator("#messages").inner_text()
    print("ok: German pages")

    # 11. Dark (the default theme follows prefers-color-scheme): still no contrast violation.
    nora = Browser(browser, public, report, color_scheme="dark")
    people.append(nora)
    nora.report = {}
    nora.goto("/ui/login")
    nora.at("/ui/login?flow=")
    nora.fill("identifier", "x@example.org")
    nora.click("method", "password")
    nora.at("/ui/login?flow=")
    bg = nora.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(18, 20, 23)", f"dark background: {bg}"
    for page, v in nora.report.items():
        report["(dark) " + page] = v
    print("ok: dark theme")

    # 12. A return_to outside the allow list: a page that says why.
    nora.report = report
    nora.goto("/ui/login?return_to=https%3A%2F%2Fevil.example%2F")
    nora.at("/ui/error?id=")
    assert "allowed return addresses" in nora.page.locator("#error-explanation").inner_text()
    print("ok: refused return_to page")

    # 13. Keyboard: Tab reaches the first field with a visible focus ring.
    gerd.page.keyboard.press("Tab")
    gerd.page.keyboard.press("Tab")
    outline = gerd.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), f"focus is visible: {outline}"
    print("ok: visible keyboard focus")


if __name__ == "__main__":
    run(sys.argv[1])
