"""The owner dashboard in a real headless Chromium, driven over WebDriver (chromedriver, W3C
protocol, no client library), against a stack started and seeded by script/dashboard.sh.

The owner signs in with its token, approves one pending request and rejects another with a
reason (the second by keyboard only), replays a failed webhook delivery, verifies a receipt and
opens an agreement's timeline; after each step the API is asked what happened. Another owner
signing in sees none of it. Every form control has an accessible name, and the page is served
with its security headers.

Environment: PACTUM_API (base URL), PACTUM_OWNER_TOKEN, PACTUM_OTHER_TOKEN, and optionally
PACTUM_SCREENSHOT (where to save a screenshot of the signed-in page).
"""

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

API = os.environ["PACTUM_API"].rstrip("/")
OWNER = os.environ["PACTUM_OWNER_TOKEN"]
OTHER = os.environ["PACTUM_OTHER_TOKEN"]
SCREENSHOT = os.environ.get("PACTUM_SCREENSHOT")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
ENTER = "\ue007"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(method, url, body=None, token=None, headers=None, expect_json=True):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if method != "GET":
        request.add_header("Idempotency-Key", f"browser-{uuid.uuid4()}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
            return answer.status, dict(answer.headers), (json.loads(raw) if expect_json and raw else raw)
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, dict(err.headers), (json.loads(raw) if raw else None)


def api(method, path, body=None, token=OWNER):
    status, _, data = call(method, API + path, body, token)
    if status >= 300:
        raise AssertionError(f"{method} {path} answered {status}: {data}")
    return data


def wait(what, check, timeout=20.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as err:  # the page may be re-rendering
            last = err
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


class Browser:
    """Just enough of the W3C WebDriver protocol."""

    def __init__(self):
        self.port = free_port()
        self.driver = subprocess.Popen(
            ["chromedriver", f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        wait("chromedriver", lambda: self._status())
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1280,1500",
                        ],
                    },
                }
            }
        }
        self.session = self._send("POST", "/session", caps)["sessionId"]

    def _status(self):
        try:
            with urllib.request.urlopen(self.base + "/status", timeout=1) as r:
                return json.loads(r.read())["value"]["ready"]
        except OSError:
            return False

    def _send(self, method, path, body=None):
        status, _, data = call(method, self.base + path, body)
        if status >= 300:
            raise RuntimeError(f"webdriver {method} {path}: {status} {data}")
        return data["value"]

    def cmd(self, method, path, body=None):
        return self._send(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.cmd("POST", "/url", {"url": url})

    def find_all(self, css):
        return [e[ELEMENT] for e in self.cmd("POST", "/elements", {"using": "css selector", "value": css})]

    def find(self, css):
        return wait(f"element {css}", lambda: (self.find_all(css) or [None])[0])

    def click(self, css):
        self.cmd("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css, text):
        self.cmd("POST", f"/element/{self.find(css)}/value", {"text": text})

    def text(self, css):
        return self.cmd("GET", f"/element/{self.find(css)}/text")

    def js(self, script, *args):
        return self.cmd("POST", "/execute/sync", {"script": script, "args": list(args)})

    def screenshot(self, path):
        with open(path, "wb") as f:
            f.write(base64.b64decode(self.cmd("GET", "/screenshot")))

    def close(self):
        try:
            self._send("DELETE", f"/session/{self.session}")
        finally:
            self.driver.terminate()
            self.driver.wait(timeout=10)


def keys(browser, text):
    """Types `text` into whatever has the focus, key by key."""
    browser.cmd("POST", "/actions", {"actions": [{
        "type": "key", "id": "keyboard",
        "actions": [a for ch in text for a in
                    ({"type": "keyDown", "value": ch}, {"type": "keyUp", "value": ch})],
    }]})


class Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: records each message id it gets."""

    seen = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Receiver.seen.append(self.headers.get("webhook-id"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def seed():
    """Two proposals waiting for the owner's approval and failed deliveries to replay."""
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    buyer = api("GET", "/agents/st-buyer")
    key = api("POST", "/agents/st-buyer/api-keys", {"label": "browser test"})["api_key"]
    hook = api("POST", "/agents/st-buyer/webhooks", {"url": url, "description": "browser test"})
    # Disabled while the proposals happen: their deliveries are recorded as failed.
    api("PATCH", f"/agents/st-buyer/webhooks/{hook['webhook_id']}", {"enabled": False})
    proposals = []
    for n in range(2):
        proposals.append(
            api(
                "POST",
                "/usage-agreements",
                {
                    "seller_agent_id": "st-seller",
                    "service_id": f"svc_dashboard_{n}",
                    "quantity": 300,
                    "unit": "api_calls",
                    "price_per_unit_cents": 100,
                    "payment_method": {"rail": "stablecoin", "provider": "x402"},
                    "settlement_model": "bilateral_escrow",
                    "activation_version": "v2",
                    "buyer_wallet_address": buyer["wallet_address"],
                },
                token=key,
            )
        )
    for p in proposals:
        assert p["status"] == "pending_approval", p
    api("PATCH", f"/agents/st-buyer/webhooks/{hook['webhook_id']}", {"enabled": True})
    failed = [
        d["delivery_id"]
        for d in api("GET", "/agents/st-buyer/webhooks/deliveries?status=failed&limit=100")["deliveries"]
        if d["webhook_id"] == hook["webhook_id"]
    ]
    assert failed, "the disabled endpoint recorded no failed delivery"
    return [p["agreement_id"] for p in proposals], failed


def main():
    # The page and its headers, without a browser.
    status, headers, _ = call("GET", API + "/dashboard", expect_json=False)
    headers = {k.lower(): v for k, v in headers.items()}
    assert status == 200, status
    assert "frame-ancestors 'none'" in headers["content-security-policy"], headers
    assert "script-src 'self'" in headers["content-security-policy"], headers
    assert headers["x-content-type-options"] == "nosniff", headers

    agreement_ids, failed_deliveries = seed()
    pending = api("GET", "/agents/st-buyer/approvals?status=pending")["approvals"]
    by_agreement = {a["agreement_id"]: a["request_id"] for a in pending}
    approve_id, reject_id = by_agreement[agreement_ids[0]], by_agreement[agreement_ids[1]]

    browser = Browser()
    try:
        browser.go(API + "/dashboard")
        # Any Content-Security-Policy violation from here on is a failure.
        browser.js("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                   " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
        browser.type("#token", OWNER)
        browser.click("#sign-in button[type=submit]")
        wait("the owner signed in", lambda: "Stack owner" in browser.text("#who"))
        wait("two approvals", lambda: len(browser.find_all("#approvals-body article")) == 2)
        assert browser.text("#approvals-count") == "2"
        if SCREENSHOT:
            wait("the deliveries", lambda: browser.find_all("#deliveries-body tbody tr"))
            browser.screenshot(SCREENSHOT)

        # Every form control and button has an accessible name (a label, aria-label or text).
        unnamed = browser.js(
            """return [...document.querySelectorAll('input, select, textarea, button')]
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                              && !e.textContent.trim())
                 .map(e => e.outerHTML.slice(0, 80));"""
        )
        assert unnamed == [], unnamed

        # Approve one: it leaves the inbox and the API has it approved, the proposal sent on.
        browser.click(f'article[data-request-id="{approve_id}"] button.approve')
        wait("the approved request to leave", lambda: not browser.find_all(f'article[data-request-id="{approve_id}"]'))
        approved = api("GET", "/agents/st-buyer/approvals?status=approved")["approvals"]
        assert approve_id in [a["request_id"] for a in approved], approved
        assert api("GET", f"/usage-agreements/{agreement_ids[0]}")["status"] == "proposed"

        # Reject the other by keyboard: from its Approve button, Tab reaches the reason; type it
        # and press Enter.
        approve_button = browser.find(f'article[data-request-id="{reject_id}"] button.approve')
        browser.js("arguments[0].focus();", {ELEMENT: approve_button})
        keys(browser, "\ue004")  # Tab
        focused = browser.js("return document.activeElement.getAttribute('name') + '@'"
                             " + document.activeElement.closest('form').dataset.requestId;")
        assert focused == f"reason@{reject_id}", focused
        keys(browser, "over this week's budget" + ENTER)
        wait("the rejected request to leave", lambda: not browser.find_all(f'article[data-request-id="{reject_id}"]'))
        rejected = api("GET", "/agents/st-buyer/approvals?status=rejected")["approvals"]
        mine = [a for a in rejected if a["request_id"] == reject_id]
        assert mine and mine[0]["reason"] == "over this week's budget", rejected
        assert api("GET", f"/usage-agreements/{agreement_ids[1]}")["status"] == "rejected"
        wait("the empty inbox", lambda: "Nothing waits" in browser.text("#approvals-body"))

        # Deliveries: every failed one listed before any other; replay one the seed made fail.
        wait("the deliveries", lambda: browser.find_all("#deliveries-body tbody tr"))
        statuses = browser.js("return [...document.querySelectorAll('#deliveries-body .delivery-status')]"
                              ".map(e => e.textContent);")
        assert "failed" in statuses and statuses == sorted(statuses, key=lambda s: s != "failed"), statuses
        delivery_id = failed_deliveries[0]
        assert "failed" in browser.text(f'tr[data-delivery-id="{delivery_id}"] .delivery-status')
        browser.click(f'tr[data-delivery-id="{delivery_id}"] button.replay')
        wait("the replay to show", lambda: "failed" not in browser.text(f'tr[data-delivery-id="{delivery_id}"] .delivery-status'))
        delivery = api("GET", f"/agents/st-buyer/webhooks/deliveries/{delivery_id}")
        assert delivery["status"] in ("pending", "succeeded"), delivery
        wait("the replayed message at the receiver", lambda: delivery["message_id"] in Receiver.seen)

        # A receipt verified from the page, as the API verifies it.
        first_receipt = wait("receipts", lambda: browser.find_all("#receipts-body tbody tr"))[0]
        receipt_id = browser.cmd("GET", f"/element/{first_receipt}/attribute/data-receipt-id")
        browser.click(f'tr[data-receipt-id="{receipt_id}"] button.verify')
        wait("the verdict", lambda: browser.text(f'tr[data-receipt-id="{receipt_id}"] .verdict') == "valid")
        assert api("GET", f"/receipts/verify/{receipt_id}")["valid"] is True

        # A settled agreement's timeline, with its transactions.
        assert browser.js("return document.getElementById('agreement-agent').value;") == "st-buyer"
        settled = wait(
            "a settled agreement",
            lambda: [
                r for r in browser.find_all("#agreements-body tbody tr")
                if browser.cmd("GET", f"/element/{r}/text").find("settled") >= 0
            ],
        )[0]
        settled_id = browser.cmd("GET", f"/element/{settled}/attribute/data-agreement-id")
        browser.click(f'tr[data-agreement-id="{settled_id}"] button')
        wait("the timeline", lambda: browser.find_all("#agreement-detail ol.timeline li"))
        tx = browser.text("#agreement-detail code.tx")
        assert tx.startswith("0x") and len(tx) == 66, tx
        history = api("GET", f"/usage-agreements/{settled_id}")["history"]
        assert tx in [e["tx_hash"] for e in history], history

        violations = browser.js("return window.__csp;")
        assert violations == [], violations

        # Another owner sees only its own agent, and none of this owner's data.
        browser.click("#sign-out")
        wait("signed out", lambda: browser.js("return !document.getElementById('sign-in-section').hidden;"))
        browser.type("#token", OTHER)
        browser.click("#sign-in button[type=submit]")
        wait("the other owner signed in", lambda: "Other owner" in browser.text("#who"))
        wait("its agent", lambda: browser.find_all('[data-agent-id="other-agent"]'))
        shown = browser.js("return [...document.querySelectorAll('[data-agent-id]')].map(e => e.dataset.agentId);")
        assert shown == ["other-agent"], shown
        assert not browser.find_all("[data-agreement-id], [data-delivery-id], [data-receipt-id], article.approval")
        status, _, _ = call("GET", API + "/agents/st-buyer", token=OTHER)
        assert status == 404, status
    finally:
        browser.close()
    print("dashboard: signed in, approved and rejected (by keyboard), replayed a delivery, "
          "verified a receipt, read a timeline; another owner saw only its own agent")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as err:
        print(f"dashboard test failed: {err}", file=sys.stderr)
        sys.exit(1)
