"""`/api/v1` for what the 资产 map, 漏洞 findings, 风险 and 检查评估 pages show, with the same numbers.

- `GET /api/v1/risk`: risk_report over the caller's tenancy (per asset, enterprise, and for roles that see
  every enterprise, city and industry), each score with its breakdown and daily trend — what /risk/ draws.
- `GET /api/v1/map`: the communication map (nodes, edges with their cross-zone flags, zones, summary).
- `GET /api/v1/findings`: "vulnerable device seen" findings from the CSAF index against the inventory.
- `GET /api/v1/assessments`: each enterprise's latest submitted self-assessment (an enterprise user: its own).
- `GET /api/v1/assessment`: one enterprise's questionnaire state: pre-fill from traffic, the draft (its own
  enterprise users), the latest submission and the score the report shows.
- `PUT /api/v1/assessment/draft`, `POST /api/v1/assessment/submit`: an enterprise user saves / submits.

Tenancy is the pages': every read goes through console.web.inventory / risk / assessment, which narrow by
`auth.organization()`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from . import assessment as sa
from . import assessment_items as qa
from . import inventory, risk
from .auth import audit, current_user, get_db, requires
from .i18n import _

api = Blueprint("risk_api", __name__, url_prefix="/api/v1")


@api.get("/risk")
@requires("data.read")
def api_risk() -> ResponseReturnValue:
    return jsonify(risk.report())


@api.get("/map")
@requires("data.read")
def api_map() -> ResponseReturnValue:
    return jsonify(inventory.commap_graph())


@api.get("/findings")
@requires("data.read")
def api_findings() -> ResponseReturnValue:
    result = inventory.load_findings() if not inventory.nothing() else inventory.Findings()
    items = sorted(result.items, key=inventory.SORTS["cvss"], reverse=True)
    return jsonify({"items": [f.to_dict() for f in items], "total": len(items), "problem": result.problem})


def _enterprise(org: str) -> dict[str, str]:
    e = sa._enterprise(org)
    return {"id": e.id, "name": e.name, "city": e.city, "industry": e.industry}


def _assessment(a: sa.Assessment | None) -> dict[str, Any] | None:
    return None if a is None else dict(a.__dict__)


@api.get("/assessments")
@requires("data.read")
def api_assessments() -> ResponseReturnValue:
    if inventory.nothing():
        return jsonify({"items": [], "total": 0})
    only = sa.organization()
    rows = [{"organization": _enterprise(e.id), "latest": _assessment(sa.latest_submitted(e.id))}
            for e in get_db().enterprises(only=only)]
    return jsonify({"items": rows, "total": len(rows)})


def _state(org: str) -> dict[str, Any]:
    report = sa.report_data()
    assert report is not None
    enterprise_user = sa._is_enterprise_user()
    return {
        "organization": _enterprise(org),
        "editable": enterprise_user,
        "prefill": sa.current_prefill(),
        "draft": _assessment(sa.draft_of(org)) if enterprise_user else None,
        "latest": _assessment(sa.latest_submitted(org)),
        "report": {"draft": report.draft, "assessment_id": report.assessment.id if report.assessment else None,
                   "result": report.result},
    }


def _org_or_400() -> str:
    org = sa._single_org()
    if org is None:
        if inventory.nothing():
            abort(404)
        raise BadRequest(_("api.assessment_org"))
    return org


@api.get("/assessment")
@requires("data.read")
def api_assessment() -> ResponseReturnValue:
    return jsonify(_state(_org_or_400()))


def _answers(body: Any, required: bool) -> dict[str, dict[str, Any]] | None:
    if not isinstance(body, dict):
        raise BadRequest(_("api.assessment_body"))
    raw = body.get("answers")
    if raw is None and not required:
        return None
    if not isinstance(raw, dict):
        raise BadRequest(_("api.assessment_body"))
    out: dict[str, dict[str, Any]] = {}
    for item, value in raw.items():
        if item not in qa.BY_ID or not isinstance(value, dict):
            raise BadRequest(_("assessment.bad_answer", item=str(item)[:40]))
        answer, note = value.get("answer"), value.get("note", "")
        if (answer is not None and answer not in qa.ANSWERS) or not isinstance(note, str):
            raise BadRequest(_("assessment.bad_answer", item=item))
        if answer or note.strip():
            out[item] = {"answer": answer or None, "note": note.strip()[: sa.MAX_NOTE]}
    return out


def _write(submit: bool) -> ResponseReturnValue:
    org = sa._single_org()
    if org is None or not sa._is_enterprise_user():
        abort(403)
    if not request.is_json:
        raise UnsupportedMediaType(_("error.json_body"))
    answers = _answers(request.get_json(silent=True), required=not submit)
    if answers is None:  # submit without a body: the saved draft as it stands
        draft = sa.draft_of(org)
        if draft is None:
            raise BadRequest(_("api.assessment_no_draft"))
        answers = draft.answers
    user = current_user()
    a = sa.save(org, answers, sa.current_prefill(), user.username if user else "-", submit=submit)
    audit("assessment.submit" if submit else "assessment.save", org, detail={"assessment": a.id, "via": "api"})
    return jsonify(_state(org) | {"saved": _assessment(a)})


@api.put("/assessment/draft")
@requires("assessment.answer")
def api_assessment_draft() -> ResponseReturnValue:
    return _write(submit=False)


@api.post("/assessment/submit")
@requires("assessment.answer")
def api_assessment_submit() -> ResponseReturnValue:
    return _write(submit=True)


# ---------------------------------------------------------------- OpenAPI


def describe(schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """This area's part of the OpenAPI document (called by openapi.py)."""
    from .openapi import ORG, _errors, _get, _json, _ref

    text, maybe = {"type": "string"}, {"type": ["string", "null"]}
    number, count = {"type": "number"}, {"type": "integer", "minimum": 0}

    def obj(props: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
        return {"type": "object", "required": [k for k in props if k not in optional], "additionalProperties": False,
                "properties": props}

    component = obj({"key": text, "points": number, "reason_en": text, "reason_zh": text, "params": {"type": "object"}})
    schemas["ApiRiskScore"] = obj({
        "kind": {"type": "string", "enum": ["asset", "enterprise", "city", "industry"]}, "subject": text, "name": maybe,
        "score": {"type": "number", "minimum": 0, "maximum": 100},
        "breakdown": {"type": "array", "items": component, "description": "the points that add up to the score, with reasons"},
        "trend": {"type": "array", "items": obj({"date": {"type": "string", "format": "date"}, "score": number}),
                  "description": "score at the end of each day, oldest first"},
    })
    scores = {"type": "array", "items": _ref("ApiRiskScore")}
    schemas["ApiRisk"] = obj({"generated": text, "assets": scores, "enterprises": scores,
                              "cities": {**scores, "description": "empty unless the role sees every enterprise, unnarrowed"},
                              "industries": scores})
    schemas["ApiMap"] = obj({
        "nodes": {"type": "array", "items": obj({
            "id": text, "ip": text, "organization": text, "role": maybe, "vendor": maybe, "vendor_zh": maybe, "model": maybe,
            "protocols": {"type": "array", "items": text}, "exposures": {"type": "array", "items": text},
            "zone": text, "level": {"type": ["number", "null"]}, "kind": text})},
        "edges": {"type": "array", "items": obj({
            "id": text, "source": text, "target": text, "protocol": text, "port": {"type": ["integer", "null"]},
            "messages": count, "bytes": count, "packets": count, "functions": {"type": "object"}, "actions": {"type": "object"},
            "first_seen": text, "last_seen": text, "source_zone": text, "target_zone": text,
            "flags": {"type": "array", "items": text, "description": "it_ot, internet_control, cross_enterprise, ..."}})},
        "zones": {"type": "array", "items": {"type": "object"}},
        "summary": obj({"nodes": count, "edges": count, "zones": count, "flagged": {"type": "object"}}),
    })
    schemas["ApiFinding"] = obj({
        "asset_id": text, "ip": text, "organization": maybe, "advisory_id": text, "title": text, "url": maybe,
        "status": {"type": "string", "enum": ["affected", "possible"]}, "match": text, "matched_on": text, "product": text,
        "product_id": text, "version_range": text, "firmware": maybe, "cves": {"type": "array", "items": text},
        "max_cvss": {"type": ["number", "null"]}, "vector": maybe, "known_exploited": {"type": "boolean"},
        "remediations": {"type": "array", "items": {"type": "object"}}, "evidence": {"type": "array", "items": {"type": "object"}},
    })
    schemas["ApiFindings"] = obj({"items": {"type": "array", "items": _ref("ApiFinding")}, "total": count,
                                  "problem": {**maybe, "description": "why there are none (no CSAF index yet, unreadable)"}})
    answer = obj({"answer": {"type": ["string", "null"], "enum": [*qa.ANSWERS, None]}, "note": text}, optional=("note",))
    answers = {"type": "object", "propertyNames": {"enum": list(qa.BY_ID)}, "additionalProperties": answer,
               "description": "item id (M1, T4, ...) -> answer"}
    schemas["ApiAssessment"] = {**obj({
        "id": {"type": "integer"}, "organization": text, "status": {"type": "string", "enum": ["draft", "submitted"]},
        "answers": answers, "prefill": {"type": "object"}, "result": {"type": ["object", "null"]}, "author": text,
        "created": text, "updated": text, "submitted": maybe})}
    enterprise = obj({"id": text, "name": text, "city": text, "industry": text})
    nullable_assessment = {"oneOf": [_ref("ApiAssessment"), {"type": "null"}]}
    state = {
        "organization": enterprise, "editable": {"type": "boolean", "description": "the caller may save and submit"},
        "prefill": {"type": "object", "description": "item id -> {answer, evidence} as the stored traffic shows it"},
        "draft": nullable_assessment, "latest": nullable_assessment,
        "report": obj({"draft": {"type": "boolean"}, "assessment_id": {"type": ["integer", "null"]},
                       "result": obj({"areas": {"type": "object"}, "total": {"type": ["number", "null"]}, "answered": count,
                                      "gaps": {"type": "array", "items": {"type": "object"}},
                                      "remediation": {"type": "array", "items": {"type": "object"}}})}),
    }
    schemas["ApiAssessmentState"] = obj(state)
    schemas["ApiAssessmentSaved"] = obj({**state, "saved": _ref("ApiAssessment")})
    schemas["ApiAssessmentAnswers"] = {"type": "object", "properties": {"answers": answers},
                                       "description": "submit: omit `answers` to submit the saved draft"}
    data_errors = ("400", "401", "403", "503")
    body = {"required": True, "content": {"application/json": {"schema": _ref("ApiAssessmentAnswers")}}}
    write_errors = _errors("400", "401", "403", "415")
    paths.update({
        "/api/v1/risk": {"get": _get("Risk scores (风险) per asset, enterprise, city, industry, with breakdowns and trends",
                                     "risk", _json(_ref("ApiRisk")), *data_errors, params=[ORG])},
        "/api/v1/map": {"get": _get("Communication map (资产通信): assets, flows with cross-zone flags, zones", "risk",
                                    _json(_ref("ApiMap")), *data_errors, params=[ORG])},
        "/api/v1/findings": {"get": _get("Vulnerable devices seen (CSAF advisories matched against the inventory), highest CVSS first",
                                         "risk", _json(_ref("ApiFindings")), *data_errors, params=[ORG])},
        "/api/v1/assessments": {"get": _get("Each enterprise's latest submitted self-assessment (检查评估)", "assessment",
                                            _json({"type": "object", "required": ["items", "total"], "additionalProperties": False,
                                                   "properties": {"items": {"type": "array", "items": obj(
                                                       {"organization": enterprise, "latest": nullable_assessment})},
                                                       "total": count}}),
                                            *data_errors, params=[ORG])},
        "/api/v1/assessment": {"get": _get("One enterprise's self-assessment: pre-fill from traffic, draft, latest submission, "
                                           "score (roles that see every enterprise name it with ?org=)", "assessment",
                                           _json(_ref("ApiAssessmentState")), "400", "401", "403", "404", "503", params=[ORG])},
        "/api/v1/assessment/draft": {"put": {"summary": "Save the draft (enterprise users)", "tags": ["assessment"],
                                             "requestBody": body,
                                             "responses": {"200": _json(_ref("ApiAssessmentSaved")), **write_errors}}},
        "/api/v1/assessment/submit": {"post": {"summary": "Submit: score the answers and keep them as the latest submission "
                                                          "(enterprise users)", "tags": ["assessment"], "requestBody": body,
                                               "responses": {"200": _json(_ref("ApiAssessmentSaved")), **write_errors}}},
    })
