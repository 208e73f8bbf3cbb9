"""The vendored third-party files are the pinned ones, each with its licence beside it."""

from __future__ import annotations

from transports.web.vendor import VENDOR, integrity, mismatches, pinned


def test_every_vendored_file_matches_its_pinned_hash() -> None:
    assert pinned(), "SHA256SUMS lists nothing"
    assert mismatches() == []


def test_every_vendored_file_is_pinned_and_every_package_has_its_licence() -> None:
    on_disk = {str(path.relative_to(VENDOR)) for path in VENDOR.rglob("*") if path.parent != VENDOR}
    assert on_disk == set(pinned())
    for package in {name.split("/")[0] for name in on_disk}:
        assert f"{package}/LICENSE" in on_disk, package


def test_pages_load_vendored_scripts_with_their_pinned_integrity() -> None:
    hashes = integrity()
    assert set(hashes) == {f"/static/vendor/{n}" for n in pinned() if n.endswith(".js")}
    assert all(value.startswith("sha256-") for value in hashes.values())
