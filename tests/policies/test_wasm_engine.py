"""The wasm engine: the starter rules as the embedded engine decides them, failing
closed, threads, and its host builtins against what a real ``opa eval`` prints.

Every test here needs the ``opa`` binary (the engine compiles with ``opa build
-t wasm``); without it they skip, saying so (``scripts/install-tools.sh``).
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policies import (
    ENGINE_KINDS,
    ENGINE_UNAVAILABLE,
    EmbeddedEngine,
    PolicyLoadError,
    PolicyPoint,
    default_policy_dir,
    engine_for_bundle,
    load_bundle,
)
from policies import wasm as wasm_module
from policies._gofmt import Unsupported
from policies._gofmt import sprintf as go_sprintf
from policies._wasm_builtins import go_operand, parse_term
from policies.inputs import input_digest
from policies.wasm import WasmEngine, compile_policy
from tests.policies.conftest import make_input

# The test_* names are the engine contract, run again here: pytest collects tests
# imported into a module with that module's fixtures, so their ``engine`` and
# ``engine_for`` are this module's, the wasm engine.
from tests.policies.test_embedded import (  # noqa: F401
    ALLOWED,
    CONFLICT,
    DENIED,
    PULL_ALLOWED,
    EngineFor,
    test_closed_engine_denies,
    test_concurrent_decisions_match_sequential_ones,
    test_decide_many_matches_decide_one_by_one,
    test_exempted_pull_is_allowed_with_an_obligation,
    test_malformed_decision_is_no_decision,
    test_non_json_input_is_denied_not_raised,
    test_runtime_error_fails_closed,
    test_starter_policy_denies_with_reason,
    test_undefined_decision_is_no_decision,
)

pytestmark = pytest.mark.opa

ALLOW = '{"allow": true, "reasons": [], "obligations": {}}'


@pytest.fixture(scope="module")
def engine(opa_binary: str) -> Iterator[WasmEngine]:
    starter = WasmEngine.from_bundle(load_bundle(default_policy_dir()))
    yield starter
    starter.close()


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedEngine]:
    starter = EmbeddedEngine.from_bundle(load_bundle(default_policy_dir()), use_opa=False)
    yield starter
    starter.close()


@pytest.fixture
def engine_for(tmp_path: Path, opa_binary: str) -> EngineFor:
    """Builds a wasm engine over a one-file policy."""

    def build(source: str, **options: Any) -> WasmEngine:
        (tmp_path / "policy.rego").write_text(source)
        return WasmEngine.from_bundle(load_bundle(tmp_path), use_opa=False, **options)

    return build


def outcome(decision: Any) -> tuple[bool, tuple[str, ...], dict[str, Any]]:
    return decision.allow, decision.reasons, dict(decision.obligations)


# --- the starter policies ------------------------------------------------------------

CASES = [(case, doc) for case, doc in ALLOWED] + [(case, doc) for case, doc, _ in DENIED]


@pytest.mark.parametrize(("case", "doc"), CASES, ids=[case for case, _ in CASES])
def test_starter_policy_decides_as_the_embedded_engine(
    engine: WasmEngine, embedded: EmbeddedEngine, case: str, doc: dict[str, Any]
) -> None:
    ours, theirs = engine.decide(doc), embedded.decide(doc)
    assert not ours.details, (case, ours.details)
    assert outcome(ours) == outcome(theirs), case


def test_decision_carries_the_evidence(engine: WasmEngine) -> None:
    doc = make_input("pull")
    decision = engine.decide(doc)
    assert decision.engine == "wasm"
    assert decision.policy_revision == load_bundle(default_policy_dir()).revision
    assert decision.input_digest == input_digest(doc)  # the whole input, not the projection
    assert decision.elapsed_us > 0
    assert engine.decide(doc).decision_id != decision.decision_id


# --- failing closed ----------------------------------------------------------------

# Nine million iterations and no allocation: slow in any engine, and it stays
# slow instead of running out of memory first.
SLOW = f"""package registry

decision := {ALLOW} if input.action != "slow"

decision := {{"allow": spin, "reasons": [], "obligations": {{}}}} if input.action == "slow"

spin if {{
	some i in numbers.range(1, 3000)
	some j in numbers.range(1, 3000)
	i * j == -1
}}
"""


def test_timeout_denies_on_time_and_the_thread_recovers(engine_for: EngineFor) -> None:
    slow = engine_for(SLOW, timeout_ms=50)
    try:
        for _ in range(2):
            started = time.monotonic()
            decision = slow.decide({"action": "slow"})
            waited = time.monotonic() - started
            assert (decision.allow, decision.reasons) == (False, (ENGINE_UNAVAILABLE,))
            assert decision.details["error"] == "evaluation took over 50 ms"
            assert 0.04 < waited < 1.0  # SLOW runs ~2 s untrapped; room for a busy CI
            assert slow.decide({"action": "pull"}).allow  # same thread, fresh instance
    finally:
        slow.close()


def test_decide_many_holds_each_evaluation_to_the_timeout(engine_for: EngineFor) -> None:
    slow = engine_for(SLOW, timeout_ms=50)
    try:
        started = time.monotonic()
        decisions = slow.decide_many([{"action": "pull"}, {"action": "slow"}, {"action": "pull"}])
        assert time.monotonic() - started < 1.5  # SLOW alone runs ~2 s untrapped
        assert [d.allow for d in decisions] == [True, False, True]
        assert decisions[1].reasons == (ENGINE_UNAVAILABLE,)
    finally:
        slow.close()


def test_runtime_error_names_the_rule(engine_for: EngineFor) -> None:
    broken = engine_for(CONFLICT)
    try:
        error = broken.decide({"action": "push"}).details["error"]
        assert error.startswith("opa_abort: policy.rego:")
        assert "conflict" in error
        assert broken.decide({"action": "pull"}).allow  # a fresh instance after the abort
    finally:
        broken.close()


def test_a_closed_engine_says_so(engine_for: EngineFor) -> None:
    closed = engine_for(PULL_ALLOWED)
    closed.close()
    assert closed.decide({"action": "pull"}).details["error"] == "the wasm engine is closed"


def test_formatting_we_cannot_reproduce_fails_closed(engine_for: EngineFor) -> None:
    """``%x`` of a float is Go's hexadecimal float: a deny, never a guess at it."""
    source = PULL_ALLOWED + (
        'decision := {"allow": true, "reasons": [sprintf("%x", [input.n])], "obligations": {}}'
        ' if input.action == "hex"\n'
    )
    engine = engine_for(source)
    try:
        decision = engine.decide({"action": "hex", "n": 1.5})
        assert decision.reasons == (ENGINE_UNAVAILABLE,)
        assert decision.details["error"].startswith("sprintf: %x of a float")
        assert engine.decide({"action": "pull"}).allow
    finally:
        engine.close()


# --- loading ---------------------------------------------------------------------------

HTTP_SEND = PULL_ALLOWED + (
    'decision := {"allow": response.status_code == 200, "reasons": [], "obligations": {}} if {\n'
    '\tinput.action == "fetch"\n'
    '\tresponse := http.send({"method": "get", "url": "http://127.0.0.1:1"})\n'
    "}\n"
)


def test_a_bundle_needing_an_unimplemented_host_builtin_is_refused(
    tmp_path: Path, opa_binary: str
) -> None:
    (tmp_path / "policy.rego").write_text(HTTP_SEND)
    with pytest.raises(PolicyLoadError) as refused:
        engine_for_bundle(load_bundle(tmp_path), "wasm")
    assert "http.send" in str(refused.value)
    assert "embedded or opa engine" in str(refused.value)


def test_the_last_good_revision_stays_when_a_reload_is_refused(
    tmp_path: Path, opa_binary: str
) -> None:
    (tmp_path / "policy.rego").write_text(PULL_ALLOWED)
    point = PolicyPoint(kind="wasm", policy_dir=tmp_path)
    try:
        good = point.revision
        assert point.name == "wasm"
        (tmp_path / "policy.rego").write_text(HTTP_SEND)
        with pytest.raises(PolicyLoadError, match=r"http\.send"):
            point.reload()
        assert point.revision == good
        assert point.decide({"action": "pull"}).allow
    finally:
        point.close()


def test_the_factory_knows_the_wasm_engine(opa_binary: str) -> None:
    assert "wasm" in ENGINE_KINDS
    engine = engine_for_bundle(load_bundle(default_policy_dir()), "wasm", timeout_ms=5000)
    try:
        assert isinstance(engine, WasmEngine)
        assert engine.decide(make_input("pull")).allow
    finally:
        engine.close()


def test_without_opa_the_engine_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "policy.rego").write_text(PULL_ALLOWED)
    monkeypatch.setattr(wasm_module, "opa_binary", lambda: None)
    with pytest.raises(PolicyLoadError, match=r"scripts/install-tools\.sh") as refused:
        compile_policy(load_bundle(tmp_path), None)
    assert "go install github.com/open-policy-agent/opa@v1.22.3" in str(refused.value)


def test_opa_build_errors_name_file_and_line(tmp_path: Path, opa_binary: str) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "broken.rego").write_text('package registry\n\ndecision := {"allow": tru\n')
    with pytest.raises(PolicyLoadError) as refused:
        compile_policy(load_bundle(tmp_path), None)
    problem = refused.value.problems[0]
    assert (problem.file, problem.line) == ("lib/broken.rego", 4)
    assert "rego_parse_error" in problem.message


def test_tests_are_not_compiled_into_the_module(opa_binary: str) -> None:
    policy = compile_policy(load_bundle(default_policy_dir()), None)
    assert policy.builtins is not None
    assert sorted(policy.builtins.values()) == ["sprintf", "time.parse_rfc3339_ns"]


# --- host builtins against opa eval ------------------------------------------------------


def opa_and_wasm(opa: str, root: Path, cases: list[str], doc: dict[str, Any]) -> tuple[Any, Any]:
    """``cases`` (Rego expressions) as ``opa eval`` and as the wasm engine evaluate them."""
    module = (
        "package registry\n\ncases := [\n\t"
        + ",\n\t".join(cases)
        + "\n]\n\n"
        # The engine's own probe (an anonymous pull) must get a decision too.
        + 'decision := {"allow": true, "reasons": [json.marshal(cases)], "obligations": {}}'
        + " if input.run\n\n"
        + 'decision := {"allow": true, "reasons": [], "obligations": {}} if not input.run\n'
    )
    doc = {**doc, "run": True}
    (root / "cases.rego").write_text(module)
    (root / "input.json").write_text(json.dumps(doc, separators=(",", ":")))
    query = ["eval", "-f", "json", "-d", str(root / "cases.rego"), "-i", str(root / "input.json")]
    completed = subprocess.run(
        [opa, *query, "data.registry.cases"],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = json.loads(completed.stdout)["result"][0]["expressions"][0]["value"]
    engine = WasmEngine(compile_policy(load_bundle(root), None), timeout_ms=5000)
    try:
        decision = engine.decide(doc)
    finally:
        engine.close()
    assert not decision.details, decision.details
    return theirs, json.loads(decision.reasons[0])


def assert_same(cases: list[str], theirs: list[Any], ours: list[Any]) -> None:
    different = [(case, a, b) for case, a, b in zip(cases, theirs, ours, strict=True) if a != b]
    assert different == [], "\n".join(f"{c}\n  opa : {a!r}\n  wasm: {b!r}" for c, a, b in different)


SPRINTF_INPUT = {"f": 1.0, "i": 7, "neg": -0.0, "s": 'é\x01\n\t"\\ \u2028 😀 \u00a0 \x7f <>&'}
SPRINTF = [
    'sprintf("%v", [[1, 1.0, 1.5, 1e3, 2.50, "s", true, null]])',
    'sprintf("%v", [{"k": [1, {"z": {"a", "b", 3}}], "a": set()}])',
    'sprintf("%v", [{1: "x", "a": 2, null: 3, [1]: 4, false: 5}])',
    'sprintf("%v", [{"set": {[1, 2], [1], {"a": 1}, {"a": 0}, set(), {1}}}])',
    'sprintf("%v|%v|%v|%v", [input.f, input.i, input.neg, input.s])',
    'sprintf("%v", [input])',
    'sprintf("%v", [[input.s]])',
    'sprintf("%q|%+q|%#q|%x|% X", [input.s, input.s, "back`tick", input.s, "abc"])',
    'sprintf("%v", [count({1, 2})])',
    'sprintf("%d|%5d|%-5d|%05d|%+d|% d|%x|%X|%#x|%o|%#o|%O|%b|%c|%q|%U|%#U",'
    " [42, 42, 42, -42, 42, 42, 255, 255, 255, 8, 8, 8, 5, 233, 233, 233, 233])",
    'sprintf("%f|%.2f|%e|%E|%g|%G|%8.3f|%-8.3f|%08.3f|%+.1e|%#g|%#.3g",'
    " [1.5, 3.14159, 123456.789, 0.000123, 1e-7, 1e21, 3.14159, 3.14159, -3.14159,"
    " 12345.678, 1.0, 1.0])",
    'sprintf("%v %v %v %v %v %v", [1e6, 123456.0, 1234567.0, 0.0001, 0.00001, 1/3])',
    'sprintf("%.0f %.0f %.0f %.1f %.2f", [0.5, 1.5, 2.5, 0.25, 0.125])',
    'sprintf("%s|%10s|%-10s|%.2s|%5.1s|%t", ["héllo", "r", "l", "trunc", "xyz", true])',
    'sprintf("%d|%v|%s|%x|%+d|%08d|%.30d|%o|%X|%c", [123456789012345678901234567890,'
    " 123456789012345678901234567890, 123456789012345678901234567890,"
    " 123456789012345678901234567890, 123456789012345678901234567890,"
    " 123456789012345678901234567890, 123456789012345678901234567890,"
    " 123456789012345678901234567890, 123456789012345678901234567890,"
    " 123456789012345678901234567890])",
    'sprintf("%v|%f|%d", [1e400, 1e400, 1.0])',
    'sprintf("%d %s %t", ["x", 5, 1])',
    'sprintf("%v %v", [1])',
    'sprintf("%v", [1, 2, "x", [3]])',
    'sprintf("%!|%z|%", [1])',
    'sprintf("%[2]v %[1]v|%[3]v", ["a", "b"])',
    'sprintf("%*d|%-*d|%.*f|%*d", [5, 42, 5, 42, 2, 3.14159, "x", 1])',
    'sprintf("%T %T %T %T %p %w", [1, 1.5, "s", [1], 1, "e"])',
    'sprintf("%6.2v|%-6v|%06v|%+v|%#v", [3.14159, "ab", 42, 3, "s"])',
    'sprintf("%v", ["日本語"])',
]


def test_sprintf_prints_what_opa_prints(tmp_path: Path, opa_binary: str) -> None:
    theirs, ours = opa_and_wasm(opa_binary, tmp_path, SPRINTF, SPRINTF_INPUT)
    assert_same(SPRINTF, theirs, ours)


ARGUMENTS = [
    "0",
    "-1",
    "42",
    "255",
    "233",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1.0",
    "-2.5",
    "0.1",
    "1e21",
    "1234567.0",
    "0.00001",
    "1e-7",
    "2.675",
    '""',
    '"x"',
    '"héllo"',
    '"a\\"b\\n"',
    '"😀"',
    "true",
    "null",
    "[]",
    '[1, "a", [2.5]]',
    '{"b": 1, "a": [true]}',
    '{"z", "a", 1}',
    "set()",
    "{}",
]
VERBS = "vdsqxXoObcUeEfFgGt"


def random_sprintf_cases(seed: int, count: int) -> list[str]:
    """Random formats over many argument kinds, leaving out what fails closed by design."""
    rng = random.Random(seed)
    cases: list[str] = []
    while len(cases) < count:
        specs = []
        for _ in range(rng.randrange(1, 4)):
            flags = "".join(rng.choice("#0+- ") for _ in range(rng.choice((0, 0, 1, 2))))
            width = str(rng.randrange(0, 12)) if rng.random() < 0.3 else ""
            precision = f".{rng.randrange(0, 8)}" if rng.random() < 0.3 else ""
            specs.append(f"%{flags}{width}{precision}{rng.choice(VERBS)}")
        format_ = rng.choice(["", "x", "|"]).join(specs)
        arguments = [rng.choice(ARGUMENTS) for _ in range(rng.randrange(0, 4))]
        operands = [go_operand(parse_term(argument.encode())) for argument in arguments]
        try:  # a trap would abort the whole batch; its deny is tested elsewhere
            go_sprintf(format_, operands)
        except Unsupported:
            continue
        cases.append(f"sprintf({json.dumps(format_)}, [{', '.join(arguments)}])")
    return cases


def test_random_sprintf_formats_print_what_opa_prints(tmp_path: Path, opa_binary: str) -> None:
    cases = random_sprintf_cases(seed=20261128, count=400)
    theirs, ours = opa_and_wasm(opa_binary, tmp_path, cases, {})
    assert_same(cases, theirs, ours)


def test_numbers_computed_in_wasm_keep_its_precision(tmp_path: Path, opa_binary: str) -> None:
    """The one known difference, documented in rego/README.md: the module's own arithmetic."""
    cases = ['sprintf("%v", [[1/3]])']
    theirs, ours = opa_and_wasm(opa_binary, tmp_path, cases, {})
    assert theirs == ["[0.33333333333333333334]"]
    assert ours == ["[0.333333333333333333]"]


TIMES = [
    "2026-11-28T20:00:00Z",
    "2026-11-28T21:00:00+01:00",
    "2025-12-31T23:00:00-05:00",
    "2027-06-29T23:59:59.5Z",
    "2024-02-29T12:00:00.123456789Z",
    "2026-01-01T00:00:00.1234567891234Z",
    "2026-01-01T1:00:00Z",
    "2026-01-01T00:00:00,5Z",
    "2026-01-01T00:00:00+24:60",
    "2026-01-01T00:00:00-00:00",
    "1677-09-21T00:12:43.145224192Z",
    "2262-04-11T23:47:16.854775807Z",
    # OPA makes each of these undefined:
    "1677-09-21T00:12:43.145224191Z",
    "2262-04-11T23:47:16.854775808Z",
    "0000-01-01T00:00:00Z",
    "2023-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T00:00:60Z",
    "2026-01-01T00:00:00+25:00",
    "2026-01-01T00:00:00+0100",
    "2026-01-01t00:00:00z",
    "2026-01-01 00:00:00Z",
    "2026-1-01T00:00:00Z",
    " 2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00Z ",
    "2026-01-01T00:00:00.Z",
    "2026-01-01T00:00:00é",
    "",
]


def test_time_parse_rfc3339_ns_matches_opa(tmp_path: Path, opa_binary: str) -> None:
    cases = [f"[ns | ns := time.parse_rfc3339_ns({json.dumps(moment)})]" for moment in TIMES]
    cases += ["[ns | ns := time.parse_rfc3339_ns(input.t)]", "[s | s := sprintf(input.n, [1])]"]
    theirs, ours = opa_and_wasm(opa_binary, tmp_path, cases, {"t": TIMES[1], "n": 5})
    assert_same(cases, theirs, ours)
    assert sum(1 for answer in ours if answer) == 13  # the rest are undefined, as in OPA
