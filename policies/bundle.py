"""A policy directory as one immutable bundle with a revision, and its validation.

The revision is what every decision carries and the audit log records, so it
must name the exact files in force: it is a digest over the sorted relative
paths and contents of every ``.rego`` file (tests included) and every
``data.json`` in the directory. Validation refuses a bundle with the file, line
and message of each problem, so that a reload can keep the last good revision.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from policies.errors import PolicyLoadError, Problem

DATA_FILE = "data.json"
TEST_SUFFIX = "_test.rego"
OPA_CHECK_TIMEOUT_S = 60


@dataclass(frozen=True)
class PolicyBundle:
    """The policy modules, tests and data of one directory, read once.

    ``modules`` are what engines evaluate; ``tests`` travel with the bundle so
    that ``opa check`` and ``opa test`` see exactly what was loaded.
    """

    root: Path
    modules: Mapping[str, str]
    tests: Mapping[str, str]
    data: Mapping[str, Any]
    data_files: Mapping[str, str]
    revision: str

    def files(self) -> dict[str, str]:
        """Every file of the bundle by relative path, as read."""
        return {**self.modules, **self.tests, **self.data_files}

    def write_to(self, directory: Path, *, tests: bool = True) -> None:
        """Recreate the bundle's files under ``directory`` (for ``opa check``).

        ``tests=False`` leaves the ``_test.rego`` files out, for ``opa build``,
        which would otherwise compile every test rule into the bundle too.
        """
        files = self.files() if tests else {**self.modules, **self.data_files}
        for relative, text in files.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")


def load_bundle(policy_dir: Path) -> PolicyBundle:
    """Read ``policy_dir``; :class:`PolicyLoadError` if a file cannot be read or parsed."""
    root = Path(policy_dir)
    if not root.is_dir():
        raise PolicyLoadError(f"policy directory {root} does not exist or is not a directory")
    texts, problems = _read_files(root)
    modules = {path: text for path, text in texts.items() if _is_module(path)}
    tests = {path: text for path, text in texts.items() if path.endswith(TEST_SUFFIX)}
    data_files = {path: text for path, text in texts.items() if path.endswith(DATA_FILE)}
    data = _merge_data(data_files, problems)
    if not modules and not problems:
        problems.append(Problem(str(root), 0, "no .rego policy modules found"))
    if problems:
        raise PolicyLoadError(f"policy bundle {root} refused", tuple(problems))
    return PolicyBundle(
        root=root,
        modules=MappingProxyType(modules),
        tests=MappingProxyType(tests),
        data=MappingProxyType(data),
        data_files=MappingProxyType(data_files),
        revision=bundle_revision(texts),
    )


def bundle_revision(files: Mapping[str, str]) -> str:
    """``sha256:`` over ``path NUL sha256(content) LF`` for each file in path order.

    A manifest of content digests rather than a plain concatenation, so that no
    two different bundles can produce the same byte stream.
    """
    manifest = hashlib.sha256()
    for path in sorted(files):
        content = hashlib.sha256(files[path].encode("utf-8")).hexdigest()
        manifest.update(f"{path}\0{content}\n".encode())
    return "sha256:" + manifest.hexdigest()


def opa_binary() -> str | None:
    """The ``opa`` executable on PATH, if any."""
    return shutil.which("opa")


def run_opa(opa: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``opa`` with ``args``, its output captured; raises ``subprocess.TimeoutExpired``."""
    return subprocess.run(
        [opa, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=OPA_CHECK_TIMEOUT_S,
        check=False,
    )


def opa_check(bundle: PolicyBundle, opa: str) -> tuple[Problem, ...]:
    """``opa check --strict`` over the bundle exactly as loaded, as :class:`Problem` s.

    The files are written to a scratch directory first so that the check sees
    the bytes the engine will run, not whatever the directory holds by now.
    """
    with tempfile.TemporaryDirectory(prefix="arbiter-opa-check-") as scratch:
        bundle.write_to(Path(scratch))
        completed = run_opa(opa, "check", "--strict", "--format", "json", scratch)
        if completed.returncode == 0:
            return ()
        return tuple(_opa_problems(completed.stdout or completed.stderr, scratch))


def _opa_problems(output: str, scratch: str) -> Iterator[Problem]:
    try:
        errors = json.loads(output).get("errors", [])
    except (json.JSONDecodeError, AttributeError):
        yield Problem("opa check", 0, output.strip() or "opa check failed without output")
        return
    for error in errors:
        location = error.get("location") or {}
        file = str(location.get("file", "")).removeprefix(scratch).lstrip("/")
        yield Problem(
            file or "opa check",
            int(location.get("row", 0)),
            str(error.get("message", "")),
            int(location.get("col", 0)),
        )


def _is_module(path: str) -> bool:
    return path.endswith(".rego") and not path.endswith(TEST_SUFFIX)


def _read_files(root: Path) -> tuple[dict[str, str], list[Problem]]:
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or _hidden(relative) or not _bundled(path.name):
            continue
        try:
            texts[relative] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(relative, 0, f"cannot read: {error}"))
    return texts, problems


def _hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


def _bundled(name: str) -> bool:
    return name.endswith(".rego") or name == DATA_FILE


def _merge_data(data_files: Mapping[str, str], problems: list[Problem]) -> dict[str, Any]:
    """One data document: ``a/b/data.json`` lands under ``data.a.b``, as ``opa`` loads it."""
    merged: dict[str, Any] = {}
    for relative, text in sorted(data_files.items()):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            problems.append(Problem(relative, error.lineno, error.msg, error.colno))
            continue
        if not isinstance(value, dict):
            problems.append(Problem(relative, 1, "a data.json file must hold a JSON object"))
            continue
        prefix = relative.split("/")[:-1]
        for conflict in _merge_at(merged, prefix, value):
            problems.append(Problem(relative, 0, f"data key {conflict} is defined twice"))
    return merged


def _merge_at(target: dict[str, Any], prefix: list[str], value: dict[str, Any]) -> list[str]:
    node = target
    for key in prefix:
        node = node.setdefault(key, {})
    return _deep_merge(node, value, ".".join(prefix))


def _deep_merge(target: dict[str, Any], value: dict[str, Any], where: str) -> list[str]:
    conflicts: list[str] = []
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        if key not in target:
            target[key] = item
        elif isinstance(target[key], dict) and isinstance(item, dict):
            conflicts.extend(_deep_merge(target[key], item, path))
        else:
            conflicts.append(path)
    return conflicts
