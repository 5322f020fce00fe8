"""A bad policy is refused with its file, line and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import PolicyLoadError, load_bundle
from policies.validation import validate_bundle
from tests.policies.conftest import ALLOW_ALL, DENY_ALL


def bundle_of(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_fixtures_and_starter_policies_validate(policy_copy: Path) -> None:
    for root in (DENY_ALL, ALLOW_ALL, policy_copy):
        compiled = validate_bundle(load_bundle(root))
        assert compiled.revision == load_bundle(root).revision


def test_syntax_error_names_file_line_and_message(tmp_path: Path) -> None:
    root = bundle_of(
        tmp_path, {"registry/x.rego": 'package registry\n\ndecision := {"allow": true\n'}
    )
    with pytest.raises(PolicyLoadError) as refused:
        validate_bundle(load_bundle(root), use_opa=False)
    problem = refused.value.problems[0]
    assert problem.file == "registry/x.rego"
    assert problem.line == 3
    assert "unclosed" in problem.message


def test_strict_check_catches_what_regopy_accepts(tmp_path: Path, opa_binary: str) -> None:
    source = (
        "package registry\n\n"
        'decision := {"allow": true, "reasons": [], "obligations": {}}\n\n'
        "helper if {\n\tunused := 1\n\ttrue\n}\n"
    )
    root = bundle_of(tmp_path, {"registry/x.rego": source})
    validate_bundle(load_bundle(root), use_opa=False)  # regopy alone accepts it
    with pytest.raises(PolicyLoadError, match="opa check --strict") as refused:
        validate_bundle(load_bundle(root), use_opa=True)
    problem = refused.value.problems[0]
    assert (problem.file, problem.line) == ("registry/x.rego", 6)
    assert "unused" in problem.message


def test_missing_entry_point_is_refused(tmp_path: Path) -> None:
    root = bundle_of(tmp_path, {"registry/x.rego": "package registry\n\nsomething := 1\n"})
    with pytest.raises(PolicyLoadError, match=r"data\.registry\.decision is undefined"):
        validate_bundle(load_bundle(root), use_opa=False)


def test_malformed_entry_point_is_refused(tmp_path: Path) -> None:
    root = bundle_of(tmp_path, {"registry/x.rego": 'package registry\n\ndecision := "yes"\n'})
    with pytest.raises(PolicyLoadError, match="malformed: expected an object"):
        validate_bundle(load_bundle(root), use_opa=False)


def test_entry_point_failing_at_runtime_is_refused(tmp_path: Path) -> None:
    source = "package registry\n\ndecision := 1 if input.action\n\ndecision := 2 if input.action\n"
    root = bundle_of(tmp_path, {"registry/x.rego": source})
    with pytest.raises(PolicyLoadError, match="fails on a probe input"):
        validate_bundle(load_bundle(root), use_opa=False)
