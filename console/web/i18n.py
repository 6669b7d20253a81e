"""UI strings in zh-CN (default) and English: JSON catalogs per language, `_()` in Python and Jinja.

`translations/<lang>.json` is the main catalog; an area may keep its strings in
`translations/<area>.<lang>.json` (merged in; a key defined twice is an error).

The language comes from `?lang=` (remembered in the `lang` cookie), else the cookie, else the app's
LANGUAGE setting. Catalog values are plain text with `{name}` placeholders; Jinja escapes them like
any other string.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, has_request_context, redirect, request

LANGUAGES = ("zh-CN", "en")
CATALOG_DIR = Path(__file__).parent / "translations"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for path in [CATALOG_DIR / f"{lang}.json", *sorted(CATALOG_DIR.glob(f"*.{lang}.json"))]:
        with path.open(encoding="utf-8") as f:
            part: dict[str, str] = json.load(f)
        twice = sorted(data.keys() & part.keys())
        if twice:
            raise ValueError(f"{path}: keys already defined in another {lang} catalog: {', '.join(twice[:5])}")
        data.update(part)
    return data


def _valid(lang: str | None) -> str | None:
    return lang if lang in LANGUAGES else None


def current_language() -> str:
    if has_request_context() and "lang" in g:
        return str(g.lang)
    default = current_app.config.get("LANGUAGE") if current_app else None
    return _valid(default) or LANGUAGES[0]


def gettext(key: str, **params: Any) -> str:
    text = catalog(current_language()).get(key) or catalog("en").get(key) or key
    return text.format(**params) if params else text


_ = gettext


def _choose() -> None:
    g.lang = (
        _valid(request.args.get("lang"))
        or _valid(request.cookies.get(COOKIE))
        or _valid(current_app.config.get("LANGUAGE"))
        or LANGUAGES[0]
    )


def _remember(response: Response) -> Response:
    asked = _valid(request.args.get("lang"))
    if asked and request.cookies.get(COOKIE) != asked:
        response.set_cookie(COOKIE, asked, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True)
    return response


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never `//host` or `http://host` (no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def switch_language(code: str) -> Response:
    lang = _valid(code)
    target = _safe_next(request.args.get("next"))
    response = redirect(target, code=303)
    if lang:
        response.set_cookie(COOKIE, lang, max_age=COOKIE_MAX_AGE, samesite="Lax", httponly=True)
    return response


def init_app(app: Flask) -> None:
    app.before_request(_choose)
    app.after_request(_remember)
    app.add_url_rule("/lang/<code>", "switch_language", switch_language)
    app.jinja_env.globals["_"] = gettext
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_language"] = current_language
