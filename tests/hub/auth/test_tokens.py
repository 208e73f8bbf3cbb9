"""TokenStore on real LMDB files: hashed, expiring, rotating, revoked across processes."""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.auth.errors import AuthError, AuthReason, UnknownTokenError
from hub.auth.principal import Role
from hub.auth.tokens import TokenRecord, TokenStore, derive_signing_key, token_id_of
from hub.ids import Kind, parse
from hub.store.crypto import AesGcmCodec, generate_key


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[TokenStore]:
    with TokenStore(tmp_path / "tokens", now=clock) as opened:
        yield opened


def reason(error: pytest.ExceptionInfo[AuthError]) -> AuthReason:
    return error.value.reason


def test_create_then_authenticate(store: TokenStore, clock: Clock) -> None:
    record, secret = store.create("ci-runner", Role.SERVICE)
    assert secret.startswith(f"chitty_{record.token_id}_")
    assert len(secret.split("_", 2)[2]) == 43  # 32 random bytes, base64url, no padding
    parse(record.chitty_id, expect=Kind.SERVICE)
    assert record.expires_at == clock.t + 86_400
    assert store.authenticate(secret) == record
    principal = store.principal(secret)
    assert principal.kind == "service" and principal.role is Role.SERVICE
    assert principal.token_id == record.token_id
    assert principal.signing_key == derive_signing_key(secret)
    assert principal.signing_key is not None and principal.signing_key.hex() not in repr(principal)


def test_admin_and_member_tokens_get_user_ids(store: TokenStore) -> None:
    admin, _ = store.create("root", "admin")
    parse(admin.chitty_id, expect=Kind.USER)
    user = "CHITTY-USER-ALICE1"
    member, secret = store.create("alice laptop", Role.MEMBER, chitty_id=user)
    assert member.chitty_id == user
    assert store.principal(secret).kind == "user"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "", "role": "member"}, "name"),
        ({"name": "   ", "role": "member"}, "name"),
        ({"name": "x", "role": "owner"}, "role"),
        ({"name": "x", "role": "service", "chitty_id": "CHITTY-USER-A1"}, "chitty_id"),
        ({"name": "x", "role": "admin", "chitty_id": "CHITTY-SERVICE-A1"}, "chitty_id"),
        ({"name": "x", "role": "admin", "chitty_id": "nope"}, "chitty_id"),
        ({"name": "x", "role": "admin", "ttl_s": 0}, "ttl_s"),
    ],
)
def test_bad_input_names_the_field(
    store: TokenStore, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        store.create(**kwargs)  # type: ignore[arg-type]
    assert store.list() == []


def test_unknown_ids_are_value_errors_naming_the_field(store: TokenStore) -> None:
    for call in (store.get, store.revoke, store.rotate, store.signing_key):
        with pytest.raises(UnknownTokenError, match=r"^token_id:"):
            call("0123456789abcdef")


@pytest.mark.parametrize(
    "secret",
    ["", "chitty_", "chitty_xyz_abc", "chitty_0123456789abcdef_short", "short", "has space" * 5],
)
def test_malformed_secrets(store: TokenStore, secret: str) -> None:
    with pytest.raises(AuthError) as error:
        store.authenticate(secret)
    assert reason(error) is AuthReason.MALFORMED


def test_unknown_and_forged_secrets(store: TokenStore) -> None:
    _, secret = store.create("svc", Role.SERVICE)
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")  # right id, wrong random part
    other = f"chitty_{'0' * 16}_{secret.split('_', 2)[2]}"
    for candidate in (forged, other, "x" * 40):
        with pytest.raises(AuthError) as error:
            store.authenticate(candidate)
        assert reason(error) is AuthReason.UNKNOWN


def test_expiry(store: TokenStore, clock: Clock) -> None:
    _, secret = store.create("svc", Role.SERVICE, ttl_s=60)
    clock.t += 59.9
    store.authenticate(secret)
    clock.t += 0.1
    with pytest.raises(AuthError) as error:
        store.authenticate(secret)
    assert reason(error) is AuthReason.EXPIRED
    _, forever = store.create("forever", Role.SERVICE, ttl_s=None)
    clock.t += 10 * 365 * 86_400
    store.authenticate(forever)


def test_revoke_is_immediate_and_idempotent(store: TokenStore, clock: Clock) -> None:
    record, secret = store.create("svc", Role.SERVICE)
    revoked = store.revoke(record.token_id)
    assert revoked.revoked_at == clock.t
    for check in (lambda: store.authenticate(secret), lambda: store.check(record.token_id)):
        with pytest.raises(AuthError) as error:
            check()
        assert reason(error) is AuthReason.REVOKED
    clock.t += 5
    assert store.revoke(record.token_id).revoked_at == revoked.revoked_at
    assert store.get(record.token_id).status(clock.t) == "revoked"


def test_rotation_overlap(store: TokenStore, clock: Clock) -> None:
    old, old_secret = store.create("svc", Role.SERVICE, ttl_s=1000)
    clock.t += 100
    new, new_secret = store.rotate(old.token_id, overlap_s=60)
    assert (new.name, new.role, new.chitty_id) == (old.name, old.role, old.chitty_id)
    assert new.expires_at == clock.t + 1000 and new.token_id != old.token_id
    assert store.get(old.token_id).rotated_to == new.token_id
    assert store.get(old.token_id).status(clock.t) == "rotating"
    clock.t += 59
    assert store.authenticate(old_secret).token_id == old.token_id
    assert store.authenticate(new_secret).token_id == new.token_id
    clock.t += 1
    with pytest.raises(AuthError) as error:
        store.authenticate(old_secret)
    assert reason(error) is AuthReason.EXPIRED and "rotated" in error.value.detail
    assert store.authenticate(new_secret) == new
    assert derive_signing_key(new_secret) == store.signing_key(new.token_id)
    with pytest.raises(ValueError, match=r"^token_id:"):
        store.rotate(old.token_id)


def test_overlap_never_outlives_the_old_expiry(store: TokenStore, clock: Clock) -> None:
    old, old_secret = store.create("svc", Role.SERVICE, ttl_s=100)
    clock.t += 90
    store.rotate(old.token_id, overlap_s=3600)
    clock.t += 10
    with pytest.raises(AuthError) as error:
        store.authenticate(old_secret)
    assert reason(error) is AuthReason.EXPIRED


def test_rotating_twice_or_a_revoked_token_is_refused(store: TokenStore) -> None:
    record, _ = store.create("svc", Role.SERVICE)
    store.rotate(record.token_id)
    with pytest.raises(ValueError, match="already rotated"):
        store.rotate(record.token_id)
    other, _ = store.create("svc2", Role.SERVICE)
    store.revoke(other.token_id)
    with pytest.raises(ValueError, match="revoked"):
        store.rotate(other.token_id)


def test_due_for_rotation(store: TokenStore, clock: Clock) -> None:
    soon, _ = store.create("soon", Role.SERVICE, ttl_s=600)
    store.create("late", Role.SERVICE, ttl_s=86_400)
    store.create("forever", Role.SERVICE, ttl_s=None)
    gone, _ = store.create("gone", Role.SERVICE, ttl_s=60)
    store.revoke(gone.token_id)
    assert [r.token_id for r in store.due_for_rotation(3600)] == [soon.token_id]
    store.rotate(soon.token_id)
    due = {r.name for r in store.due_for_rotation(86_400)}
    assert due == {"soon", "late"}  # the successor, not the rotated one


def test_list_never_exposes_secrets(store: TokenStore, clock: Clock) -> None:
    created = []
    for i in range(3):
        created.append(store.create(f"svc{i}", Role.SERVICE))
        clock.t += 1
    listed = store.list()
    assert [r.token_id for r in listed] == [r.token_id for r, _ in created]
    assert all(isinstance(r, TokenRecord) for r in listed)
    text = repr(listed)
    for record, secret in created:
        assert secret not in text
        assert hashlib.sha256(secret.encode()).hexdigest() not in text
        assert derive_signing_key(secret).hex() not in text
        assert not hasattr(record, "digest") and not hasattr(record, "signing_key")


def test_raw_file_holds_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    with TokenStore(path) as store:
        secrets_ = [store.create(f"svc{i}", Role.SERVICE)[1] for i in range(5)]
        store.ensure_bootstrap("pre-seeded-admin-secret-" + "z" * 20)
    raw = (path / "data.mdb").read_bytes()
    assert b"svc3" in raw  # the identity codec: the file is readable, yet holds no secret
    for secret in [*secrets_, "pre-seeded-admin-secret-" + "z" * 20]:
        assert secret.encode() not in raw
        # chitty_<id>_<random>: the random part (base64url, which may itself hold "_")
        random_part = secret.split("_", 2)[2] if secret.startswith("chitty_") else secret
        assert random_part.encode() not in raw
        assert hashlib.sha256(secret.encode()).digest() in raw  # only its hash


def test_encrypted_records_hide_keys_and_names(tmp_path: Path) -> None:
    path, key = tmp_path / "tokens", generate_key()
    with TokenStore(path, codec=AesGcmCodec(key)) as store:
        record, secret = store.create("very-recognisable-name", Role.SERVICE)
    raw = (path / "data.mdb").read_bytes()
    assert b"very-recognisable-name" not in raw
    assert derive_signing_key(secret) not in raw
    assert hashlib.sha256(secret.encode()).digest() not in raw
    with TokenStore(path, codec=AesGcmCodec(key)) as reopened:
        assert reopened.authenticate(secret) == record
    with TokenStore(path, codec=AesGcmCodec(generate_key())) as wrong, pytest.raises(ValueError):
        wrong.authenticate(secret)


def test_bootstrap_secret_is_idempotent(store: TokenStore, clock: Clock) -> None:
    seeded = "s3cret-from-the-environment-0123456789"
    assert not store.has_admin()
    first = store.ensure_bootstrap(seeded)
    assert first.role is Role.ADMIN and store.has_admin()
    parse(first.chitty_id, expect=Kind.USER)
    assert first.token_id == token_id_of(seeded)
    clock.t += 10
    assert store.ensure_bootstrap(seeded) == first
    assert len(store.list()) == 1
    assert store.authenticate(seeded) == first
    store.revoke(first.token_id)
    assert store.ensure_bootstrap(seeded).revoked_at is not None  # not revived
    assert not store.has_admin()
    with pytest.raises(ValueError, match=r"^secret:"):
        store.ensure_bootstrap("too-short")


def test_bootstrap_admin_once(store: TokenStore, clock: Clock) -> None:
    minted = store.bootstrap_admin()
    assert minted is not None
    _, secret = minted
    assert store.authenticate(secret).role is Role.ADMIN
    assert store.bootstrap_admin() is None
    clock.t += 86_400  # the admin token expired: the next start mints a new one
    assert not store.has_admin()
    assert store.bootstrap_admin() is not None


def test_member_tokens_do_not_count_as_admin(store: TokenStore) -> None:
    store.create("svc", Role.SERVICE)
    store.create("m", Role.MEMBER)
    assert not store.has_admin()


def _revoke_in_child(path: str, token_id: str) -> None:
    with TokenStore(path) as store:
        store.revoke(token_id)


def _create_in_child(path: str, queue: multiprocessing.Queue[str]) -> None:
    with TokenStore(path) as store:
        queue.put(store.create("from-cli", Role.SERVICE)[1])


def test_a_revoke_in_another_process_is_seen_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "tokens")
    spawn = multiprocessing.get_context("spawn")
    with TokenStore(path) as gateway:
        record, secret = gateway.create("svc", Role.SERVICE)
        assert gateway.authenticate(secret) == record
        queue: multiprocessing.Queue[str] = spawn.Queue()
        child = spawn.Process(target=_create_in_child, args=(path, queue))
        child.start()
        cli_secret = queue.get(timeout=30)
        child.join(30)
        assert gateway.authenticate(cli_secret).name == "from-cli"
        child = spawn.Process(target=_revoke_in_child, args=(path, record.token_id))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        with pytest.raises(AuthError) as error:
            gateway.authenticate(secret)
        assert reason(error) is AuthReason.REVOKED
        assert gateway.authenticate(cli_secret).name == "from-cli"


def test_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"^path:"):
        TokenStore(tmp_path / "f")
