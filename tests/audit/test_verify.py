"""Verification names the first bad seq for every kind of tampering, on both databases."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, select, text

from audit import AuditLog, NoteSigner, create_checkpoint, verify_log
from audit.canonical import event_body, sha256_hex
from audit.errors import (
    AuditVerificationError,
    ChainError,
    CheckpointMismatchError,
    CorruptEventError,
    SignatureError,
)
from audit.query import query_events
from audit.schema import audit_checkpoints, audit_events
from audit.verify import split_ranges, verify_database
from tests.audit.helpers import append_n, bypass_triggers, draft

N = 600


@pytest.fixture
def filled(engine: Engine, signer: NoteSigner) -> Engine:
    """600 events with checkpoints at 100, 300 (and later ones when tests need)."""
    append_n(engine, 100)
    with engine.begin() as conn:
        create_checkpoint(conn, signer)
    append_n(engine, 200, start=100)
    with engine.begin() as conn:
        create_checkpoint(conn, signer)
    append_n(engine, N - 300, start=300)
    return engine


@pytest.fixture
def tamper(filled: Engine) -> Iterator[Connection]:
    with filled.begin() as conn:
        bypass_triggers(conn)
        yield conn


def _verify(engine: Engine, signer: NoteSigner, **kwargs: object) -> None:
    with engine.connect() as conn:
        verify_log(conn, signer.public_key_text(), **kwargs)  # type: ignore[arg-type]


def _expect(engine: Engine, signer: NoteSigner, seq: int, kind: type[Exception]) -> str:
    with pytest.raises(kind) as caught:
        _verify(engine, signer)
    assert isinstance(caught.value, AuditVerificationError)
    assert caught.value.seq == seq, caught.value
    return str(caught.value)


def _row(conn: Connection, seq: int) -> dict[str, object]:
    return dict(conn.execute(select(audit_events).where(audit_events.c.seq == seq)).one()._mapping)


def _seal(row: dict[str, object]) -> dict[str, object]:
    """Recompute a row's hash as a forger who knows the format would."""
    keys = ("seq", "time", "actor", "action", "resource", "decision", "outcome", "details")
    body = event_body(**{k: row[k] for k in keys}, prev_hash=str(row["prev_hash"]))  # type: ignore[arg-type]
    return {**row, "hash": sha256_hex(body)}


def _renumber_from(conn: Connection, seq: int, delta: int) -> None:
    conn.execute(text("UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= :s"), {"s": seq})
    conn.execute(
        text("UPDATE audit_events SET seq = seq - 1000000 + :d WHERE seq >= 1000000"), {"d": delta}
    )


def test_intact_log_verifies(filled: Engine, signer: NoteSigner) -> None:
    with filled.begin() as conn:
        create_checkpoint(conn, signer)
    with filled.connect() as conn:
        report = verify_log(conn, signer.public_key_text(), deep=True)
    assert (report.events, report.checkpoints) == (N, 3)
    with filled.connect() as conn:
        assert AuditLog().head(conn).hash == report.last_hash


def test_edited_event(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    tamper.execute(text("UPDATE audit_events SET outcome = 'denied' WHERE seq = 250"))
    tamper.commit()
    assert "does not match its content" in _expect(filled, signer, 250, ChainError)


def test_edited_hash_column(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    tamper.execute(text("UPDATE audit_events SET hash = :h WHERE seq = 420"), {"h": "a" * 64})
    tamper.commit()
    _expect(filled, signer, 420, ChainError)


def test_deleted_event(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    tamper.execute(text("DELETE FROM audit_events WHERE seq = 77"))
    tamper.commit()
    assert "missing" in _expect(filled, signer, 77, ChainError)


def test_deleted_and_renumbered(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    tamper.execute(text("DELETE FROM audit_events WHERE seq = 150"))
    _renumber_from(tamper, 151, -1)
    tamper.commit()
    _expect(filled, signer, 150, ChainError)


def test_inserted_forged_event(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    forged = {**_row(tamper, 400), "outcome": "allowed", "hash": "b" * 64}
    _renumber_from(tamper, 400, 1)
    tamper.execute(audit_events.insert(), [forged])
    tamper.commit()
    _expect(filled, signer, 400, ChainError)


def test_inserted_sealed_event(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    """A forger who recomputes the inserted event's hash is caught at the next link."""
    template = _row(tamper, 400)
    forged = _seal({**template, "details": '{"forged":true}'})
    _renumber_from(tamper, 400, 1)
    tamper.execute(audit_events.insert(), [forged])
    tamper.commit()
    assert "inserted, removed or reordered" in _expect(filled, signer, 401, ChainError)


def test_reordered_events(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    a, b = _row(tamper, 120), _row(tamper, 180)
    tamper.execute(text("DELETE FROM audit_events WHERE seq IN (120, 180)"))
    tamper.execute(audit_events.insert(), [{**b, "seq": 120}, {**a, "seq": 180}])
    tamper.commit()
    _expect(filled, signer, 120, ChainError)


def test_deleted_tail(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    tamper.execute(text("DELETE FROM audit_events WHERE seq > 590"))
    tamper.commit()
    assert "deleted" in _expect(filled, signer, 591, ChainError)


def test_deleted_tail_under_a_checkpoint(
    tamper: Connection, filled: Engine, signer: NoteSigner
) -> None:
    tamper.execute(text("DELETE FROM audit_events WHERE seq > 250"))
    tamper.execute(text("UPDATE audit_head SET last_seq = 250, last_hash = :h"),
                   {"h": _row(tamper, 250)["hash"]})  # fmt: skip
    tamper.commit()
    assert "checkpoint 300" in _expect(filled, signer, 251, ChainError)


def test_appended_around_the_writer(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    last = _row(tamper, N)
    extra = _seal({**last, "seq": N + 1, "prev_hash": last["hash"]})
    tamper.execute(audit_events.insert(), [extra])
    tamper.commit()
    _expect(filled, signer, N + 1, ChainError)


def test_resealed_rewrite_is_caught_by_the_checkpoint(
    tamper: Connection, filled: Engine, signer: NoteSigner
) -> None:
    """Rewrite seq 150 and re-seal every later event: the chain is consistent again,
    but checkpoint 300 signed the old tree."""
    rows = [_row(tamper, s) for s in range(150, N + 1)]
    tamper.execute(text("DELETE FROM audit_events WHERE seq >= 150"))
    prev = str(_row(tamper, 149)["hash"])
    sealed = []
    for row in rows:
        if row["seq"] == 150:
            row = {**row, "outcome": "denied"}
        row = _seal({**row, "prev_hash": prev})
        sealed.append(row)
        prev = str(row["hash"])
    tamper.execute(audit_events.insert(), sealed)
    tamper.execute(text("UPDATE audit_head SET last_hash = :h"), {"h": prev})
    tamper.commit()
    message = _expect(filled, signer, 101, CheckpointMismatchError)
    assert "checkpoint 300" in message


def test_checkpoint_signed_by_another_key(
    filled: Engine, signer: NoteSigner, other_signer: NoteSigner
) -> None:
    with filled.begin() as conn:
        create_checkpoint(conn, other_signer)
    with pytest.raises(SignatureError, match=f"checkpoint {N}: note is not signed by key"):
        _verify(filled, signer)


def test_checkpoint_row_disagreeing_with_its_note(
    tamper: Connection, filled: Engine, signer: NoteSigner
) -> None:
    tamper.execute(
        text("UPDATE audit_checkpoints SET root_hash = :r WHERE tree_size = 100"), {"r": "c" * 64}
    )
    tamper.commit()
    with pytest.raises(CheckpointMismatchError, match="checkpoint 100"):
        _verify(filled, signer)


def test_forged_checkpoint_note(tamper: Connection, filled: Engine, signer: NoteSigner) -> None:
    note = tamper.execute(
        select(audit_checkpoints.c.note).where(audit_checkpoints.c.tree_size == 300)
    ).scalar_one()
    lines = note.split("\n")
    lines[1] = "299"
    tamper.execute(
        text("UPDATE audit_checkpoints SET note = :n WHERE tree_size = 300"),
        {"n": "\n".join(lines)},
    )
    tamper.commit()
    with pytest.raises(SignatureError, match="checkpoint 300"):
        _verify(filled, signer)


def test_bytes_moved_between_columns(engine: Engine, signer: NoteSigner) -> None:
    """Moving bytes from details into actor keeps the hashed text: still caught."""
    with engine.begin() as conn:
        AuditLog().append(conn, draft(1, details={"a": 1, "decision": 2, "details": {"z": 1}}))
        row = _row(conn, 1)
    actor, decision = str(row["actor"]), str(row["decision"])
    moved = {
        "actor": actor + ',"decision":' + decision + ',"details":{"a":1',
        "decision": "2",
        "details": '{"z":1}}',
    }
    with engine.begin() as conn:
        bypass_triggers(conn)
        conn.execute(audit_events.update().where(audit_events.c.seq == 1).values(**moved))
    with engine.connect() as conn:
        with pytest.raises(CorruptEventError):
            list(query_events(conn))
        with pytest.raises(ChainError, match="column actor is not JSON"):
            verify_log(conn, signer.public_key_text())


def test_wrong_origin_is_refused(filled: Engine, signer: NoteSigner) -> None:
    with filled.connect() as conn, pytest.raises(AuditVerificationError, match="log"):
        verify_log(conn, signer.public_key_text(), origin="someone.else/log")


def test_parallel_verification_agrees(
    filled: Engine, db_url: str, signer: NoteSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("audit.verify.PARALLEL_THRESHOLD", 10)
    report = verify_database(db_url, signer.public_key_text(), workers=3)
    assert (report.events, report.workers) == (N, 3)
    with filled.begin() as conn:
        bypass_triggers(conn)
        conn.execute(text("UPDATE audit_events SET action = 'pull' WHERE seq = 450"))
        conn.execute(text("UPDATE audit_events SET action = 'pull' WHERE seq = 550"))
    with pytest.raises(ChainError) as caught:
        verify_database(db_url, signer.public_key_text(), workers=3)
    assert caught.value.seq == 450


MAIN_SCRIPT = """
import pathlib, sys
with open(sys.argv[1], "a") as marker:
    marker.write("main module ran\\n")
if __name__ == "__main__":
    import audit.verify
    audit.verify.PARALLEL_THRESHOLD = 10
    key = pathlib.Path(sys.argv[3]).read_text()
    report = audit.verify.verify_database(sys.argv[2], key, workers=3)
    print(report.events, report.workers)
"""


def test_workers_do_not_rerun_the_callers_main_module(
    filled: Engine, db_url: str, signer: NoteSigner, tmp_path: Path
) -> None:
    """Under the ``arbiter`` console script, re-running __main__ would import the whole CLI."""
    script, marker, key = tmp_path / "main.py", tmp_path / "marker", tmp_path / "key"
    script.write_text(MAIN_SCRIPT)
    key.write_text(signer.public_key_text())
    done = subprocess.run(
        [sys.executable, str(script), str(marker), db_url, str(key)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.split() == [str(N), "3"]
    assert marker.read_text().splitlines() == ["main module ran"]


def test_split_ranges_cover_the_log_in_aligned_steps() -> None:
    for size, workers in ((1, 2), (600, 3), (1_000_000, 2), (1_000_003, 8)):
        ranges = split_ranges(size, workers)
        assert ranges[0][0] == 1 and ranges[-1][1] == size
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
        step = ranges[0][1]
        assert step & (step - 1) == 0 and all((lo - 1) % step == 0 for lo, _ in ranges)


def _delete_range_start(conn: Connection, seq: int) -> int:
    conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": seq})
    return seq


def _insert_before_range_start(conn: Connection, seq: int) -> int:
    """A sealed forgery ends one range: the broken link is the next range's first."""
    forged = _seal({**_row(conn, seq - 1), "details": '{"forged":true}'})
    _renumber_from(conn, seq - 1, 1)
    conn.execute(audit_events.insert(), [forged])
    return seq


def _swap_across_range_start(conn: Connection, seq: int) -> int:
    """Swapped and each re-sealed at its new place: only the links can tell."""
    a, b = _row(conn, seq - 1), _row(conn, seq)
    conn.execute(text("DELETE FROM audit_events WHERE seq IN (:a, :b)"), {"a": seq - 1, "b": seq})
    conn.execute(
        audit_events.insert(),
        [_seal({**b, "seq": seq - 1}), _seal({**a, "seq": seq, "prev_hash": b["hash"]})],
    )
    return seq - 1


@pytest.mark.parametrize(
    "tampering", [_delete_range_start, _insert_before_range_start, _swap_across_range_start]
)
def test_parallel_names_the_same_first_bad_seq_at_range_edges(
    tampering: Callable[[Connection, int], int],
    tamper: Connection,
    filled: Engine,
    db_url: str,
    signer: NoteSigner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("audit.verify.PARALLEL_THRESHOLD", 10)
    seq = tampering(tamper, split_ranges(N, 3)[20][0])
    tamper.commit()
    with pytest.raises(ChainError) as single:
        _verify(filled, signer)
    with pytest.raises(ChainError) as parallel:
        verify_database(db_url, signer.public_key_text(), workers=3)
    assert single.value.seq == parallel.value.seq == seq, (single.value, parallel.value)
