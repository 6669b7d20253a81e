"""The console database: users, sessions, API tokens, login throttling, the audit log and enterprises.

A small SQLite file kept apart from the event store (the event store may be Elasticsearch, and its
documents are written by the pipeline; these rows are written only by the console and `qinling
users`). Passwords are argon2id hashes; session ids and API tokens are stored only as SHA-256
digests, so a copy of this file opens no session.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ROLES = ("admin", "regulator", "analyst", "enterprise", "auditor")
# Roles that read every enterprise's data (an optional ?org= filter narrows it); enterprise users are
# bound to theirs; auditors read the audit log and the account lists, no traffic data.
ALL_ORGS_ROLES = frozenset({"admin", "regulator", "analyst"})
DATA_ROLES = frozenset({"admin", "regulator", "analyst", "enterprise"})
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
MIN_PASSWORD = 8

MAX_FAILURES = 5  # failed logins per (username, IP) within LOCK_WINDOW before it is locked
LOCK_WINDOW = dt.timedelta(minutes=15)
LOCK_FOR = dt.timedelta(minutes=15)
SESSION_LIFETIME = dt.timedelta(hours=8)

UTC = dt.timezone.utc

_SCHEMA = """
CREATE TABLE IF NOT EXISTS enterprises (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    city TEXT NOT NULL DEFAULT '',
    industry TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    organization TEXT REFERENCES enterprises(id),
    display_name TEXT NOT NULL DEFAULT '',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    last_used_at TEXT
);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    locked_until TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL DEFAULT 'success',
    ip TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
"""


class AccountError(ValueError):
    """A user, password or enterprise that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class Enterprise:
    id: str
    name: str
    city: str
    industry: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "city": self.city, "industry": self.industry}


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    organization: str | None
    display_name: str
    disabled: bool
    created_at: str

    @property
    def sees_all(self) -> bool:
        return self.role in ALL_ORGS_ROLES

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "role": self.role, "organization": self.organization,
                "display_name": self.display_name, "disabled": self.disabled, "created_at": self.created_at}


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    ts: str
    actor: str
    action: str
    target: str
    outcome: str
    ip: str
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "@timestamp": self.ts, "actor": self.actor, "action": self.action,
                "target": self.target, "outcome": self.outcome, "ip": self.ip, "detail": self.detail}


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["username"], row["role"], row["organization"], row["display_name"],
                bool(row["disabled"]), row["created_at"])


def check_username(name: str) -> str:
    name = name.strip().lower()
    if not name or len(name) > 64 or not set(name) <= USERNAME_CHARS:
        raise AccountError(f"username {name!r}: use 1-64 characters from a-z, 0-9, '.', '_' and '-'")
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password is too short: use at least {MIN_PASSWORD} characters")


class ConsoleDB:
    """One connection under a lock, like the SQLite event store; safe for the threaded server."""

    def __init__(self, path: str | Path, *, hasher: PasswordHasher | None = None) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self.hasher = hasher or PasswordHasher()
        with self._tx() as c:
            c.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                c.execute("PRAGMA journal_mode = WAL")
            c.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ConsoleDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._conn
            except BaseException:
                raise

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._tx() as c:
            row: sqlite3.Row | None = c.execute(sql, params).fetchone()
            return row

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._tx() as c:
            return list(c.execute(sql, params).fetchall())

    # ------------------------------------------------------------ enterprises

    def put_enterprise(self, ent_id: str, name: str, city: str = "", industry: str = "") -> Enterprise:
        ent_id = ent_id.strip()
        if not ent_id or not name.strip():
            raise AccountError("an enterprise needs an id and a name")
        with self._tx() as c:
            c.execute("INSERT INTO enterprises (id, name, city, industry) VALUES (?, ?, ?, ?) "
                      "ON CONFLICT(id) DO UPDATE SET name=excluded.name, city=excluded.city, industry=excluded.industry",
                      (ent_id, name.strip(), city.strip(), industry.strip()))
        return Enterprise(ent_id, name.strip(), city.strip(), industry.strip())

    def enterprise(self, ent_id: str) -> Enterprise | None:
        row = self._one("SELECT * FROM enterprises WHERE id = ?", (ent_id,))
        return Enterprise(row["id"], row["name"], row["city"], row["industry"]) if row else None

    def enterprises(self, only: str | None = None) -> list[Enterprise]:
        if only is not None:
            ent = self.enterprise(only)
            return [ent] if ent else []
        return [Enterprise(r["id"], r["name"], r["city"], r["industry"])
                for r in self._all("SELECT * FROM enterprises ORDER BY id")]

    # ------------------------------------------------------------ users

    def add_user(self, username: str, password: str, role: str, organization: str | None = None,
                 display_name: str = "") -> User:
        username = check_username(username)
        check_password(password)
        if role not in ROLES:
            raise AccountError(f"role {role!r}: choose one of {', '.join(ROLES)}")
        if role == "enterprise":
            if not organization:
                raise AccountError("an enterprise user is bound to one enterprise: give its id (--org)")
            if self.enterprise(organization) is None:
                raise AccountError(f"no enterprise {organization!r}: add it first (qinling users enterprise)")
        elif organization:
            raise AccountError(f"only enterprise users belong to an enterprise, not the {role} role")
        stamp = _iso(now())
        try:
            with self._tx() as c:
                cur = c.execute(
                    "INSERT INTO users (username, password_hash, role, organization, display_name, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (username, self.hasher.hash(password), role, organization, display_name, stamp, stamp))
        except sqlite3.IntegrityError:
            raise AccountError(f"user {username!r} exists already") from None
        user = self.user_by_id(int(cur.lastrowid or 0))
        assert user is not None
        return user

    def user(self, username: str) -> User | None:
        row = self._one("SELECT * FROM users WHERE username = ?", (username.strip().lower(),))
        return _user(row) if row else None

    def user_by_id(self, user_id: int) -> User | None:
        row = self._one("SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    def users(self) -> list[User]:
        return [_user(r) for r in self._all("SELECT * FROM users ORDER BY username")]

    def _require(self, username: str) -> User:
        user = self.user(username)
        if user is None:
            raise AccountError(f"no user {username!r}")
        return user

    def set_password(self, username: str, password: str) -> User:
        user = self._require(username)
        check_password(password)
        with self._tx() as c:
            c.execute("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?",
                      (self.hasher.hash(password), _iso(now()), user.id))
            c.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))  # other sessions end
        return user

    def set_disabled(self, username: str, disabled: bool = True) -> User:
        user = self._require(username)
        with self._tx() as c:
            c.execute("UPDATE users SET disabled = ?, updated_at = ? WHERE id = ?", (int(disabled), _iso(now()), user.id))
            if disabled:
                c.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))
                c.execute("DELETE FROM api_tokens WHERE user_id = ?", (user.id,))
        return self._require(username)

    def verify(self, username: str, password: str) -> User | None:
        """The user when the password is right and the account enabled; None otherwise (same cost either way)."""
        row = self._one("SELECT * FROM users WHERE username = ?", (username.strip().lower(),))
        if row is None:
            try:  # spend the same time as a real check, so timing does not tell which names exist
                self.hasher.verify(_DUMMY_HASH.get(self.hasher), password)
            except (VerificationError, InvalidHashError):
                pass
            return None
        try:
            self.hasher.verify(row["password_hash"], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if self.hasher.check_needs_rehash(row["password_hash"]):
            with self._tx() as c:
                c.execute("UPDATE users SET password_hash = ? WHERE id = ?", (self.hasher.hash(password), row["id"]))
        user = _user(row)
        return None if user.disabled else user

    # ------------------------------------------------------------ login throttling

    @staticmethod
    def _throttle_key(username: str, ip: str) -> str:
        return f"{username.strip().lower()}|{ip}"

    def locked_until(self, username: str, ip: str) -> dt.datetime | None:
        row = self._one("SELECT locked_until FROM login_failures WHERE key = ?", (self._throttle_key(username, ip),))
        if row is None or not row["locked_until"]:
            return None
        until = dt.datetime.fromisoformat(row["locked_until"])
        return until if until > now() else None

    def record_failure(self, username: str, ip: str) -> bool:
        """Counts one failed login; True when this failure locks (username, ip)."""
        key, t = self._throttle_key(username, ip), now()
        with self._tx() as c:
            row = c.execute("SELECT * FROM login_failures WHERE key = ?", (key,)).fetchone()
            if row is None or dt.datetime.fromisoformat(row["first_at"]) < t - LOCK_WINDOW:
                failures, first = 1, t
            else:
                failures, first = row["failures"] + 1, dt.datetime.fromisoformat(row["first_at"])
            locked = _iso(t + LOCK_FOR) if failures >= MAX_FAILURES else None
            c.execute("INSERT OR REPLACE INTO login_failures (key, failures, first_at, locked_until) VALUES (?, ?, ?, ?)",
                      (key, 0 if locked else failures, _iso(first), locked))
        return locked is not None

    def clear_failures(self, username: str, ip: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM login_failures WHERE key = ?", (self._throttle_key(username, ip),))

    # ------------------------------------------------------------ sessions and tokens

    def open_session(self, user: User, ip: str = "", lifetime: dt.timedelta = SESSION_LIFETIME) -> tuple[str, Session]:
        """A new random session id (returned once; stored as a digest) with its own CSRF token."""
        sid, csrf, t = secrets.token_urlsafe(32), secrets.token_urlsafe(32), now()
        with self._tx() as c:
            c.execute("DELETE FROM sessions WHERE expires_at < ?", (_iso(t),))
            c.execute("INSERT INTO sessions (id_hash, user_id, csrf, ip, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                      (_digest(sid), user.id, csrf, ip, _iso(t), _iso(t + lifetime)))
        return sid, Session(user, csrf, t + lifetime)

    def session(self, sid: str) -> Session | None:
        row = self._one("SELECT s.csrf, s.expires_at, u.* FROM sessions s JOIN users u ON u.id = s.user_id "
                        "WHERE s.id_hash = ?", (_digest(sid),))
        if row is None:
            return None
        expires = dt.datetime.fromisoformat(row["expires_at"])
        if expires <= now() or row["disabled"]:
            self.close_session(sid)
            return None
        return Session(_user(row), row["csrf"], expires)

    def close_session(self, sid: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM sessions WHERE id_hash = ?", (_digest(sid),))

    def create_token(self, username: str, label: str = "") -> str:
        user = self._require(username)
        if user.disabled:
            raise AccountError(f"user {username!r} is disabled")
        token = "qn_" + secrets.token_urlsafe(32)
        with self._tx() as c:
            c.execute("INSERT INTO api_tokens (token_hash, user_id, label, created_at) VALUES (?, ?, ?, ?)",
                      (_digest(token), user.id, label, _iso(now())))
        return token

    def token_user(self, token: str) -> User | None:
        row = self._one("SELECT u.* FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
                        (_digest(token),))
        if row is None or row["disabled"]:
            return None
        with self._tx() as c:
            c.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?", (_iso(now()), _digest(token)))
        return _user(row)

    # ------------------------------------------------------------ audit log

    def audit(self, actor: str, action: str, target: str = "", *, outcome: str = "success", ip: str = "",
              detail: Mapping[str, Any] | None = None) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO audit (ts, actor, action, target, outcome, ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (now().isoformat(timespec="milliseconds"), actor, action, target, outcome, ip,
                       json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True)))

    def audit_log(self, *, page: int = 1, size: int = 50, actor: str | None = None,
                  action: str | None = None) -> tuple[list[AuditEntry], int]:
        where, params = [], []
        if actor:
            where.append("actor = ?")
            params.append(actor)
        if action:
            where.append("action = ?")
            params.append(action)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total = self._one(f"SELECT count(*) AS n FROM audit {clause}", tuple(params))
        rows = self._all(f"SELECT * FROM audit {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                         (*params, size, (page - 1) * size))
        entries = [AuditEntry(r["id"], r["ts"], r["actor"], r["action"], r["target"], r["outcome"], r["ip"],
                              json.loads(r["detail"])) for r in rows]
        return entries, int(total["n"]) if total else 0


class _DummyHashes:
    """One throwaway hash per hasher configuration, for verifying unknown usernames."""

    def __init__(self) -> None:
        self._by: dict[tuple[int, int, int], str] = {}
        self._lock = threading.Lock()

    def get(self, hasher: PasswordHasher) -> str:
        key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
        with self._lock:
            if key not in self._by:
                self._by[key] = hasher.hash(secrets.token_urlsafe(16))
            return self._by[key]


_DUMMY_HASH = _DummyHashes()


def hasher_from(config: Mapping[str, Any]) -> PasswordHasher:
    """argon2id with the library's defaults, or the ARGON2 mapping's (tests use cheap parameters)."""
    params = dict(config.get("ARGON2") or {})
    return PasswordHasher(**params) if params else PasswordHasher()


def default_path(store_url: str) -> str:
    """Beside a SQLite event store (`var/qinling.sqlite` → `var/qinling-console.sqlite`), else var/console.sqlite."""
    if store_url.startswith("sqlite:///"):
        path = store_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            p = Path(path)
            return str(p.with_name(f"{p.stem}-console.sqlite"))
        return ":memory:"
    return "var/console.sqlite"


def random_password() -> str:
    return secrets.token_urlsafe(12)
