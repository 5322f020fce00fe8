"""Real OCI clients against a real ``arbiter serve``: skopeo, umoci, crane, oras and helm.

Every client logs in the way its users do (Docker token auth: the registry
answers 401 with a Bearer challenge, the client fetches a token with the
admin's user name and API token), and every image goes in and comes out with
the same digests.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest

from tests.registry.conftest import LIVE_ADMIN_TOKEN
from tests.registry.formats.oci.oci_tools import create_oci_repo, host_of, run, tool

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry(live_server):  # type: ignore[no-untyped-def]
    for name in ("images", "charts", "artifacts"):
        create_oci_repo(live_server.url, LIVE_ADMIN_TOKEN, name)
    create_oci_repo(live_server.url, LIVE_ADMIN_TOKEN, "public", labels={"public": "true"})
    return live_server


def _layout(directory: Path, tag: str, layers: int) -> Path:
    """An OCI image layout with ``layers`` layers, built by umoci the way a build tool would."""
    umoci = tool("umoci")
    layout = directory / "layout"
    run([umoci, "init", "--layout", str(layout)])
    run([umoci, "new", "--image", f"{layout}:{tag}"])
    for n in range(layers):
        bundle = directory / f"bundle-{n}"
        run([umoci, "unpack", "--rootless", "--image", f"{layout}:{tag}", str(bundle)])
        (bundle / "rootfs" / f"layer-{n}.bin").write_bytes(os.urandom(64 * 1024 + n))
        run([umoci, "repack", "--image", f"{layout}:{tag}", str(bundle)])
    return layout


def _index_digest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return str(index["manifests"][0]["digest"])


def _blob_files(layout: Path) -> dict[str, bytes]:
    root = layout / "blobs" / "sha256"
    return {path.name: path.read_bytes() for path in root.iterdir()}


def _image_blobs(layout: Path) -> dict[str, bytes]:
    """The tagged image's manifest, config and layers (umoci keeps older ones beside them)."""
    files = _blob_files(layout)
    top = _index_digest(layout)[7:]
    manifest = json.loads(files[top])
    names = {top} | {d["digest"][7:] for d in (*manifest["layers"], manifest["config"])}
    return {name: files[name] for name in names}


def test_skopeo_copies_a_multi_layer_image_in_and_out(registry, env, tmp_path) -> None:
    skopeo = tool("skopeo")
    host = host_of(registry.url)
    layout = _layout(tmp_path, "v1", layers=3)
    manifest = json.loads((layout / "blobs" / "sha256" / _index_digest(layout)[7:]).read_bytes())
    assert len(manifest["layers"]) == 3
    run(
        [skopeo, "login", "--tls-verify=false", "-u", "admin", "-p", LIVE_ADMIN_TOKEN, host],
        env=env,
    )
    target = f"docker://{host}/images/skopeo/app:v1"
    policy = ["--insecure-policy"]
    run([skopeo, *policy, "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", target], env=env)
    back = tmp_path / "back"
    run([skopeo, *policy, "copy", "--src-tls-verify=false", target, f"oci:{back}:v1"], env=env)
    assert _index_digest(back) == _index_digest(layout)
    assert _image_blobs(back) == _image_blobs(layout)
    inspected = run([skopeo, "inspect", "--tls-verify=false", target], env=env).stdout
    assert json.loads(inspected)["Digest"] == _index_digest(layout)


def test_crane_push_pull_copy_tag_ls_delete(registry, env, tmp_path) -> None:
    crane = tool("crane")
    host = host_of(registry.url)
    insecure = "--insecure"
    run([crane, "auth", "login", host, "-u", "admin", "-p", LIVE_ADMIN_TOKEN], env=env)
    layout = _layout(tmp_path, "v1", layers=2)
    digest = _index_digest(layout)
    source, copy = f"{host}/images/crane/app", f"{host}/images/crane/copy"
    run([crane, "push", insecure, str(layout), f"{source}:v1"], env=env)
    assert run([crane, "digest", insecure, f"{source}:v1"], env=env).stdout.strip() == digest
    run([crane, "copy", insecure, f"{source}:v1", f"{copy}:v1"], env=env)
    run([crane, "tag", insecure, f"{copy}:v1", "stable"], env=env)
    assert run([crane, "ls", insecure, copy], env=env).stdout.split() == ["stable", "v1"]
    pulled = tmp_path / "pulled"
    run([crane, "pull", insecure, "--format", "oci", f"{copy}:stable", str(pulled)], env=env)
    assert _index_digest(pulled) == digest
    assert _image_blobs(pulled) == _image_blobs(layout)
    catalog = run([crane, "catalog", insecure, host], env=env).stdout.split()
    assert {"images/crane/app", "images/crane/copy"} <= set(catalog)
    run([crane, "delete", insecure, f"{copy}@{digest}"], env=env)
    gone = run([crane, "manifest", insecure, f"{copy}:v1"], env=env, check=False)
    assert gone.returncode != 0 and "MANIFEST_UNKNOWN" in gone.stderr
    assert run([crane, "digest", insecure, f"{source}:v1"], env=env).stdout.strip() == digest


def test_oras_attaches_an_sbom_found_through_the_referrers_api(registry, env, tmp_path) -> None:
    oras = tool("oras")
    host = host_of(registry.url)
    run([oras, "login", "--plain-http", host, "-u", "admin", "-p", LIVE_ADMIN_TOKEN], env=env)
    (tmp_path / "tool.bin").write_bytes(os.urandom(4096))
    sbom = {"spdxVersion": "SPDX-2.3", "name": "tool", "packages": []}
    (tmp_path / "sbom.spdx.json").write_text(json.dumps(sbom))
    ref = f"{host}/artifacts/tool:1.0"
    pushed = run(
        [oras, "push", "--plain-http", "--artifact-type", "application/vnd.example.tool",
         ref, "tool.bin:application/octet-stream"],
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert "Digest:" in pushed.stdout
    run(
        [oras, "attach", "--plain-http", "--artifact-type", "application/spdx+json",
         ref, "sbom.spdx.json:application/spdx+json"],
        env=env, cwd=tmp_path,
    )  # fmt: skip
    found = json.loads(
        run([oras, "discover", "--plain-http", "--format", "json", ref], env=env).stdout
    )
    assert [r["artifactType"] for r in found["referrers"]] == ["application/spdx+json"]

    subject = found["digest"]
    headers = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
    listed = httpx.get(
        f"{registry.url}/v2/artifacts/tool/referrers/{subject}",
        params={"artifactType": "application/spdx+json"},
        headers=headers,
    )
    assert listed.headers["content-type"] == "application/vnd.oci.image.index.v1+json"
    assert listed.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in listed.json()["manifests"]] == [found["referrers"][0]["digest"]]
    pulled = tmp_path / "pulled"
    sbom_ref = f"{host}/artifacts/tool@{found['referrers'][0]['digest']}"
    run([oras, "pull", "--plain-http", "-o", str(pulled), sbom_ref], env=env)
    assert json.loads((pulled / "sbom.spdx.json").read_text()) == sbom


def test_helm_pushes_and_pulls_a_chart(registry, env, tmp_path) -> None:
    helm = tool("helm")
    host = host_of(registry.url)
    run([helm, "create", "demo"], env=env, cwd=tmp_path)
    run([helm, "package", "demo"], env=env, cwd=tmp_path)
    chart = tmp_path / "demo-0.1.0.tgz"
    run(
        [helm, "registry", "login", host, "--insecure",
         "--username", "admin", "--password", LIVE_ADMIN_TOKEN],
        env=env,
    )  # fmt: skip
    pushed = run([helm, "push", str(chart), f"oci://{host}/charts", "--plain-http"], env=env)
    assert "Pushed:" in pushed.stderr + pushed.stdout
    out = tmp_path / "out"
    out.mkdir()
    run(
        [helm, "pull", f"oci://{host}/charts/demo", "--version", "0.1.0", "--plain-http",
         "-d", str(out)],
        env=env,
    )  # fmt: skip
    assert (out / "demo-0.1.0.tgz").read_bytes() == chart.read_bytes()
    manifest = httpx.get(
        f"{registry.url}/v2/charts/demo/manifests/0.1.0",
        headers={"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"},
    ).json()
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json"
    assert (
        manifest["layers"][0]["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    )
    assert (
        manifest["layers"][0]["digest"]
        == "sha256:" + hashlib.sha256(chart.read_bytes()).hexdigest()
    )


def test_anonymous_pull_of_a_public_repository_and_denials_with_reasons(
    registry, env, tmp_path
) -> None:
    crane = tool("crane")
    host = host_of(registry.url)
    layout = _layout(tmp_path, "v1", layers=1)
    admin_env = {**env, "DOCKER_CONFIG": str(tmp_path / "admin-docker")}
    run([crane, "auth", "login", host, "-u", "admin", "-p", LIVE_ADMIN_TOKEN], env=admin_env)
    run([crane, "push", "--insecure", str(layout), f"{host}/public/app:v1"], env=admin_env)
    run([crane, "push", "--insecure", str(layout), f"{host}/images/private:v1"], env=admin_env)

    # no credentials at all: an anonymous token, enough for the public repository
    anonymous = run([crane, "digest", "--insecure", f"{host}/public/app:v1"], env=env)
    assert anonymous.stdout.strip() == _index_digest(layout)
    private = run(
        [crane, "digest", "--insecure", f"{host}/images/private:v1"], env=env, check=False
    )
    assert private.returncode != 0 and "UNAUTHORIZED" in private.stderr
    assert "anonymous subjects may only pull from public repositories" in private.stderr
    pushed = run(
        [crane, "push", "--insecure", str(layout), f"{host}/public/app:v2"], env=env, check=False
    )
    assert pushed.returncode != 0 and "UNAUTHORIZED" in pushed.stderr

    # a signed-in user without a role: DENIED, and the policy's reason reaches the CLI
    headers = {"Authorization": f"Bearer {LIVE_ADMIN_TOKEN}"}
    httpx.post(f"{registry.url}/api/v1/users", json={"name": "visitor"}, headers=headers)
    token = httpx.post(
        f"{registry.url}/api/v1/users/visitor/tokens", json={}, headers=headers
    ).json()["token"]
    visitor_env = {**env, "DOCKER_CONFIG": str(tmp_path / "visitor-docker")}
    run([crane, "auth", "login", host, "-u", "visitor", "-p", token], env=visitor_env)
    denied = run(
        [crane, "manifest", "--insecure", f"{host}/images/private:v1"], env=visitor_env, check=False
    )
    assert denied.returncode != 0
    assert "DENIED" in denied.stderr
    assert "subject visitor holds no role that grants pull on repository images" in denied.stderr
