"""Loading a policy directory: what belongs to the bundle and what its revision covers."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies import PolicyLoadError, default_policy_dir, load_bundle
from policies.bundle import bundle_revision


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


POLICY = "package registry\n\ndecision := {}\n"


def test_starter_bundle_splits_modules_tests_and_data() -> None:
    bundle = load_bundle(default_policy_dir())
    assert "registry/decision.rego" in bundle.modules
    assert "registry/decision_test.rego" in bundle.tests
    assert not set(bundle.modules) & set(bundle.tests)
    assert "data.json" in bundle.data_files
    assert bundle.data["arbiter"]["roles"]["reader"] == ["pull"]
    assert bundle.revision.startswith("sha256:") and len(bundle.revision) == 71


def test_revision_is_a_digest_over_paths_and_contents(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {"a.rego": POLICY, "README.md": "not part of the bundle"})
    first = load_bundle(root).revision
    assert first == bundle_revision({"a.rego": POLICY})
    (root / "README.md").write_text("changed")
    assert load_bundle(root).revision == first
    (root / "a.rego").write_text(POLICY + "\n# comment\n")
    assert load_bundle(root).revision != first
    (root / "a.rego").rename(root / "b.rego")
    assert load_bundle(root).revision != bundle_revision({"a.rego": POLICY + "\n# comment\n"})


def test_test_files_are_part_of_the_revision(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {"a.rego": POLICY})
    before = load_bundle(root).revision
    write(root, {"a_test.rego": "package registry_test\n"})
    assert load_bundle(root).revision != before


def test_nested_data_lands_under_its_directory(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        {"a.rego": POLICY, "data.json": '{"x": 1}', "teams/data.json": '{"y": {"z": 2}}'},
    )
    assert dict(load_bundle(root).data) == {"x": 1, "teams": {"y": {"z": 2}}}


def test_hidden_files_are_ignored(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {"a.rego": POLICY, ".git/x.rego": "garbage", ".b.rego": "x"})
    assert list(load_bundle(root).modules) == ["a.rego"]


def test_broken_data_json_names_file_and_line(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {"a.rego": POLICY, "data.json": '{\n  "x": 1,\n  oops\n}'})
    with pytest.raises(PolicyLoadError) as refused:
        load_bundle(root)
    (problem,) = refused.value.problems
    assert (problem.file, problem.line) == ("data.json", 3)
    assert "data.json:3" in refused.value.diagnostics()


def test_conflicting_data_is_refused(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        {"a.rego": POLICY, "data.json": '{"teams": {"y": 1}}', "teams/data.json": '{"y": 2}'},
    )
    with pytest.raises(PolicyLoadError, match=r"teams\.y is defined twice"):
        load_bundle(root)


def test_missing_or_empty_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="does not exist"):
        load_bundle(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyLoadError, match=r"no \.rego policy modules"):
        load_bundle(tmp_path / "empty")
