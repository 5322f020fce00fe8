"""The Python repository through the ASGI app: upload guards, simple and JSON APIs, yanks, lineage.

Uploads are sent as twine sends them (metadata fields, then the file in a
``content`` part). Every refusal must leave nothing behind: no row, no blob,
no staged file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.fixtures_app import ADMIN_TOKEN, RegistryApp, make_registry_app
from tests.registry.formats.pypi.pypi_builders import core_metadata, escape, sdist, wheel

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture
def app(registry_app: RegistryApp) -> RegistryApp:
    registry_app.create_repo("py", "pypi")
    return registry_app


def upload(
    app: RegistryApp,
    path: Path,
    *,
    repo: str = "py",
    fields: dict[str, Any] | None = None,
    token: str = ADMIN_TOKEN,
    omit: tuple[str, ...] = (),
) -> httpx.Response:
    """POST a distribution the way twine does."""
    data = path.read_bytes()
    is_wheel = path.name.endswith(".whl")
    stem = path.name.removesuffix(".whl").removesuffix(".tar.gz")
    name, version = stem.split("-")[:2]
    form: dict[str, Any] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.4",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if is_wheel else "sdist",
        "pyversion": "py3" if is_wheel else "source",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "md5_digest": hashlib.md5(data).hexdigest(),
        "description": "x" * 100_000,  # not kept: the file's own metadata is the truth
    }
    form.update(fields or {})
    for key in omit:
        form.pop(key, None)
    files = {"content": (path.name, data, "application/octet-stream")}
    headers = {"Authorization": f"Bearer {token}"}
    return app.client.post(f"/pypi/{repo}/", data=form, files=files, headers=headers)


def count(app: RegistryApp, sql: str) -> int:
    with app.services.db.reader() as session:
        return int(session.connection().execute(text(sql)).scalar_one())


def stored_nothing(app: RegistryApp) -> None:
    assert count(app, "SELECT count(*) FROM files") == 0
    assert count(app, "SELECT count(*) FROM versions") == 0
    root = app.settings.blob_root
    assert root is not None
    assert not any((root / "staging").iterdir())
    assert not (root / "sha256").exists() or not any((root / "sha256").rglob("*/*"))


def simple_json(app: RegistryApp, name: str) -> dict[str, Any]:
    response = app.client.get(f"/pypi/py/simple/{name}/", headers={**app.headers(), "Accept": JSON})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    body: dict[str, Any] = response.json()
    return body


def test_upload_then_simple_json_html_metadata_file_and_download(
    app: RegistryApp, tmp_path: Path
) -> None:
    path = wheel(tmp_path, "Demo.Pkg", "1.0", license_expression="MIT", requires=["idna>=2"])
    response = upload(app, path)
    assert response.status_code == 200, response.text
    sdist_path = sdist(tmp_path, "Demo.Pkg", "1.0")
    assert upload(app, sdist_path).status_code == 200

    page = simple_json(app, "demo-pkg")
    assert page["meta"]["api-version"] == "1.1"
    assert page["versions"] == ["1.0"]
    by_name = {f["filename"]: f for f in page["files"]}
    assert set(by_name) == {path.name, sdist_path.name}
    entry = by_name[path.name]
    assert entry["hashes"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry["requires-python"] == ">=3.8"
    assert entry["yanked"] is False
    assert entry["core-metadata"] == entry["dist-info-metadata"]
    assert by_name[sdist_path.name]["core-metadata"] is False

    metadata = app.client.get(entry["url"] + ".metadata", headers=app.headers())
    assert metadata.status_code == 200
    assert hashlib.sha256(metadata.content).hexdigest() == entry["core-metadata"]["sha256"]
    assert b"Name: Demo.Pkg" in metadata.content

    got = app.client.get(entry["url"], headers=app.headers())
    assert got.status_code == 200
    assert got.content == path.read_bytes()

    html = app.client.get("/pypi/py/simple/demo-pkg/", headers=app.headers())
    assert html.headers["content-type"].startswith("text/html")
    assert f"#sha256={entry['hashes']['sha256']}" in html.text
    assert 'data-requires-python="&gt;=3.8"' in html.text
    assert f'data-core-metadata="sha256={entry["core-metadata"]["sha256"]}"' in html.text

    index = app.client.get("/pypi/py/simple/", headers={**app.headers(), "Accept": JSON})
    assert index.json()["projects"] == [{"name": "demo-pkg"}]


def test_names_redirect_to_their_normal_form(app: RegistryApp, tmp_path: Path) -> None:
    assert upload(app, wheel(tmp_path, "Demo_Pkg", "1.0")).status_code == 200
    for spelling in ("Demo_Pkg/", "demo.pkg/", "DEMO-PKG", "demo-pkg"):
        response = app.client.get(
            f"/pypi/py/simple/{spelling}", headers=app.headers(), follow_redirects=False
        )
        assert response.status_code == 301, spelling
        assert response.headers["location"] == "/pypi/py/simple/demo-pkg/"


def test_accept_negotiation(app: RegistryApp, tmp_path: Path) -> None:
    assert upload(app, wheel(tmp_path, "demo", "1.0")).status_code == 200
    pip_accept = f"{JSON}, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
    cases = {
        pip_accept: JSON,
        "text/html": "text/html; charset=utf-8",
        "application/vnd.pypi.simple.latest+html": "application/vnd.pypi.simple.v1+html",
        "*/*": "text/html; charset=utf-8",
    }
    for accept, expected in cases.items():
        response = app.client.get(
            "/pypi/py/simple/demo/", headers={**app.headers(), "Accept": accept}
        )
        assert response.headers["content-type"] == expected, accept
        assert response.headers["vary"] == "Accept"
    refused = app.client.get(
        "/pypi/py/simple/demo/", headers={**app.headers(), "Accept": "application/xml"}
    )
    assert refused.status_code == 406


def test_json_api_and_yank(app: RegistryApp, tmp_path: Path) -> None:
    for version in ("1.0", "1.1", "2.0rc1"):
        assert upload(app, wheel(tmp_path, "demo", version)).status_code == 200
    project = app.client.get("/pypi/py/pypi/demo/json", headers=app.headers()).json()
    assert project["info"]["version"] == "1.1"  # the highest final release
    assert list(project["releases"]) == ["1.0", "1.1", "2.0rc1"]
    assert project["urls"][0]["digests"]["md5"]
    release = app.client.get("/pypi/py/pypi/demo/1.0/json", headers=app.headers()).json()
    assert release["info"]["version"] == "1.0" and "releases" not in release

    yanked = app.client.post(
        "/pypi/py/pypi/demo/1.1/yank", json={"reason": "broken on Windows"}, headers=app.headers()
    )
    assert yanked.status_code == 200, yanked.text
    assert yanked.json() == {
        "project": "demo",
        "version": "1.1",
        "yanked": True,
        "files": 1,
        "reason": "broken on Windows",
    }
    files = {f["filename"]: f for f in simple_json(app, "demo")["files"]}
    assert files["demo-1.1-py3-none-any.whl"]["yanked"] == "broken on Windows"
    html = app.client.get("/pypi/py/simple/demo/", headers=app.headers()).text
    assert 'data-yanked="broken on Windows"' in html
    project = app.client.get("/pypi/py/pypi/demo/json", headers=app.headers()).json()
    assert project["info"]["version"] == "1.0"
    assert project["releases"]["1.1"][0]["yanked_reason"] == "broken on Windows"

    unyanked = app.client.post("/pypi/py/pypi/demo/1.1/unyank", headers=app.headers())
    assert unyanked.json()["yanked"] is False
    files = {f["filename"]: f for f in simple_json(app, "demo")["files"]}
    assert files["demo-1.1-py3-none-any.whl"]["yanked"] is False

    lineage = app.client.get("/api/v1/lineage/py/demo/1.1", headers=app.headers()).json()
    tags = [s["facts"].get("tag") for s in lineage["steps"] if s["kind"] == "tagged"]
    assert tags == ["yanked", "yanked"]
    assert lineage["steps"][0]["kind"] == "pushed"


def test_identical_reupload_is_accepted_other_content_is_a_conflict(
    app: RegistryApp, tmp_path: Path
) -> None:
    path = wheel(tmp_path, "demo", "1.0")
    assert upload(app, path).status_code == 200
    assert upload(app, path).status_code == 200
    other = tmp_path / "other"
    other.mkdir()
    changed = wheel(other, "demo", "1.0", summary="different bytes")
    response = upload(app, changed)
    assert response.status_code == 409
    assert "File already exists" in response.text
    assert count(app, "SELECT count(*) FROM files WHERE filename LIKE '%.whl'") == 1


def test_denied_license_is_refused_with_the_reason_and_nothing_stored(
    app: RegistryApp, tmp_path: Path
) -> None:
    path = wheel(tmp_path, "copyleft", "1.0", license_expression="MIT OR GPL-3.0-or-later")
    response = upload(app, path)
    assert response.status_code == 403
    assert "license GPL-3.0-or-later is on the deny list" in response.text
    stored_nothing(app)
    denied = count(
        app,
        "SELECT count(*) FROM audit_events WHERE outcome = 'denied' AND action = 'push'",
    )
    assert denied == 1


def test_policy_input_carries_the_package_facts(app: RegistryApp, tmp_path: Path) -> None:
    path = wheel(
        tmp_path,
        "facts",
        "1.0",
        license_expression="Apache-2.0",
        requires=["idna>=2", "Requests[socks]; extra == 'net'"],
        requires_python=">=3.10",
    )
    assert upload(app, path).status_code == 200
    events = app.client.get(
        "/api/v1/audit/events", params={"action": "push"}, headers=app.headers()
    ).json()
    content = [e for e in events if e["details"].get("stage") == "content"][-1]
    artifact = content["details"]["input"]["artifact"]
    assert artifact["sbom"]["licenses"] == ["Apache-2.0"]
    # Declared dependencies, with what the supply-chain analysis catalogued (the package).
    assert artifact["sbom"]["purls"] == ["pkg:pypi/facts@1.0", "pkg:pypi/idna", "pkg:pypi/requests"]
    assert artifact["scan"]["status"] == "complete"
    package = artifact["package"]
    assert package["requires_python"] == ">=3.10"
    assert package["dependencies"] == ["idna>=2", 'Requests[socks]; extra == "net"']
    assert package["hashes"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    request_stage = [e for e in events if e["details"].get("stage") == "request"][-1]
    assert request_stage["resource"]["name"] == "facts"
    assert request_stage["resource"]["version"] == "1.0"


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _bad_uploads(tmp_path: Path) -> list[tuple[str, Path, dict[str, Any], str]]:
    """(case, file, form overrides, expected message fragment)."""
    meta = "demo-1.0.dist-info"
    good = {f"{meta}/METADATA": core_metadata("demo", "1.0").encode(), f"{meta}/WHEEL": b"x"}
    good[f"{meta}/RECORD"] = b""
    cases: list[tuple[str, Path, dict[str, Any], str]] = []
    directory = tmp_path / "bad"
    directory.mkdir()

    def spot(case: str) -> Path:
        sub = directory / case
        sub.mkdir()
        return sub

    cases.append(
        ("name mismatch", wheel(spot("a"), "demo", "1.0"), {"name": "other"}, "does not match")
    )
    cases.append(
        (
            "metadata disagrees with file name",
            wheel(spot("b"), "demo", "1.0", metadata=core_metadata("demo", "2.0")),
            {},
            "metadata says version 2.0",
        )
    )
    cases.append(
        (
            "metadata names another project",
            wheel(spot("c"), "demo", "1.0", metadata=core_metadata("evil", "1.0")),
            {},
            "names the project 'evil'",
        )
    )
    cases.append(
        (
            "invalid metadata",
            wheel(
                spot("d"),
                "demo",
                "1.0",
                metadata="Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Python: >>3\n",
            ),
            {},
            "not valid core metadata",
        )
    )
    not_zip = spot("e") / "demo-1.0-py3-none-any.whl"
    not_zip.write_bytes(b"PK\x03\x04 this is not a zip file" + os.urandom(64))
    cases.append(("not a zip", not_zip, {}, "not a valid zip file"))
    cases.append(
        (
            "dotdot member",
            _zip(spot("f") / "demo-1.0-py3-none-any.whl", {**good, "../evil.py": b"x"}),
            {},
            "contains '..'",
        )
    )
    cases.append(
        (
            "absolute member",
            _zip(spot("g") / "demo-1.0-py3-none-any.whl", {**good, "/etc/evil": b"x"}),
            {},
            "absolute path",
        )
    )
    cases.append(
        (
            "no METADATA",
            _zip(spot("h") / "demo-1.0-py3-none-any.whl", {f"{meta}/WHEEL": b"x"}),
            {},
            "no METADATA",
        )
    )
    cases.append(
        (
            "zip bomb by ratio",
            _zip(
                spot("i") / "demo-1.0-py3-none-any.whl",
                {**good, "demo/zeros.bin": bytes(50 * 1024 * 1024)},
            ),
            {},
            "zip bomb",
        )
    )
    cases.append(
        (
            "wrong sha256",
            wheel(spot("j"), "demo", "1.0"),
            {"sha256_digest": "0" * 64},
            "does not match the uploaded file",
        )
    )
    cases.append(("invalid version", wheel(spot("k"), "demo", "1.0"), {"version": "one"}, "valid"))
    cases.append(
        (
            "sdist with a member outside its directory",
            sdist(spot("l"), "demo", "1.0", members={"elsewhere/x.py": b""}),
            {},
            "under one directory",
        )
    )
    bad_gzip = spot("m") / "demo-1.0.tar.gz"
    bad_gzip.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(200))
    cases.append(("corrupt sdist", bad_gzip, {}, "not a valid gzip-compressed tar archive"))
    cases.append(
        ("unsupported file type", _zip(spot("n") / "demo-1.0.zip", good), {}, "neither a wheel")
    )
    return cases


def test_bad_uploads_are_refused_with_a_message_and_store_nothing(
    app: RegistryApp, tmp_path: Path
) -> None:
    for case, path, fields, message in _bad_uploads(tmp_path):
        response = upload(app, path, fields=fields)
        assert response.status_code == 400, (case, response.status_code, response.text)
        assert message in response.text, (case, response.text)
        assert response.headers["content-type"].startswith("text/plain")
    stored_nothing(app)


def test_overlapping_zip_members_are_a_bomb(app: RegistryApp, tmp_path: Path) -> None:
    path = wheel(tmp_path, "demo", "1.0")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        assert len(archive.infolist()) > 2
    # Point the second central directory entry at the first member's local header.
    second = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)
    data[second + 42 : second + 46] = (0).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    response = upload(app, path)
    assert response.status_code == 400
    assert "overlap" in response.text or "not a valid zip" in response.text
    stored_nothing(app)


def test_member_over_the_configured_size(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.packages.limits import archive_limits

    monkeypatch.setenv("ARBITER_PACKAGE_MAX_MEMBER_SIZE", "65536")
    archive_limits.cache_clear()
    try:
        app = make_registry_app(tmp_path, database_url)
        with app.client:
            app.create_repo("py", "pypi")
            big = wheel(tmp_path, "demo", "1.0", files={"demo/data.bin": os.urandom(70_000)})
            response = upload(app, big)
            assert response.status_code == 400
            assert "over the limit of 65536 (ARBITER_PACKAGE_MAX_MEMBER_SIZE)" in response.text
            small = tmp_path / "small"
            small.mkdir()
            ok = sdist(small, "demo", "1.0", members={"demo-1.0/data.bin": os.urandom(1000)})
            assert upload(app, ok).status_code == 200
    finally:
        archive_limits.cache_clear()


def test_tar_member_over_the_limit_is_refused_without_unpacking(
    app: RegistryApp, tmp_path: Path
) -> None:
    """A tar header that declares 1 TB is refused from the header alone."""
    path = tmp_path / "demo-1.0.tar.gz"
    pkg_info = core_metadata("demo", "1.0").encode()
    header = tarfile.TarInfo("demo-1.0/huge.bin")
    header.size = 10**12
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("demo-1.0/PKG-INFO")
        info.size = len(pkg_info)
        archive.addfile(info, io.BytesIO(pkg_info))
        archive.fileobj.write(header.tobuf())  # type: ignore[union-attr]
    response = upload(app, path)
    assert response.status_code == 400
    assert "huge.bin" in response.text
    stored_nothing(app)


def test_access_control_and_anonymous_challenge(app: RegistryApp, tmp_path: Path) -> None:
    assert upload(app, wheel(tmp_path, "demo", "1.0")).status_code == 200
    anonymous = app.client.get("/pypi/py/simple/demo/")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert "anonymous subjects may only pull from public repositories" in anonymous.text
    missing = app.client.get("/pypi/py/simple/nothing-here/", headers=app.headers())
    assert missing.status_code == 404
    app.create_repo("files", "generic")
    wrong = app.client.get("/pypi/files/simple/demo/", headers=app.headers())
    assert wrong.status_code == 400
    assert "not Python packages" in wrong.text


def test_downloads_are_counted_and_appear_in_lineage(app: RegistryApp, tmp_path: Path) -> None:
    path = wheel(tmp_path, "demo", "1.0")
    assert upload(app, path).status_code == 200
    url = f"/pypi/py/files/demo/1.0/{path.name}"
    for _ in range(2):
        assert app.client.get(url, headers=app.headers()).status_code == 200
    assert app.client.get(url + ".metadata", headers=app.headers()).status_code == 200
    assert count(app, "SELECT downloads FROM versions") == 2
    lineage = app.client.get("/api/v1/lineage/py/demo/1.0", headers=app.headers()).json()
    assert lineage["pulls"]["count"] == 2
    assert lineage["steps"][0]["kind"] == "pushed"


def test_escape_matches_the_file_names_build_backends_write() -> None:
    assert escape("Demo.Pkg-x") == "Demo_Pkg_x"


def test_pip_and_uv_are_sent_where_the_url_spells_the_reasons(
    app: RegistryApp, tmp_path: Path
) -> None:
    """pip and uv print a refusal's URL, never its body (see registry.web.denial_links)."""
    path = wheel(tmp_path, "guarded", "1.0")
    assert upload(app, path).status_code == 200
    created = app.client.post("/api/v1/users", json={"name": "outsider"}, headers=app.headers())
    assert created.status_code == 201, created.text
    token = app.client.post("/api/v1/users/outsider/tokens", json={}, headers=app.headers())
    outsider = token.json()["token"]
    url = f"/pypi/py/files/guarded/1.0/{path.name}"
    reason = "subject outsider holds no role that grants pull on repository py"

    as_pip = {**app.headers(outsider), "User-Agent": 'pip/24.2 {"python": "3.11"}'}
    redirected = app.client.get(url, headers=as_pip, follow_redirects=False)
    assert redirected.status_code == 303
    assert reason in redirected.text
    location = redirected.headers["location"]
    assert location.startswith("/pypi/py/-/denied/" + reason.replace(" ", "-") + "?proof=")
    page = app.client.get(location, headers={"User-Agent": "uv/0.9.0"})
    assert page.status_code == 403
    assert f"denied by policy: {reason}" in page.text

    forged = app.client.get(location.replace("outsider", "insider"))
    assert forged.status_code == 404
    as_curl = app.client.get(url, headers={**app.headers(outsider), "User-Agent": "curl/8.5"})
    assert as_curl.status_code == 403 and reason in as_curl.text
