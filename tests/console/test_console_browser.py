"""The staff console in headless Chromium (Debian's package) against the app under gunicorn:
signing in, every page rendered with its charts drawn (canvases with pixels), a staff action
(mark shipped) done through the page, no request leaving 127.0.0.1 and no script error (a CSP
violation would be one). Screenshots of each page go to CONSOLE_SCREENSHOTS (default
/work/notes when it exists)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from shop.db import db, utcnow
from shop.orders.models import Order
from shop.security import Role
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.console.cdp import CHROMIUM, Browser
from tests.console.test_console_http import PASSWORD, place_paid_order
from tests.factories import make_product, make_user

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", "/work/notes"))

if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("Chromium is required under CI=true (apt-get install chromium)")
    pytest.skip(
        "Chromium is not installed (apt-get install chromium; `make test` installs it)",
        allow_module_level=True,
    )

# Draws the charts? Every canvas of the page has a pixel that is not transparent.
CANVASES = """
Array.from(document.querySelectorAll('canvas')).map(c => {
  const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let drawn = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) drawn++;
  return {width: c.width, height: c.height, drawn, url: c.toDataURL().length};
})
"""


@pytest.fixture(scope="module")
def served(app):
    with socket.socket() as probe:  # CONSOLE_PORT: a port of one's own on a shared machine
        probe.bind(("127.0.0.1", int(os.environ.get("CONSOLE_PORT", "0"))))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": TEST_DATABASE_URL,
        "REDIS_URL": TEST_REDIS_URL,
        "SECRET_KEY": app.config["SECRET_KEY"],
        "JWT_SECRET_KEY": app.config["JWT_SECRET_KEY"],
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    server = subprocess.Popen(
        [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "1", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield base
    server.terminate()
    server.wait(timeout=15)


@pytest.fixture
def browser():
    opened = Browser()
    yield opened
    opened.close()


def shoot(browser, name):
    if SHOTS.is_dir():
        browser.screenshot(SHOTS / f"console-{name}.png")


def charts_drawn(browser):
    assert browser.evaluate("document.documentElement.dataset.chartsDrawn") is not None
    canvases = browser.evaluate(CANVASES)
    assert canvases, "no canvas on the page"
    for canvas in canvases:
        assert canvas["width"] > 0 and canvas["height"] > 0, canvas
        assert canvas["drawn"] > 100, canvas
        assert canvas["url"] > 1000, canvas
    return canvases


def test_the_console_in_chromium(served, browser, client, app):
    make_user(app, role=Role.STAFF, email="clerk@example.com", password=PASSWORD)
    order, _, _ = place_paid_order(client, app)
    owed, _, _ = place_paid_order(client, app, product="Mug", buyer="dora@example.com")
    with app.app_context():  # a payment that arrived after the order was cancelled
        row = db.session.get(Order, owed["id"])
        row.status, row.refund_due = "cancelled", row.amount_paid
        db.session.commit()
    make_product(app, name="Nearly gone", stock=1)  # on the low-stock list
    past = [place_paid_order(client, app, product=f"Lamp {n}", buyer=f"p{n}@example.com")[0]
            for n in range(6)]  # fmt: skip
    with app.app_context():  # placed over the last weeks: the line has a shape
        for n, placed in enumerate(past):
            db.session.get(Order, placed["id"]).created_at = utcnow() - timedelta(days=3 + 4 * n)
        db.session.commit()

    browser.goto(f"{served}/admin/")
    assert browser.evaluate("location.pathname") == "/admin/login"
    shoot(browser, "login")
    browser.submit(
        "document.querySelector('[name=email]').value = 'clerk@example.com';"
        f"document.querySelector('[name=password]').value = {json.dumps(PASSWORD)};"
        "document.querySelector('form.card').submit();"
    )
    assert browser.evaluate("location.pathname") == "/admin/"
    cookies = browser.call("Network.getCookies")["cookies"]
    console_cookie = next(c for c in cookies if c["name"] == "shop_console")
    assert console_cookie["httpOnly"] and console_cookie["secure"]
    assert console_cookie["sameSite"] == "Strict"
    assert browser.evaluate("document.cookie") == ""  # HttpOnly: not readable by scripts

    for days in (30, 90, 365):
        browser.goto(f"{served}/admin/?days={days}")
        canvases = charts_drawn(browser)
        assert len(canvases) >= 3, canvases  # sales, top products, status mix
        # Every status reads whole (turned when the bars are narrow), none cut short.
        status_chart = "document.getElementById('status-chart').dataset"
        assert browser.evaluate(f"{status_chart}.cut") == "0"
        assert browser.evaluate(f"{status_chart}.turned") in ("true", "false")
        text = browser.evaluate("document.body.innerText")
        for heading in ("Top products", "Order status mix", "Low stock", "Queues", "Webhooks",
                        "Recent audit entries", "Pen", "Nearly gone"):  # fmt: skip
            assert heading in text, heading
        shoot(browser, f"dashboard-{days}")

    browser.goto(f"{served}/admin/ship")
    assert order["number"] in browser.evaluate("document.body.innerText")
    shoot(browser, "ship")
    browser.submit(
        f"const row = document.getElementById('order-{order['id']}');"
        "row.querySelector('[name=carrier]').value = 'UPS';"
        "row.querySelector('[name=tracking_number]').value = '1Z-BROWSER-1';"
        "row.querySelector('form').submit();"
    )
    text = browser.evaluate("document.body.innerText")
    assert f"Order {order['number']} marked shipped." in text
    assert f"order-{order['id']}" not in browser.evaluate("document.body.innerHTML")
    shoot(browser, "shipped")

    browser.goto(f"{served}/admin/refunds")
    assert owed["number"] in browser.evaluate("document.body.innerText")
    shoot(browser, "refunds")
    browser.submit(f"document.querySelector('#order-{owed['id']} form').submit();")
    text = browser.evaluate("document.body.innerText")
    assert f"Refund recorded on order {owed['number']}." in text
    assert f"order-{owed['id']}" not in browser.evaluate("document.body.innerHTML")
    shoot(browser, "refunded")

    browser.goto(f"{served}/admin/")  # the action's audit row is on the dashboard
    text = browser.evaluate("document.body.innerText")
    assert "shipment.created" in text and "refund.created" in text
    charts_drawn(browser)

    browser.submit("document.querySelector('form.logout').submit();")
    assert browser.evaluate("location.pathname") == "/admin/login"

    assert browser.requests
    outside = [u for u in browser.requests if not u.startswith(f"{served}/")]
    assert outside == [], outside
    assert browser.errors == [], (browser.errors, browser.requests)


def test_a_customer_sees_the_refusal(served, browser, app):
    make_user(app, email="cleo@example.com", password=PASSWORD)
    browser.goto(f"{served}/admin/login")
    browser.submit(
        "document.querySelector('[name=email]').value = 'cleo@example.com';"
        f"document.querySelector('[name=password]').value = {json.dumps(PASSWORD)};"
        "document.querySelector('form.card').submit();"
    )
    assert "The console is for staff accounts." in browser.evaluate("document.body.innerText")
    shoot(browser, "refused")
    browser.goto(f"{served}/admin/")
    assert browser.evaluate("location.pathname") == "/admin/login"
