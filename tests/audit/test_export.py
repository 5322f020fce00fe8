"""Export round trip, time windows, and every way an export file can be wrong."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import rfc8785
from sqlalchemy import Engine

from audit import (
    AuditLog,
    CheckpointError,
    ExportTruncatedError,
    ExportVerificationError,
    NoteSigner,
    ProofError,
    SignatureError,
    create_checkpoint,
    export_events,
    verify_export,
)
from audit.errors import AuditVerificationError
from tests.audit.helpers import StepClock, draft


@pytest.fixture
def logged(engine: Engine, signer: NoteSigner) -> Engine:
    """300 events one millisecond apart from 2024-05-01T12:00:00.001Z, checkpoints at
    120 and 300."""
    log = AuditLog(clock=StepClock())
    with engine.begin() as conn:
        log.append_many(conn, [draft(i) for i in range(120)])
        create_checkpoint(conn, signer)
    with engine.begin() as conn:
        log.append_many(conn, [draft(i) for i in range(120, 300)])
        create_checkpoint(conn, signer)
    return engine


def _export(engine: Engine, path: Path, **kwargs: object) -> Path:
    with engine.connect() as conn:
        export_events(conn, path, **kwargs)  # type: ignore[arg-type]
    return path


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.mark.parametrize(
    ("bounds", "first", "last"),
    [
        ({}, 1, 300),
        ({"first_seq": 50, "last_seq": 60}, 50, 60),
        ({"first_seq": 100, "last_seq": 200}, 100, 200),  # covered by checkpoint 300
        ({"since": "2024-05-01T12:00:00.010Z", "until": "2024-05-01T12:00:00.020Z"}, 10, 20),
        ({"since": datetime(2024, 5, 1, 12, 0, 0, 299000, tzinfo=UTC)}, 299, 300),
    ],
)
def test_round_trip(
    logged: Engine,
    signer: NoteSigner,
    tmp_path: Path,
    bounds: dict[str, object],
    first: int,
    last: int,
) -> None:
    path = _export(logged, tmp_path / "audit.jsonl", **bounds)
    report = verify_export(path, signer.public_key_text())
    assert (report.first_seq, report.last_seq, report.count) == (first, last, last - first + 1)
    lines = _lines(path)
    assert len(lines) == last - first + 3
    events = [json.loads(line) for line in lines[1:-1]]
    assert [e["seq"] for e in events] == list(range(first, last + 1))
    assert report.tree_size == (120 if last <= 120 else 300)
    assert report.latest_tree_size == (300 if last <= 120 else None)


@pytest.mark.parametrize(
    ("window", "first", "last"),
    [
        ({"since": "2030-01-01T00:00:00Z"}, 301, 300),  # after every event
        ({"until": "2020-01-01T00:00:00Z"}, 1, 0),  # before every event
        ({"since": "2024-05-01T12:00:00.0105Z", "until": "2024-05-01T12:00:00.0107Z"}, 11, 10),
    ],
)
def test_empty_windows_prove_their_emptiness(
    logged: Engine,
    signer: NoteSigner,
    tmp_path: Path,
    window: dict[str, str],
    first: int,
    last: int,
) -> None:
    path = _export(logged, tmp_path / "e.jsonl", **window)
    report = verify_export(path, signer.public_key_text())
    assert (report.count, report.first_seq, report.last_seq) == (0, first, last)
    header = json.loads(_lines(path)[0])
    assert (header["before"] is None) == (first == 1)


def test_window_neighbours_are_included_and_checked(
    logged: Engine, signer: NoteSigner, tmp_path: Path
) -> None:
    path = _export(
        logged,
        tmp_path / "w.jsonl",
        since="2024-05-01T12:00:00.010Z",
        until="2024-05-01T12:00:00.020Z",
    )
    lines = _lines(path)
    header = json.loads(lines[0])
    assert json.loads(header["before"])["seq"] == 9 and json.loads(header["after"])["seq"] == 21

    def rewrite(**changes: object) -> None:
        _write(path, [json.dumps({**header, **changes}), *lines[1:]])

    rewrite(before=None)
    with pytest.raises(ExportVerificationError, match="event before seq 10 was removed"):
        verify_export(path, signer.public_key_text())
    rewrite(after=None)
    with pytest.raises(ExportVerificationError, match="event after seq 20 was removed"):
        verify_export(path, signer.public_key_text())
    rewrite(since="2024-05-01T12:00:00.005Z")  # claims a wider window than it holds
    with pytest.raises(ExportVerificationError, match="do not start the window"):
        verify_export(path, signer.public_key_text())
    rewrite(until="2024-05-01T12:00:00.030Z")
    with pytest.raises(ExportVerificationError, match="do not end the window"):
        verify_export(path, signer.public_key_text())
    forged = json.loads(header["before"])
    forged["time"] = "2024-05-01T12:00:00.001000Z"
    rewrite(before=json.dumps(forged, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    with pytest.raises(
        ExportVerificationError, match="line 1: event seq 9 does not match its hash"
    ):
        verify_export(path, signer.public_key_text())


def test_export_to_a_stream(logged: Engine, signer: NoteSigner, tmp_path: Path) -> None:
    buffer = io.StringIO()
    with logged.connect() as conn:
        summary = export_events(conn, buffer, first_seq=5, last_seq=9)
    assert summary.count == 5
    path = tmp_path / "s.jsonl"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    verify_export(path, signer.public_key_text())


def test_export_needs_a_covering_checkpoint(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        AuditLog().append(conn, draft(1))
    with engine.connect() as conn, pytest.raises(CheckpointError, match="create one"):
        export_events(conn, tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


@pytest.fixture
def exported(logged: Engine, tmp_path: Path) -> Path:
    return _export(logged, tmp_path / "audit.jsonl", first_seq=10, last_seq=200)


def test_wrong_key(exported: Path, other_signer: NoteSigner) -> None:
    with pytest.raises(SignatureError, match="not signed by key"):
        verify_export(exported, other_signer.public_key_text())


def test_edited_line(exported: Path, signer: NoteSigner) -> None:
    lines = _lines(exported)
    event = json.loads(lines[50])
    event["outcome"] = "denied"
    lines[50] = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    _write(exported, lines)
    with pytest.raises(ExportVerificationError, match="line 51: event seq 59 does not match"):
        verify_export(exported, signer.public_key_text())


def test_reformatted_line(exported: Path, signer: NoteSigner) -> None:
    lines = _lines(exported)
    lines[3] = json.dumps(json.loads(lines[3]), indent=1).replace("\n", "")
    _write(exported, lines)
    with pytest.raises(ExportVerificationError, match=r"line 4: .*not in canonical form"):
        verify_export(exported, signer.public_key_text())


def test_extra_key_in_line(exported: Path, signer: NoteSigner) -> None:
    lines = _lines(exported)
    lines[3] = lines[3][:-1] + ',"zz":1}'
    _write(exported, lines)
    with pytest.raises(ExportVerificationError, match="line 4: line is not an event"):
        verify_export(exported, signer.public_key_text())


@pytest.mark.parametrize("cut", [1, 40, 500])
def test_truncated_mid_line(exported: Path, signer: NoteSigner, cut: int) -> None:
    data = exported.read_bytes()
    exported.write_bytes(data[: len(data) - cut])
    with pytest.raises(ExportTruncatedError):
        verify_export(exported, signer.public_key_text())


def test_truncated_at_line_boundary(exported: Path, signer: NoteSigner) -> None:
    _write(exported, _lines(exported)[:100])
    with pytest.raises(ExportTruncatedError, match="99 of 191 events"):
        verify_export(exported, signer.public_key_text())


def test_trailer_cut_off(exported: Path, signer: NoteSigner) -> None:
    _write(exported, _lines(exported)[:-1])
    with pytest.raises(ExportTruncatedError, match="before its trailer"):
        verify_export(exported, signer.public_key_text())


def test_removed_line(exported: Path, signer: NoteSigner) -> None:
    lines = _lines(exported)
    del lines[20]
    _write(exported, lines)
    with pytest.raises(ExportVerificationError, match="expected event seq 29, found 30"):
        verify_export(exported, signer.public_key_text())


def test_removed_last_event_and_fixed_header(exported: Path, signer: NoteSigner) -> None:
    """Dropping the last event and adjusting the counts is caught by the neighbour."""
    lines = _lines(exported)
    header = json.loads(lines[0])
    header.update(last_seq=199, count=190)
    previous = json.loads(lines[-3])
    trailer = {"format": "arbiter-audit-export-end", "count": 190, "last_hash": previous["hash"]}
    _write(exported, [json.dumps(header), *lines[1:-2], json.dumps(trailer)])
    with pytest.raises(ExportVerificationError, match="expected event seq 200, found 201"):
        verify_export(exported, signer.public_key_text())
    header.update(after=None)
    _write(exported, [json.dumps(header), *lines[1:-2], json.dumps(trailer)])
    with pytest.raises(ExportVerificationError, match="event after seq 199 was removed"):
        verify_export(exported, signer.public_key_text())


def test_forged_neighbour_fails_the_range_proof(exported: Path, signer: NoteSigner) -> None:
    lines = _lines(exported)
    header = json.loads(lines[0])
    last = json.loads(lines[-2])
    forged = {**json.loads(header["after"]), "prev_hash": last["hash"], "outcome": "denied"}
    body = {k: v for k, v in forged.items() if k != "hash"}
    forged["hash"] = hashlib.sha256(rfc8785.dumps(body)).hexdigest()
    header["after"] = rfc8785.dumps(forged).decode()
    _write(exported, [json.dumps(header), *lines[1:]])
    with pytest.raises(ProofError, match="not the ones checkpoint 300 signed"):
        verify_export(exported, signer.public_key_text())


def test_swapped_lines(exported: Path, signer: NoteSigner) -> None:
    lines = _lines(exported)
    lines[5], lines[6] = lines[6], lines[5]
    _write(exported, lines)
    with pytest.raises(ExportVerificationError, match="expected event seq 14"):
        verify_export(exported, signer.public_key_text())


def test_content_after_trailer(exported: Path, signer: NoteSigner) -> None:
    _write(exported, [*_lines(exported), "{}"])
    with pytest.raises(ExportVerificationError, match="after the trailer"):
        verify_export(exported, signer.public_key_text())


def test_tampered_range_proof(exported: Path, signer: NoteSigner) -> None:
    lines = _lines(exported)
    header = json.loads(lines[0])
    header["range_proof"]["right"][0] = "00" * 32
    lines[0] = json.dumps(header)
    _write(exported, lines)
    with pytest.raises(ProofError):
        verify_export(exported, signer.public_key_text())


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", ExportTruncatedError),
        (b"hello\n", ExportVerificationError),
        (b"\xff\xfe\n", ExportVerificationError),
        (b"[1]\n", ExportVerificationError),
        (b'{"format":"arbiter-audit-export","version":2}\n', ExportVerificationError),
    ],
)
def test_not_an_export(
    tmp_path: Path, signer: NoteSigner, content: bytes, error: type[Exception]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(error):
        verify_export(path, signer.public_key_text())


def test_every_error_is_a_verification_error() -> None:
    for error in (ExportTruncatedError, ExportVerificationError, ProofError, SignatureError):
        assert issubclass(error, AuditVerificationError)
