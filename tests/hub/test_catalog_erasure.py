"""Catalog.rewrite and Catalog.drop: erasure in the catalog's rows (it has no chain)."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from hub.catalog import Catalog, Query
from hub.domains import SyncDomain
from hub.store import AesGcmCodec, generate_key, scrub_bytes
from tests.hub.test_catalog import published

ALICE = "CHITTY-PEO-ALICE"


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "catalog", codec=AesGcmCodec(generate_key()))
    catalog.take(
        "h",
        [
            (1, published(1, assignees=[ALICE])),
            (2, published(2, content=f"call {ALICE}")),
            (3, published(3)),
        ],
    )
    return catalog


def test_rewrite_pseudonymizes_rows_and_counts_them(catalog: Catalog) -> None:
    changed = catalog.rewrite(lambda row: scrub_bytes(row, ALICE, "CHITTY-PEO-ERASED"))

    assert changed == 2
    first = catalog.get(SyncDomain.TODOS, "CHITTY-TODO-0001")
    second = catalog.get(SyncDomain.TODOS, "CHITTY-TODO-0002")
    assert first is not None and first.entity["assignees"] == ["CHITTY-PEO-ERASED"]
    assert second is not None and second.entity["content"] == "call CHITTY-PEO-ERASED"
    rows = catalog.query(Query(SyncDomain.TODOS)).rows
    assert len(rows) == 3 and ALICE not in repr(rows)
    assert catalog.rewrite(lambda row: scrub_bytes(row, ALICE, "x")) == 0


def test_a_rewrite_that_would_corrupt_a_row_changes_nothing(catalog: Catalog) -> None:
    def other_entity(row: bytes) -> bytes:
        decoded = msgpack.unpackb(row, raw=False)
        decoded["id"] = "CHITTY-TODO-9999"
        packed: bytes = msgpack.packb(decoded, use_bin_type=True)
        return packed

    with pytest.raises(ValueError, match="not a row of the same entity"):
        catalog.rewrite(other_entity)
    with pytest.raises(ValueError, match="not msgpack"):
        catalog.rewrite(lambda row: b"\xc1")
    first = catalog.get(SyncDomain.TODOS, "CHITTY-TODO-0001")
    assert first is not None and first.entity["assignees"] == [ALICE]


def test_drop_deletes_rows_by_entity_id(catalog: Catalog) -> None:
    assert catalog.drop(["CHITTY-TODO-0001", "CHITTY-TODO-0003", "CHITTY-TODO-0404"]) == 2
    assert catalog.get(SyncDomain.TODOS, "CHITTY-TODO-0001") is None
    assert [row.entity_id for row in catalog.query(Query(SyncDomain.TODOS)).rows] == [
        "CHITTY-TODO-0002"
    ]
    assert catalog.drop(["CHITTY-TODO-0001"]) == 0
