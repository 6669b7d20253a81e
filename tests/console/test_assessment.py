"""检查评估: the questionnaire, its arithmetic, the pre-fill from stored traffic, drafts, submission, reports (HTML, PDF)
and the gaps it feeds into the enterprise risk score; plus an enterprise user's journey in headless Chromium."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, Response, render_template_string
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from console.web import assessment_items as qa
from console.web.auth import PUBLIC, get_db, requires
from detection.risk import Gap
from tests.console.analysis_data import ORGS, QN_PLC, analysis_app, expected_report
from tests.console.conftest import PASSWORD, close_app, csrf_of, login

# the pinned example: every item "yes" except these (O9 left unanswered)
EXAMPLE = {"M1": "no", "M2": "partly", "T4": "no", "T6": "na", "R1": "partly", "O9": None}


def example_answers() -> dict[str, dict[str, str | None]]:
    return {i.id: {"answer": EXAMPLE.get(i.id, "yes"), "note": ""} for i in qa.ITEMS if EXAMPLE.get(i.id, "yes")}


@pytest.fixture
def app(db_path: Path, tmp_path: Path) -> Iterator[Flask]:
    app = analysis_app(db_path, tmp_path)
    yield app
    close_app(app)


def client(app: Flask, username: str, lang: str = "en") -> FlaskClient:
    c = app.test_client()
    c.set_cookie("lang", lang)
    return login(c, username)


def form_post(c: FlaskClient, answers: dict[str, dict[str, str | None]], action: str, **extra: str):  # type: ignore[no-untyped-def]
    token = csrf_of(c.get("/assessment/").get_data(as_text=True))
    data = {"csrf_token": token, "action": action, **extra}
    for item, a in answers.items():
        if a.get("answer"):
            data[f"answer-{item}"] = a["answer"]
        if a.get("note"):
            data[f"note-{item}"] = a["note"]
    return c.post("/assessment/", data=data)


def item_row(html: str, item: str) -> str:
    return re.search(rf'<tr class="item" id="item-{item}">.*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]


# ---------------------------------------------------------------- the questionnaire and its arithmetic


def test_questionnaire_follows_the_guides_four_areas() -> None:
    assert 25 <= len(qa.ITEMS) <= 40
    assert len({i.id for i in qa.ITEMS}) == len(qa.ITEMS)
    assert [a.zh for a in qa.AREAS] == ["安全管理", "技术防护", "安全运营", "责任落实"]
    assert {i.area for i in qa.ITEMS} == {a.id for a in qa.AREAS}
    for i in qa.ITEMS:
        assert i.zh and i.en and i.topic_zh and i.topic_en and i.weight > 0
        assert re.search(r"[\u4e00-\u9fff]", i.zh) and not re.search(r"[\u4e00-\u9fff]", i.en)
    prefilled = {i.prefill for i in qa.ITEMS if i.prefill}
    assert prefilled == {"inventory", "vulns", "insecure", "cross_zone", "it_ot", "remote_access", "unapproved_writes",
                         "monitoring", "untriaged", "program_download"}


def test_score_arithmetic_is_pinned() -> None:
    r = qa.score(example_answers(), traffic_gaps=["T4", "M7"])
    # management 14/18, technical 28/32 (T6 n/a), operations 19/23 (O9 unanswered), responsibility 11.5/13
    assert r.areas == {"management": 77.8, "technical": 87.5, "operations": 82.6, "responsibility": 88.5}
    assert r.total == 84.3  # 72.5 / 86
    assert r.answered == len(qa.ITEMS) - 1
    assert [(g.id, g.weight) for g in r.gaps] == [("M1", 3.0), ("M2", 1.0), ("T4", 4.0), ("O9", 4.0), ("R1", 1.5)]
    # priority = weight × (1 − credit), doubled where traffic shows the gap (T4)
    assert [(t["id"], t["priority"]) for t in r.remediation] == [("T4", 8.0), ("O9", 4.0), ("M1", 3.0), ("R1", 1.5), ("M2", 1.0)]
    assert qa.score({}).total == 0.0 and qa.score({i.id: {"answer": "na"} for i in qa.ITEMS}).total is None


def test_prefill_from_facts() -> None:
    f = qa.Facts(assets=2, identified=0, events=10, flagged_edges={"remote_access": [
        {"source": "a:10.0.0.5", "target": "a:10.0.0.10", "protocol": "rdp", "source_zone": "x", "target_zone": "y",
         "messages": 0, "packets": 12}]})
    p = qa.prefill(f)
    assert p["M1"].answer == "partly" and p["T4"].answer == "yes" and p["T7"].answer == "partly"
    assert "10.0.0.5 → 10.0.0.10 rdp" in p["T7"].evidence[0]["ref"]
    assert "M7" not in p  # no CSAF index: the traffic cannot judge patching
    assert qa.prefill(qa.Facts())["M1"].answer == "no"


# ---------------------------------------------------------------- pre-fill from the seeded store


def test_acme_modbus_traffic_prefills_insecure_protocols_as_a_gap_with_evidence(app: Flask) -> None:
    body = client(app, "acme-user").get("/assessment/").get_data(as_text=True)
    t4 = item_row(body, "T4")
    assert 'data-prefill="no"' in t4 and "modbus: 120 events without authentication" in t4
    assert "event ev-acme-0-req attack.pcap#1" in t4  # the first Modbus frame, as evidence
    assert "OPC UA endpoint with security mode None: 1 assets" in t4 and QN_PLC in t4
    assert re.search(r'name="answer-T4" value="no"\s+checked', t4)
    m1 = item_row(body, "M1")
    assert 'data-prefill="yes"' in m1 and "4 assets seen, 3 with vendor/model identified" in m1
    assert 'data-prefill="no"' in item_row(body, "T10") and "20 alerts" in item_row(body, "T10") and "al-acme-057" in item_row(body, "T10")
    assert 'data-prefill="no"' in item_row(body, "M7") and QN_PLC in item_row(body, "M7")
    assert 'data-prefill="partly"' in item_row(body, "O5") and "30 high/critical alerts" in item_row(body, "O5")
    assert "data-prefill" not in item_row(body, "O9") and "data-prefill" not in item_row(body, "R1")
    zh = client(app, "acme-user", "zh-CN").get("/assessment/").get_data(as_text=True)
    assert "modbus：120 条无认证通信事件" in item_row(zh, "T4") and "技术防护" in zh
    globex = client(app, "globex-user").get("/assessment/?org=acme").get_data(as_text=True)
    o9 = item_row(globex, "O9")
    assert 'data-prefill="no"' in o9 and "3 program download alerts" in o9 and "al-globex-000" in o9
    assert "Acme" not in globex and "al-acme" not in globex and "10.0.0." not in globex


# ---------------------------------------------------------------- drafts, submission, reports


def test_draft_then_submit_scores_and_reports(app: Flask, db_path: Path) -> None:
    c = client(app, "acme-user")
    answers = example_answers()
    answers["M2"]["note"] = "两台 PLC 未冗余"
    saved = form_post(c, answers, "save")
    assert saved.status_code == 303 and saved.headers["Location"].endswith("/assessment/")
    body = c.get("/assessment/").get_data(as_text=True)
    assert re.search(r'name="answer-M2" value="partly"\s+checked', item_row(body, "M2")) and "两台 PLC 未冗余" in body
    assert re.search(r'name="answer-T6" value="na"\s+checked', item_row(body, "T6"))
    draft = c.get("/assessment/report").get_data(as_text=True)
    assert "Draft (not submitted)" in draft
    done = form_post(c, answers, "submit")
    assert done.status_code == 303 and done.headers["Location"].endswith("/assessment/report")
    report = c.get("/assessment/report").get_data(as_text=True)
    assert '<th class="num" id="total-score">84.3</th>' in report
    assert [m for m in re.findall(r'<tr class="todo" data-item="([^"]+)"', report)] == ["T4", "O9", "M1", "R1", "M2"]
    assert "@media print" in Path("console/web/static/analysis.css").read_text()
    assert "两台 PLC 未冗余" in report and "event ev-acme-0-req attack.pcap#1" in report
    # the regulator sees the latest submission of each enterprise
    reg = client(app, "regulator")
    listing = reg.get("/assessment/").get_data(as_text=True)
    acme_row = next(r for r in re.findall(r'<tr class="assessment-row">(.*?)</tr>', listing, re.S) if "acme" in r)
    assert "84.3" in acme_row
    assert "84.3" in reg.get("/assessment/report?org=acme").get_data(as_text=True)
    assert reg.get("/assessment/report.pdf?org=globex").status_code == 404  # nothing submitted
    other = client(app, "globex-user").get("/assessment/report?org=acme").get_data(as_text=True)
    assert "84.3" not in other and "Acme" not in other
    # the unmet items are gaps in acme's risk score, as risk_report computes them
    gaps = {"acme": [Gap("T4", 4.0, "", ""), Gap("O9", 4.0), Gap("M1", 3.0), Gap("R1", 1.5), Gap("M2", 1.0)]}
    want = expected_report(db_path, Path(app.config["CSAF_INDEX"]), gaps=gaps)
    acme = next(s for s in want["enterprises"] if s["subject"] == "acme")
    assert [c["key"] for c in acme["breakdown"] if c["key"].startswith("gaps.")] == ["gaps.O9", "gaps.T4", "gaps.M1", "gaps.R1", "gaps.M2"]
    risk = reg.get("/risk/").get_data(as_text=True)
    assert f'data-subject="acme" data-score="{acme["score"]}"' in risk and "self-assessment item not met" in risk
    with app.app_context():
        entries, _n = get_db().audit_log(actor="acme-user", size=100)
    assert [(e.action, e.target) for e in entries if e.action.startswith("assessment.")] == [
        ("assessment.submit", "acme"), ("assessment.save", "acme")]


def test_who_may_answer(app: Flask) -> None:
    for username in ("admin", "regulator", "analyst"):
        c = client(app, username)
        token = c.get("/api/v1/session").get_json()["csrf_token"]
        assert c.post("/assessment/", data={"csrf_token": token, "action": "submit"}).status_code == 403
        assert "assessment-form" not in c.get("/assessment/?org=acme").get_data(as_text=True)
    c = client(app, "acme-user")
    assert c.post("/assessment/", data={"action": "submit"}).status_code == 403  # no CSRF token
    assert form_post(c, {"M1": {"answer": "maybe"}}, "save").status_code == 400
    auditor = client(app, "auditor")
    assert auditor.get("/assessment/").status_code == 403 and auditor.get("/assessment/report.pdf").status_code == 403


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (Debian poppler-utils)")
def test_pdf_report_renders_chinese(app: Flask, tmp_path: Path) -> None:
    c = client(app, "acme-user", "zh-CN")
    assert c.get("/assessment/report.pdf").status_code == 404  # nothing saved yet
    form_post(c, example_answers(), "submit")
    resp = c.get("/assessment/report.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="assessment-acme-')
    pdf = resp.get_data()
    assert pdf.startswith(b"%PDF")
    (tmp_path / "r.pdf").write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = re.sub(r"\s+", "", text)
    assert ORGS["acme"]["name"].replace(" ", "") in flat
    assert "建立工业控制系统资产清单" in flat and "工业控制系统网络安全检查评估报告" in flat
    assert "84.3" in flat and "ev-acme-0-req" in flat  # the total, and evidence references


# ---------------------------------------------------------------- in a real browser

CHROMIUM = Path("/usr/bin/chromium")
AUTO_LOGIN = """<!doctype html><form method="post" action="/login">
<input type="hidden" name="csrf_token" value="{{ csrf_token() }}"><input name="username" value="{{ username }}">
<input type="password" name="password" value="{{ password }}"><input name="next" value="{{ request.args.next }}">
</form><script nonce="{{ nonce }}">document.forms[0].submit()</script>"""
# Loads the real form page, takes its pre-filled answers and CSRF token, answers the rest as a person
# would, submits, follows to the report and downloads the PDF; writes what happened into the page.
JOURNEY = """<!doctype html><pre id="out">pending</pre><script nonce="{nonce}">
(async () => {
  const out = document.getElementById("out");
  try {
    const html = await (await fetch("/assessment/")).text();
    const form = new DOMParser().parseFromString(html, "text/html").getElementById("assessment-form");
    const data = new FormData(form);
    for (const input of form.querySelectorAll("input[type=radio]")) {
      if (!data.get(input.name)) data.set(input.name, "yes");
    }
    data.set("answer-M2", "partly"); data.set("note-M2", "browser journey"); data.set("action", "submit");
    const posted = await fetch("/assessment/", {method: "POST", body: new URLSearchParams(data)});
    const report = await posted.text();
    const pdf = await fetch("/assessment/report.pdf");
    const bytes = new Uint8Array(await pdf.arrayBuffer());
    const total = new DOMParser().parseFromString(report, "text/html").getElementById("total-score");
    out.textContent = JSON.stringify({status: posted.status, url: posted.url, total: total && total.textContent,
      pdf: pdf.status, type: pdf.headers.get("content-type"), magic: String.fromCharCode(...bytes.slice(0, 5)), size: bytes.length});
  } catch (e) { out.textContent = "error " + e; }
})();
</script>"""


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package chromium)")
def test_enterprise_user_completes_a_self_assessment_in_chromium(db_path: Path, tmp_path: Path) -> None:
    app = analysis_app(db_path, tmp_path, TESTING=False, SECRET_KEY="browser-test")

    @app.get("/_test/login-as/<username>")
    @requires(PUBLIC)
    def login_as(username: str) -> Response:
        return _own_script(render_template_string(AUTO_LOGIN, username=username, password=PASSWORD, nonce=nonce))

    @app.get("/_test/assessment-journey")
    @requires(PUBLIC)
    def journey() -> Response:
        return _own_script(JOURNEY.replace("{nonce}", nonce))

    # the console's policy allows no inline script; these test-only pages allow their own, by nonce
    nonce = secrets.token_urlsafe(16)

    def _own_script(html: str) -> Response:
        page = Response(html)
        page.headers["Content-Security-Policy"] = f"script-src 'nonce-{nonce}'; connect-src 'self'; frame-ancestors 'none'"
        return page

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/_test/login-as/acme-user?next=/_test/assessment-journey"
        done = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=30000", "--dump-dom", url],
            capture_output=True, text=True, timeout=180, check=False)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        close_app(app)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="out">(.*?)</pre>', done.stdout, re.S)
    assert found, done.stdout[-2000:]
    result = json.loads(found.group(1).replace("&quot;", '"'))
    assert result["status"] == 200 and result["url"].endswith("/assessment/report"), result
    assert result["pdf"] == 200 and result["type"] == "application/pdf" and result["magic"] == "%PDF-" and result["size"] > 5000
    # pre-filled gaps stayed (T4 no, T10 no, M7 no, M1 yes, O5 partly...), the rest answered yes, M2 partly
    assert result["total"] and 50 < float(result["total"]) < 100, result
