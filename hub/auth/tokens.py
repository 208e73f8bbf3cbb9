"""`TokenStore`: service and admin tokens in their own LMDB environment, stored hashed.

A secret is `chitty_<token_id>_<43 urlsafe base64 chars>` (32 random bytes). The store keeps
sha256(secret), never the secret, and the token's signing key HMAC-SHA256(secret,
b"chitty-signing") sealed through the value codec, so the hub can verify request signatures.
Every call runs in its own LMDB transaction: a revoke committed by another process (the CLI)
is seen by the very next `authenticate` here. Open one `TokenStore` per path per process.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lmdb
import msgpack

from hub.auth.errors import AuthError, AuthReason, UnknownTokenError
from hub.auth.principal import Principal, PrincipalKind, Role
from hub.ids import IdGenerator, InvalidChittyId, Kind, parse
from hub.store.codec import IdentityCodec, ValueCodec
from hub.store.lmdb_env import PRIVATE

DEFAULT_TTL_S = 86_400.0
DEFAULT_OVERLAP_S = 3_600.0
SIGNING_CONTEXT = b"chitty-signing"

_SECRET_RE = re.compile(r"chitty_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_MIN_BOOTSTRAP_LEN = 32
_MAX_SECRET_LEN = 512
_MAX_NAME_LEN = 200
_FORMAT = 1
_DB = b"tokens"


def derive_signing_key(secret: str) -> bytes:
    """The HMAC key a token's holder signs requests with: HMAC-SHA256(secret, b"chitty-signing")."""
    return hmac.new(secret.encode(), SIGNING_CONTEXT, hashlib.sha256).digest()


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def token_id_of(secret: str) -> str:
    """The token id a secret names, or `AuthError(malformed)`.

    A `chitty_<id>_<random>` secret names its id; any other printable-ASCII secret of 32 to 512
    characters (a pre-seeded `CHITTY_ADMIN_TOKEN`) is keyed by the first 16 hex digits of its
    sha256.
    """
    if not isinstance(secret, str) or not secret:
        raise AuthError(AuthReason.MALFORMED, "empty token")
    match = _SECRET_RE.fullmatch(secret)
    if match is not None:
        return match.group(1)
    if secret.startswith("chitty_"):
        raise AuthError(AuthReason.MALFORMED, "not chitty_<16 hex>_<43 base64url characters>")
    if not (_MIN_BOOTSTRAP_LEN <= len(secret) <= _MAX_SECRET_LEN) or not all(
        "!" <= ch <= "~" for ch in secret
    ):
        raise AuthError(
            AuthReason.MALFORMED,
            f"not a chitty_ token, nor {_MIN_BOOTSTRAP_LEN}-{_MAX_SECRET_LEN} printable "
            "ASCII characters",
        )
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the store tells about a token: never its secret, hash or signing key."""

    token_id: str
    name: str
    role: Role
    chitty_id: str
    created_at: float
    expires_at: float | None  # None: never expires
    revoked_at: float | None = None
    rotated_to: str | None = None
    overlap_until: float | None = None  # a rotated token is refused after this

    @property
    def valid_until(self) -> float | None:
        """When the token stops being accepted, revocation aside (None: never)."""
        ends = [t for t in (self.expires_at, self.overlap_until) if t is not None]
        return min(ends) if ends else None

    def refusal(self, now: float) -> AuthError | None:
        """Why the token is refused at `now`, or None when it is usable."""
        if self.revoked_at is not None:
            return AuthError(AuthReason.REVOKED, f"token {self.token_id} was revoked")
        until = self.valid_until
        if until is not None and now >= until:
            if self.rotated_to is not None and until == self.overlap_until:
                return AuthError(
                    AuthReason.EXPIRED,
                    f"token {self.token_id} was rotated to {self.rotated_to}; "
                    "its overlap window has ended",
                )
            return AuthError(AuthReason.EXPIRED, f"token {self.token_id} has expired")
        return None

    def status(self, now: float) -> str:
        """active, rotating (rotated, still in its overlap window), revoked or expired."""
        refused = self.refusal(now)
        if refused is not None:
            return str(refused.reason)
        return "rotating" if self.rotated_to is not None else "active"

    def principal(self, signing_key: bytes | None = None) -> Principal:
        """The principal this token authenticates."""
        kind: PrincipalKind = "service" if self.role is Role.SERVICE else "user"
        return Principal(self.chitty_id, self.role, kind, self.token_id, signing_key)


@dataclass(frozen=True, slots=True)
class _Stored:
    record: TokenRecord
    digest: bytes
    signing_key: bytes


def _pack(stored: _Stored) -> bytes:
    r = stored.record
    data = {
        "v": _FORMAT,
        "id": r.token_id,
        "name": r.name,
        "role": str(r.role),
        "cid": r.chitty_id,
        "created": r.created_at,
        "expires": r.expires_at,
        "revoked": r.revoked_at,
        "rotated_to": r.rotated_to,
        "overlap_until": r.overlap_until,
        "sha256": stored.digest,
        "sign_key": stored.signing_key,
    }
    packed: bytes = msgpack.packb(data, use_bin_type=True)
    return packed


def _unpack(raw: bytes) -> _Stored:
    data: dict[str, Any] = msgpack.unpackb(raw, raw=False)
    if data.get("v") != _FORMAT:
        raise ValueError(f"token record of unknown format {data.get('v')!r}")
    record = TokenRecord(
        token_id=data["id"],
        name=data["name"],
        role=Role(data["role"]),
        chitty_id=data["cid"],
        created_at=data["created"],
        expires_at=data["expires"],
        revoked_at=data["revoked"],
        rotated_to=data["rotated_to"],
        overlap_until=data["overlap_until"],
    )
    return _Stored(record, data["sha256"], data["sign_key"])


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name: a token needs a non-empty name")
    if len(name) > _MAX_NAME_LEN:
        raise ValueError(f"name: longer than {_MAX_NAME_LEN} characters")
    return name.strip()


def _check_role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"role: {role!r} is not a role (known: {known})") from None


def _check_ttl(ttl_s: float | None, field: str) -> None:
    if ttl_s is not None and not ttl_s > 0:
        raise ValueError(f"{field}: must be positive (or None), got {ttl_s!r}")


class TokenStore:
    """Service and admin tokens: create, authenticate, rotate with overlap, revoke, list."""

    def __init__(
        self,
        path: str | Path,
        *,
        codec: ValueCodec | None = None,
        now: Callable[[], float] = time.time,
        map_size: int = 64 << 20,
    ) -> None:
        where = Path(path)
        if where.exists() and not where.is_dir():
            raise ValueError(f"path: {where} exists and is not a directory")
        where.mkdir(mode=PRIVATE, parents=True, exist_ok=True)
        self.path = where
        self._codec: ValueCodec = codec if codec is not None else IdentityCodec()
        self._now = now
        self._ids = IdGenerator(f"tokens-{secrets.token_hex(8)}", lambda: int(now() * 1000))
        # sync and metasync on (the defaults): a revoke is on disk when revoke() returns.
        self._env = lmdb.open(
            str(where), map_size=map_size, max_dbs=8, subdir=True, lock=True, mode=PRIVATE
        )
        self._db = self._env.open_db(_DB)

    @property
    def environment(self) -> lmdb.Environment:
        """The LMDB environment, shared by the gateway's agent registrations (`AgentStore`):
        LMDB allows one open environment per path per process, and they are credentials too."""
        return self._env

    def close(self) -> None:
        """Close the LMDB environment; idempotent."""
        self._env.close()

    def __enter__(self) -> TokenStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------

    def _load(self, txn: lmdb.Transaction, token_id: str) -> _Stored | None:
        raw = txn.get(token_id.encode(), db=self._db)
        return None if raw is None else _unpack(self._codec.decode(bytes(raw)))

    def _load_known(self, txn: lmdb.Transaction, token_id: str) -> _Stored:
        stored = self._load(txn, token_id) if isinstance(token_id, str) else None
        if stored is None:
            raise UnknownTokenError(f"token_id: no token {token_id!r}")
        return stored

    def _put(self, txn: lmdb.Transaction, stored: _Stored) -> None:
        txn.put(stored.record.token_id.encode(), self._codec.encode(_pack(stored)), db=self._db)

    def _all(self) -> list[_Stored]:
        with self._env.begin(db=self._db) as txn:
            return [_unpack(self._codec.decode(bytes(v))) for _, v in txn.cursor(db=self._db)]

    def authenticate(self, secret: str) -> TokenRecord:
        """The record of the token `secret` is, or `AuthError` (unknown, expired, revoked,
        malformed). Reads afresh each call: a revoke by any process is seen at once."""
        return self._authenticate(secret).record

    def principal(self, secret: str) -> Principal:
        """`authenticate`, then the token's principal carrying its signing key."""
        stored = self._authenticate(secret)
        return stored.record.principal(stored.signing_key)

    def _authenticate(self, secret: str) -> _Stored:
        token_id = token_id_of(secret)
        with self._env.begin(db=self._db) as txn:
            stored = self._load(txn, token_id)
        if stored is None or not hmac.compare_digest(stored.digest, _digest(secret)):
            raise AuthError(AuthReason.UNKNOWN, "no such token")
        refused = stored.record.refusal(self._now())
        if refused is not None:
            raise refused
        return stored

    def check(self, token_id: str) -> TokenRecord:
        """The token's record if it is usable now, else `AuthError` (for open connections
        that authenticated earlier: re-check them by id, no secret needed)."""
        with self._env.begin(db=self._db) as txn:
            stored = self._load(txn, token_id)
        if stored is None:
            raise AuthError(AuthReason.UNKNOWN, f"no token {token_id!r}")
        refused = stored.record.refusal(self._now())
        if refused is not None:
            raise refused
        return stored.record

    def get(self, token_id: str) -> TokenRecord:
        """The token's record, whatever its state; `UnknownTokenError` if there is none."""
        with self._env.begin(db=self._db) as txn:
            return self._load_known(txn, token_id).record

    def signing_key(self, token_id: str) -> bytes:
        """The token's request-signing key; `UnknownTokenError` if there is none."""
        with self._env.begin(db=self._db) as txn:
            return self._load_known(txn, token_id).signing_key

    def list(self) -> list[TokenRecord]:
        """Every token, oldest first (revoked and expired ones too)."""
        records = [s.record for s in self._all()]
        return sorted(records, key=lambda r: (r.created_at, r.token_id))

    def usable(self, chitty_id: str) -> bool:
        """Whether the principal holds a token usable now (not revoked, not expired)."""
        now = self._now()
        return any(r.chitty_id == chitty_id and r.refusal(now) is None for r in self.list())

    def has_admin(self) -> bool:
        """Whether an admin token is usable now (else `chitty up` mints and prints one)."""
        now = self._now()
        return any(r.role is Role.ADMIN and r.refusal(now) is None for r in self.list())

    def due_for_rotation(self, within_s: float) -> builtins.list[TokenRecord]:
        """Usable, not yet rotated tokens that expire within `within_s` seconds."""
        now = self._now()
        return [
            r
            for r in self.list()
            if r.refusal(now) is None
            and r.rotated_to is None
            and r.expires_at is not None
            and r.expires_at <= now + within_s
        ]

    # -- writing -----------------------------------------------------------------------------

    def _new(
        self,
        name: str,
        role: Role,
        chitty_id: str | None,
        ttl_s: float | None,
        secret: str | None = None,
    ) -> tuple[_Stored, str]:
        if chitty_id is None:
            chitty_id = self._ids.new(Kind.SERVICE if role is Role.SERVICE else Kind.USER)
        else:
            expect = Kind.SERVICE if role is Role.SERVICE else Kind.USER
            try:
                parse(chitty_id, expect=expect)
            except InvalidChittyId as error:
                raise ValueError(f"chitty_id: {error}") from None
        if secret is None:
            token_id = secrets.token_hex(8)
            secret = f"chitty_{token_id}_{secrets.token_urlsafe(32)}"
        else:
            token_id = token_id_of(secret)
        now = self._now()
        record = TokenRecord(
            token_id=token_id,
            name=name,
            role=role,
            chitty_id=chitty_id,
            created_at=now,
            expires_at=None if ttl_s is None else now + ttl_s,
        )
        return _Stored(record, _digest(secret), derive_signing_key(secret)), secret

    def create(
        self,
        name: str,
        role: Role | str,
        chitty_id: str | None = None,
        ttl_s: float | None = DEFAULT_TTL_S,
    ) -> tuple[TokenRecord, str]:
        """A new token and its secret (shown once: the store cannot give it back).

        Without `chitty_id`, a service gets a fresh CHITTY-SERVICE id and any other role a
        fresh CHITTY-USER id. `ttl_s=None`: the token never expires.
        """
        name, role = _check_name(name), _check_role(role)
        _check_ttl(ttl_s, "ttl_s")
        stored, secret = self._new(name, role, chitty_id, ttl_s)
        with self._env.begin(write=True, db=self._db) as txn:
            self._put(txn, stored)
        return stored.record, secret

    def bootstrap_admin(self, name: str = "admin") -> tuple[TokenRecord, str] | None:
        """A new admin token when no admin token is usable, else None (checked and created in
        one write transaction, so two starting processes cannot both mint one)."""
        name = _check_name(name)
        stored, secret = self._new(name, Role.ADMIN, None, DEFAULT_TTL_S)
        with self._env.begin(write=True, db=self._db) as txn:
            now = self._now()
            for _, raw in txn.cursor(db=self._db):
                record = _unpack(self._codec.decode(bytes(raw))).record
                if record.role is Role.ADMIN and record.refusal(now) is None:
                    return None
            self._put(txn, stored)
        return stored.record, secret

    def ensure_bootstrap(
        self, secret: str, name: str = "bootstrap-admin", ttl_s: float | None = DEFAULT_TTL_S
    ) -> TokenRecord:
        """Register a pre-seeded admin secret (`CHITTY_ADMIN_TOKEN`); idempotent.

        A secret already registered is returned as it is: a revoked or expired bootstrap token
        stays refused (restarting with the same secret does not revive it).
        """
        name = _check_name(name)
        _check_ttl(ttl_s, "ttl_s")
        try:
            token_id_of(secret)
        except AuthError as error:
            raise ValueError(f"secret: {error.detail}") from None
        stored, _ = self._new(name, Role.ADMIN, None, ttl_s, secret=secret)
        with self._env.begin(write=True, db=self._db) as txn:
            existing = self._load(txn, stored.record.token_id)
            if existing is not None:
                if not hmac.compare_digest(existing.digest, stored.digest):
                    raise ValueError("secret: its token id is taken by another token")
                return existing.record
            self._put(txn, stored)
        return stored.record

    def rotate(
        self, token_id: str, overlap_s: float = DEFAULT_OVERLAP_S
    ) -> tuple[TokenRecord, str]:
        """A successor token (same name, role, ChittyID and lifetime) and its secret; the old
        token stays valid for `overlap_s` seconds (never past its own expiry), then is refused."""
        if not overlap_s >= 0:
            raise ValueError(f"overlap_s: must be >= 0, got {overlap_s!r}")
        with self._env.begin(write=True, db=self._db) as txn:
            old = self._load_known(txn, token_id)
            refused = old.record.refusal(self._now())
            if refused is not None:
                raise ValueError(f"token_id: {token_id} cannot be rotated ({refused.reason})")
            if old.record.rotated_to is not None:
                raise ValueError(
                    f"token_id: {token_id} was already rotated to {old.record.rotated_to}"
                )
            r = old.record
            ttl = None if r.expires_at is None else r.expires_at - r.created_at
            new, secret = self._new(r.name, r.role, r.chitty_id, ttl)
            now = new.record.created_at
            retired = replace(r, rotated_to=new.record.token_id, overlap_until=now + overlap_s)
            self._put(txn, _Stored(retired, old.digest, old.signing_key))
            self._put(txn, new)
        return new.record, secret

    def forget(self, chitty_id: str) -> int:
        """Delete every token of a principal (erasure): each is refused from now on, as an
        unknown token, and nothing of it stays readable; return how many."""
        with self._env.begin(write=True, db=self._db) as txn:
            doomed = [
                key
                for key, raw in txn.cursor(db=self._db)
                if _unpack(self._codec.decode(bytes(raw))).record.chitty_id == chitty_id
            ]
            for key in doomed:
                txn.delete(key, db=self._db)
        return len(doomed)

    def revoke(self, token_id: str) -> TokenRecord:
        """Refuse the token from now on, in every process; idempotent (keeps the first time)."""
        with self._env.begin(write=True, db=self._db) as txn:
            stored = self._load_known(txn, token_id)
            if stored.record.revoked_at is not None:
                return stored.record
            record = replace(stored.record, revoked_at=self._now())
            self._put(txn, replace(stored, record=record))
        return record
