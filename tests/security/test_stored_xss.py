"""Stored XSS through packet-derived strings: real testbed captures (pcaps/) with device and software names
swapped, byte for byte at the same length, for markup; plus a BACnet I-Have naming an object in markup. They
are uploaded to the console and replayed through the real sensors, detection and store; then every page of
app.url_map (alert, event, asset, evidence ids filled from what the replay stored) is rendered and must show
the strings escaped, never as markup. One Chromium pass checks that no script runs.

The swapped fields: Modbus 43/14 vendor and product names, S7 SZL module name, type name and order number,
MQTT topics and client ids, OPC UA application name and URI, EtherNet/IP product name, BACnet object name.
"""

from __future__ import annotations

import html
import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console.web import captures
from pipeline.store.sqlite import SQLiteStore
from tests.console.conftest import close_app, login, make_app, seed_accounts
from tests.console.test_tenancy import IDS, OTHER_ARGS

PCAPS = Path(__file__).resolve().parents[2] / "pcaps"
LONG = "<svg onload=xss=1>"  # runs script if ever parsed as markup


def markup(n: int) -> str:
    """Markup exactly n characters long (n >= 8): a script-running tag when there is room, else a plain one."""
    if n >= len(LONG):
        return LONG + "_" * (n - len(LONG))
    return "<i>" + "z" * (n - 7) + "</i>"


# capture -> strings it carries that the sensor reports (seen in the decoded events of these files)
SWAPS = {
    "modbus/modbus_plant_attack.pcap": ["Qinling Testbed", "Qinling simulated PLC"],
    "s7comm/s7comm_plant_attack.pcap": ["CPU317-101", "CPU 317-2 PN/DP", "6ES7 317-2EK14-0AB0"],
    "mqtt/mqtt_plant_attack.pcap": ["plant/line1/pump/cmd", "gateway-line1"],
    "opcua/opcua_plant_attack.pcap": ["Pure Python Async Client", "urn:qinling:testbed:client"],
    "enip/enip_plant_attack.pcap": ["1756-L71/B LOGIX5571"],
}
BACNET_NAME = "<svg onload=xss=1>Boiler-1 <b>hot</b>"


def swapped(rel: str) -> tuple[bytes, list[str]]:
    data = (PCAPS / rel).read_bytes()
    out = []
    for i, s in enumerate(SWAPS[rel]):
        raw = s.encode()
        evil = markup(len(raw))
        if i and evil in out:  # same length as an earlier one: vary it so each can be traced
            evil = evil[:-2] + chr(ord("a") + i) + evil[-1]
        assert raw in data, (rel, s)
        data = data.replace(raw, evil.encode())
        out.append(evil)
    return data, out


def bacnet_i_have() -> bytes:
    """A pcap of one BACnet/IP I-Have broadcast whose objectName is markup."""
    name = b"\x00" + BACNET_NAME.encode()
    apdu = bytes([0x10, 0x01]) + b"\xc4" + struct.pack(">I", (8 << 22) | 1001) + b"\xc4" + struct.pack(">I", (0 << 22) | 1)
    apdu += b"\x75" + bytes([len(name)]) + name
    npdu = b"\x01\x00"
    bvlc = b"\x81\x0b" + struct.pack(">H", 4 + len(npdu) + len(apdu))
    payload = bvlc + npdu + apdu
    udp = struct.pack(">HHHH", 47808, 47808, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, bytes([10, 0, 5, 20]), bytes([10, 0, 5, 255])) + udp
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x05\x14" + b"\x08\x00" + ip
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + struct.pack("<IIII", 1_700_000_000, 0, len(frame), len(frame)) + frame


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, list[str]]]:
    root = tmp_path_factory.mktemp("xss")
    with SQLiteStore(root / "console.sqlite"):
        pass
    seed_accounts(root / "accounts.sqlite")
    app = make_app(root / "console.sqlite", ORGANIZATION=None)
    c = login(app.test_client(), "admin")
    token = c.get("/api/v1/session").get_json()["csrf_token"]
    strings = [BACNET_NAME]
    files = [("bacnet-i-have.pcap", bacnet_i_have())]
    for rel in SWAPS:
        data, evil = swapped(rel)
        strings += evil
        files.append((Path(rel).name, data))
    for name, data in files:
        resp = c.post("/api/v1/captures", data={"capture": (io.BytesIO(data), name), "org": "acme"},
                      headers={"X-CSRF-Token": token}, content_type="multipart/form-data")
        assert resp.status_code == 202, resp.get_json()
    assert captures.state(app).worker.wait(600)
    for cap in c.get("/api/v1/captures?org=acme").get_json()["items"]:
        assert cap["status"] == "done" and cap["events"] > 0, cap
    yield app, strings
    captures.close(app)
    close_app(app)


def ids(c: FlaskClient, path: str, strings: list[str], key: str = "id") -> list[str]:
    """Ids of the documents listed at `path` that carry one of the strings (all of them when none does)."""
    items = c.get(path).get_json()["items"]
    hits = [i for i in items if any(s in json.dumps(i, ensure_ascii=False) for s in strings)]
    def get(i: dict) -> str:  # type: ignore[type-arg]
        for part in key.split("."):
            i = i[part]
        return str(i)
    return [get(i) for i in (hits or items)]


def pages(app: Flask, c: FlaskClient, strings: list[str]) -> list[str]:
    from flask import url_for

    fill = {
        "alert_id": ids(c, "/api/v1/alerts?org=acme&size=500", strings, "event.id")[:25],
        "event_id": [e for ds in ("bacnet", "modbus", "s7comm", "mqtt", "opcua", "enip") for order in ("asc", "desc")
                     for e in ids(c, f"/api/v1/events?org=acme&size=500&dataset={ds}&sort=time&order={order}", strings,
                                  "event.id")[:8]],
        "asset_id": ids(c, "/api/v1/assets?org=acme&size=500", strings)[:25],
        "sha256": [cap["sha256"] for cap in c.get("/api/v1/captures?org=acme").get_json()["items"]],
    }
    assert fill["event_id"] and fill["asset_id"] and fill["alert_id"]
    out = set()
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in (rule.methods or ()) or rule.endpoint in ("static", "switch_language"):
                continue
            names = [a for a in rule.arguments if not (rule.defaults and a in rule.defaults)]
            varied = next((a for a in names if a in fill), None)
            for value in fill[varied] if varied else [None]:
                args = {a: (value if a == varied else IDS["acme"].get(a, OTHER_ARGS.get(a))) for a in names}
                out.add(url_for(rule.endpoint, **args, org="acme"))
    return sorted(out)


def test_every_page_shows_packet_strings_escaped(site) -> None:  # type: ignore[no-untyped-def]
    app, strings = site
    c = login(app.test_client(), "admin")
    shown: dict[str, list[str]] = {s: [] for s in strings}
    rendered = 0
    for url in pages(app, c, strings):
        resp = c.get(url)
        try:
            if resp.status_code >= 400:
                assert resp.status_code < 500, url
                continue
            body = resp.get_data().decode("utf-8", "replace")
            if resp.mimetype == "text/html":
                rendered += 1
                for s in strings:
                    assert s not in body, f"{url}: {s!r} unescaped"
                    if html.escape(s, quote=False) in body or html.escape(s) in body:
                        shown[s].append(url)
            else:  # JSON, CSV, zip, PDF: never served as HTML, and the browser may not sniff them into it
                assert resp.headers.get("X-Content-Type-Options") == "nosniff", url
        finally:
            resp.close()
    assert rendered >= 40
    not_shown = [s for s, where in shown.items() if not where]
    assert not not_shown, f"never rendered anywhere, so not tested: {not_shown}"


@pytest.mark.browser
def test_no_script_runs_in_chromium(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("needs /usr/bin/chromium")
    import threading

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from tests.console.conftest import PASSWORD

    app, strings = site
    c = login(app.test_client(), "admin")
    urls = []
    for u in pages(app, c, strings):  # the HTML pages that show one of the strings
        resp = c.get(u)
        body = resp.get_data().decode("utf-8", "replace")
        if resp.mimetype == "text/html" and any(html.escape(s, quote=False) in body for s in strings):
            urls.append(u)
        resp.close()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    def browse() -> tuple[int, list[str], list[str], list[str]]:
        ran, dialogs, violations = [], [], []  # violations: the console's own pages must need nothing the policy refuses
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: violations.append(f"{page.url}: {m.text}") if "Content Security Policy" in m.text else None)
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            visited = 0
            for url in urls:
                resp = page.goto(base + url)
                if resp is None or resp.status >= 400:
                    continue
                visited += 1
                if page.evaluate("typeof window.xss") != "undefined":
                    ran.append(url)
            browser.close()
        return visited, ran, dialogs, violations

    # Playwright's sync API refuses a thread with a running event loop (the browser journeys leave one
    # in the main thread when they run in the same session): the browser is driven from its own thread.
    result: list[tuple[int, list[str], list[str], list[str]]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(browse())
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(e)

    try:
        driver = threading.Thread(target=run)
        driver.start()
        driver.join(600)
        if errors:
            raise errors[0]
        visited, ran, dialogs, violations = result[0]
        assert visited >= 10, visited
        assert not ran, f"script ran on {ran}"
        assert not dialogs and not violations, (dialogs, violations[:5])
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
