"""检查评估 report as PDF, drawn server-side with reportlab (pure Python) in a CJK font.

The font is PDF_FONT (default: Debian's fonts-wqy-microhei, a TrueType collection; embedded as a
subset so the PDF reads anywhere); when that file is missing, reportlab's built-in STSong-Light CID
font is used (not embedded: the reader must supply it).
"""

from __future__ import annotations

import io
import os
import threading
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from flask import current_app

from . import assessment_items as qa
from .i18n import _, current_language

if TYPE_CHECKING:
    from .assessment import Report

DEFAULT_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
_lock = threading.Lock()
_registered: dict[str, str] = {}


def _font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    path = str(current_app.config.get("PDF_FONT") or DEFAULT_FONT)
    with _lock:
        if path not in _registered:
            if os.path.exists(path):
                name = f"QinlingCJK{len(_registered)}"
                pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))
            else:
                name = "STSong-Light"
                pdfmetrics.registerFont(UnicodeCIDFont(name))
            _registered[path] = name
        return _registered[path]


def _p(text: Any) -> str:
    return escape(str(text if text is not None else ""))


def render_pdf(r: Report) -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = _font()
    zh = current_language() == "zh-CN"
    base = ParagraphStyle("base", fontName=font, fontSize=9, leading=13, wordWrap="CJK")
    small = ParagraphStyle("small", parent=base, fontSize=7.5, leading=10, textColor=colors.HexColor("#555555"))
    h1 = ParagraphStyle("h1", parent=base, fontSize=16, leading=22, spaceAfter=6)
    h2 = ParagraphStyle("h2", parent=base, fontSize=12, leading=17, spaceBefore=10, spaceAfter=4)
    grid = TableStyle([("FONTNAME", (0, 0), (-1, -1), font), ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#999999")),
                       ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef5")), ("VALIGN", (0, 0), (-1, -1), "TOP")])
    a = r.assessment
    assert a is not None
    res = r.result
    ent = r.enterprise
    story: list[Any] = [
        Paragraph(_p(_("assessment.report_title")), h1),
        Paragraph(_p(f"{ent.name} ({ent.id}) · {ent.city} · {ent.industry}"), base),
        Paragraph(_p(_("assessment.basis") + ": " + (qa.SOURCE if zh else qa.SOURCE_EN)), small),
        Paragraph(_p(f"{_('assessment.status')}: {_('assessment.status.' + ('draft' if r.draft else a.status))} · "
                     f"{_('assessment.submitted_at')}: {a.submitted or '—'} · {_('assessment.author')}: {a.author} · "
                     f"{_('assessment.generated')}: {r.generated}"), small),
        Spacer(1, 4 * mm),
        Paragraph(_p(_("assessment.scores")), h2),
    ]
    rows = [[Paragraph(_p(_("assessment.area")), base), Paragraph(_p(_("assessment.score")), base)]]
    for area in qa.AREAS:
        s = res["areas"].get(area.id)
        rows.append([Paragraph(_p(f"{area.zh} {area.en}"), base), Paragraph(_p("—" if s is None else s), base)])
    rows.append([Paragraph(_p(_("assessment.total")), base), Paragraph(_p("—" if res["total"] is None else res["total"]), base)])
    t = Table(rows, colWidths=[120 * mm, 40 * mm])
    t.setStyle(grid)
    story += [t, Paragraph(_p(_("assessment.remediation")), h2)]
    rows = [[Paragraph(_p(h), base) for h in ("#", _("assessment.item"), _("assessment.answer"), _("assessment.priority"))]]
    for n, todo in enumerate(res["remediation"], 1):
        text = f"{todo['id']} {todo['zh']}" + ("" if zh else f" — {todo['en']}")
        if todo["traffic"]:
            text += f" [{_('assessment.traffic_evidence')}]"
        rows.append([Paragraph(str(n), base), Paragraph(_p(text), base),
                     Paragraph(_p(_("assessment.answer." + (todo["answer"] or "none"))), base), Paragraph(_p(todo["priority"]), base)])
    t = Table(rows, colWidths=[10 * mm, 120 * mm, 20 * mm, 20 * mm], repeatRows=1)
    t.setStyle(grid)
    story.append(t)
    for area, items in r.groups:
        story.append(Paragraph(_p(f"{area.zh} · {area.en}"), h2))
        rows = [[Paragraph(_p(h), base) for h in (_("assessment.item"), _("assessment.weight"), _("assessment.answer"), _("assessment.evidence"))]]
        for item in items:
            ans = a.answers.get(item.id) or {}
            pre = a.prefill.get(item.id) or {}
            text = f"<b>{item.id}</b> {_p(item.zh)}<br/><font size=7.5>{_p(item.en)}</font>"
            if ans.get("note"):
                text += f"<br/><font size=7.5>{_p(_('assessment.note'))}: {_p(ans['note'])}</font>"
            ev = "<br/>".join(f"{_p(e['zh'] if zh else e['en'])}{(' — ' + _p(e['ref'])) if e.get('ref') else ''}" for e in pre.get("evidence", []))
            rows.append([Paragraph(text, base), Paragraph(_p(item.weight), base),
                         Paragraph(_p(_("assessment.answer." + (ans.get("answer") or "none"))), base), Paragraph(ev, small)])
        t = Table(rows, colWidths=[85 * mm, 14 * mm, 20 * mm, 55 * mm], repeatRows=1)
        t.setStyle(grid)
        story.append(t)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=15 * mm,
                            title=f"{_('assessment.report_title')} · {ent.name}", author="Qinling")
    doc.build(story)
    return buf.getvalue()
