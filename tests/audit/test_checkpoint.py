"""Checkpoints, the proof node cache, proofs from the database, and the scheduler hook."""

from __future__ import annotations

import base64
import itertools
import random
import threading
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, func, select, text

from audit import (
    CheckpointBody,
    CheckpointError,
    CheckpointMismatchError,
    ConsistencyProof,
    EventNotFoundError,
    InclusionProof,
    NoteSigner,
    ProofError,
    checkpoint_job,
    create_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_or_create_signing_key,
    open_checkpoint,
    prove_consistency,
    prove_inclusion,
    scheduled_checkpoint,
)
from audit.errors import CheckpointFormatError
from audit.merkle import MemorySubtrees, event_leaf, inclusion_proof, tree_root
from audit.schema import audit_checkpoints, audit_events, audit_tree_nodes
from tests.audit.helpers import append_n, bypass_triggers


def _leaves(engine: Engine) -> list[bytes]:
    with engine.connect() as conn:
        hashes = conn.execute(select(audit_events.c.hash).order_by(audit_events.c.seq)).scalars()
        return [event_leaf(h) for h in hashes]


def test_checkpoint_is_a_signed_c2sp_note(engine: Engine, signer: NoteSigner) -> None:
    append_n(engine, 5)
    with engine.begin() as conn:
        checkpoint = create_checkpoint(conn, signer, origin="registry.example/audit")
    lines = checkpoint.note.split("\n")
    root = tree_root(MemorySubtrees(_leaves(engine)), 5)
    assert lines[:4] == ["registry.example/audit", "5", base64.b64encode(root).decode(), ""]
    assert lines[4].startswith("\u2014 arbiter.test/audit ")
    body = open_checkpoint(checkpoint.note, signer.verifier(), origin="registry.example/audit")
    assert (body.tree_size, body.root_hash) == (5, root)
    assert checkpoint.root_hash == root.hex()


def test_unchanged_log_reuses_the_checkpoint(engine: Engine, signer: NoteSigner) -> None:
    with engine.begin() as conn:
        empty = create_checkpoint(conn, signer)
    assert empty.tree_size == 0
    append_n(engine, 3)
    with engine.begin() as conn:
        first = create_checkpoint(conn, signer)
        again = create_checkpoint(conn, signer)
    assert first == again
    with engine.connect() as conn:
        assert [c.tree_size for c in list_checkpoints(conn)] == [0, 3]
        assert latest_checkpoint(conn) == first


@pytest.mark.parametrize("tile_height", [2, 8])
def test_database_proofs_equal_in_memory_proofs(
    engine: Engine, signer: NoteSigner, monkeypatch: pytest.MonkeyPatch, tile_height: int
) -> None:
    monkeypatch.setattr("audit.tree.TILE_HEIGHT", tile_height)
    sizes = [37, 300, 701] if tile_height == 2 else [300, 1100]
    done = 0
    for size in sizes:
        append_n(engine, size - done, start=done)
        done = size
        with engine.begin() as conn:
            create_checkpoint(conn, signer)
    memory = MemorySubtrees(_leaves(engine))
    rng = random.Random(7)
    with engine.connect() as conn:
        checkpoints = {c.tree_size: c for c in list_checkpoints(conn)}
        cached = conn.scalar(select(func.count()).select_from(audit_tree_nodes))
        assert cached > 0
        for size, checkpoint in checkpoints.items():
            for seq in [1, size, *rng.sample(range(1, size + 1), 15)]:
                proof = prove_inclusion(conn, seq, size)
                assert [bytes.fromhex(h) for h in proof.hashes] == inclusion_proof(
                    memory, seq - 1, size
                )
                proof.verify(checkpoint.root_hash)
        ordered = sorted(checkpoints)
        for old, new in itertools.pairwise(ordered):
            proof = prove_consistency(conn, old, new)
            proof.verify(checkpoints[old].root_hash, checkpoints[new].root_hash)
        default = prove_inclusion(conn, 5)
        assert default.tree_size == max(checkpoints)


def test_proofs_for_missing_seqs_raise(engine: Engine, signer: NoteSigner) -> None:
    append_n(engine, 10)
    with engine.connect() as conn, pytest.raises(CheckpointError, match="no checkpoint"):
        prove_inclusion(conn, 3)
    with engine.begin() as conn:
        create_checkpoint(conn, signer)
    with engine.connect() as conn:
        for seq in (0, 11, -1):
            with pytest.raises(EventNotFoundError):
                prove_inclusion(conn, seq)
        with pytest.raises(EventNotFoundError):
            prove_inclusion(conn, 3, tree_size=11)
        with pytest.raises(EventNotFoundError):
            prove_consistency(conn, 11)


def test_proof_json_round_trip_and_tampering(engine: Engine, signer: NoteSigner) -> None:
    append_n(engine, 20)
    with engine.begin() as conn:
        checkpoint = create_checkpoint(conn, signer)
        inclusion = prove_inclusion(conn, 7)
        consistency = prove_consistency(conn, 6)
    assert InclusionProof.from_json(inclusion.to_json()) == inclusion
    assert ConsistencyProof.from_json(consistency.to_json()) == consistency
    forged = InclusionProof(8, inclusion.tree_size, inclusion.event_hash, inclusion.hashes)
    with pytest.raises(ProofError):
        forged.verify(checkpoint.root_hash)
    with pytest.raises(ProofError):
        InclusionProof.from_json({"seq": 1})
    with pytest.raises(ProofError):
        consistency.verify("00" * 32, checkpoint.root_hash)


def test_refuses_to_sign_a_rewritten_history(engine: Engine, signer: NoteSigner) -> None:
    append_n(engine, 10)
    with engine.begin() as conn:
        create_checkpoint(conn, signer)
    append_n(engine, 5, start=10)
    with engine.begin() as conn:
        bypass_triggers(conn)
        conn.execute(text("UPDATE audit_events SET hash = :h WHERE seq = 9"), {"h": "d" * 64})
    with engine.begin() as conn, pytest.raises(CheckpointMismatchError, match="refusing to sign"):
        create_checkpoint(conn, signer)


def test_concurrent_checkpoint_creation_stores_one(engine: Engine, signer: NoteSigner) -> None:
    append_n(engine, 50)
    job = checkpoint_job(engine, signer)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            job()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(audit_checkpoints)) == 1


def test_apscheduler_runs_the_job(engine: Engine, signer: NoteSigner) -> None:
    append_n(engine, 4)
    done = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_listener(lambda _event: done.set(), mask=EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.add_job(checkpoint_job(engine, signer), id="audit-checkpoint", max_instances=1)
    scheduler.start()
    try:
        assert done.wait(30)
    finally:
        scheduler.shutdown()
    with engine.connect() as conn:
        checkpoint = latest_checkpoint(conn)
    assert checkpoint is not None and checkpoint.tree_size == 4


def test_scheduled_checkpoint_takes_picklable_arguments(db_url: str, tmp_path: Path) -> None:
    from tests.audit.helpers import install, make_engine

    engine = make_engine(db_url)
    install(engine)
    append_n(engine, 6)
    engine.dispose()
    key = tmp_path / "audit.key"
    assert scheduled_checkpoint(db_url, str(key)) == 6
    signer = load_or_create_signing_key(key)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        checkpoint = latest_checkpoint(conn)
    engine.dispose()
    assert checkpoint is not None
    checkpoint.open(signer.verifier())


@pytest.mark.parametrize(
    "text_",
    ["o\n5\n", "o\n05\nAAAA\n", "o\nfive\nAAAA\n", "o\n5\n!!!\n", "o\n5\nAAAA\n", "\n5\nAAAA\n"],
)
def test_malformed_checkpoint_bodies(text_: str) -> None:
    with pytest.raises(CheckpointFormatError):
        CheckpointBody.parse(text_)


def test_checkpoint_body_round_trip_with_extensions() -> None:
    body = CheckpointBody("o.example/log", 12, bytes(range(32)), ("ext one",))
    assert CheckpointBody.parse(body.text()) == body
