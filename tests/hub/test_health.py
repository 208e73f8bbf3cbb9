"""Service health: what an answer means, classification, the services file (the checks
themselves run against real servers in tests/actors/test_checks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.health import Probe, ServicesFileError, check_of, classify, judged, services_file
from hub.models.parts import Endpoint
from hub.models.service import Health, HealthCheck, ServiceType

OK, FAIL, SLOW = Probe(True, 5.0), Probe(False, 5.0, "answered 500"), Probe(True, 1500.0)


@pytest.mark.parametrize(
    ("probes", "health"),
    [
        ([], Health.UNKNOWN),
        ([OK], Health.HEALTHY),
        ([FAIL], Health.DOWN),  # nothing says it was ever up
        ([OK, FAIL], Health.DEGRADED),  # failing now and then...
        ([OK, FAIL, FAIL], Health.DOWN),  # ...until it fails twice in a row
        ([FAIL, FAIL, OK], Health.DEGRADED),  # back, but not yet for long
        ([FAIL, OK, OK, OK], Health.HEALTHY),
        ([OK, SLOW], Health.DEGRADED),
    ],
)
def test_classify(probes: list[Probe], health: Health) -> None:
    assert classify(probes, slow_ms=1000) is health


def test_without_a_check_the_first_http_endpoint_is_checked() -> None:
    endpoints = [Endpoint(url="grpc://x:1", protocol="grpc"), Endpoint(url="http://x/h")]
    assert check_of(None, endpoints) == HealthCheck(url="http://x/h")
    assert check_of(None, endpoints[:1]) is None
    own = HealthCheck(kind="tcp", address="db:5432")
    assert check_of(own, endpoints) is own
    # A check with no target of its own (an interval, say) GETs the endpoint.
    timed = check_of(HealthCheck(interval_s=5), endpoints)
    assert timed == HealthCheck(url="http://x/h", interval_s=5)
    assert check_of(HealthCheck(interval_s=5), endpoints[:1]) is None


def test_the_services_file(tmp_path: Path) -> None:
    path = tmp_path / "services.toml"
    path.write_text(
        '[[service]]\nname = "billing"\nurl = "http://127.0.0.1:9/health"\ntype = "external"\n'
        "expect_status = 200\ninterval_s = 10\n"
        '[[service]]\nname = "db"\naddress = "127.0.0.1:5432"\n'
    )
    billing, db = services_file(path)
    assert billing.name == "billing" and billing.type is ServiceType.EXTERNAL
    assert billing.check.interval_s == 10 and billing.check.expect_status == 200
    assert [e.url for e in billing.endpoints] == ["http://127.0.0.1:9/health"]
    assert db.check.kind == "tcp" and db.endpoints == ()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[[service]\n", "services.toml: "),
        ('[[service]]\nurl = "http://x/h"\n', "service 1: needs a name"),
        ('[[service]]\nname = "a"\n', "'a': needs exactly one of url"),
        ('[[service]]\nname = "a"\nurl = "ftp://x"\n', "'a': url: String should match"),
        ('[[service]]\nname = "a"\nurl = "http://x"\nport = 1\n', "unknown field 'port'"),
        ('[[service]]\nname = "a"\nurl = "http://x"\ntype = "x"\n', "'a': type: one of"),
        ('[[service]]\nname = "a"\nurl = "http://x"\ntimeout_s = -1\n', "timeout_s: Input"),
    ],
)
def test_a_bad_services_file_names_the_entry_and_field(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "services.toml"
    path.write_text(text)
    with pytest.raises(ServicesFileError, match=reason.replace("(", r"\(")):
        services_file(path)


def test_an_answer_is_judged_by_its_status_and_names_its_version() -> None:
    assert judged(HealthCheck(), 204, b'{"version": "3.1"}', 4.0) == Probe(True, 4.0, None, "3.1")
    assert judged(HealthCheck(), 200, b"<html>ok</html>", 4.0).version is None
    assert judged(HealthCheck(), 200, b'{"release": 7}', 4.0).version == "7"
    assert judged(HealthCheck(), 503, b"", 4.0).error == "answered 503, expected 2xx"
    assert judged(HealthCheck(expect_status=302), 302, b"", 1.0).ok
