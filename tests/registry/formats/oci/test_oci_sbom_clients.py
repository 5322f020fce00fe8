"""Image SBOMs end to end: real clients push a test image to ``arbiter serve`` on loopback.

The image is built here (an OCI layout of two gzip layers: a dpkg status
file, Python dist-info, ``node_modules`` and a JAR; then an apk database and
a whiteout). skopeo pushes it; the SBOM API answers by tag and by digest;
``oras discover`` lists the CycloneDX referrer and ``oras pull`` fetches it.
After the OSV records are imported the rescan finds the known
vulnerabilities, and a policy that refuses critical findings or failed scans
makes crane's next push fail with the registry's ``DENIED`` error.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from registry.cli.main import app as cli
from registry.formats.oci.analysis import SBOM_ARTIFACT_TYPE, SBOM_TITLE
from tests.registry.conftest import LIVE_ADMIN_TOKEN, LiveServer, ServerFactory
from tests.registry.formats.oci.oci_tools import (
    create_oci_repo,
    host_of,
    run,
    strict_policy,
    tool,
)
from tests.registry.supplychain.builders import image_layers, oci_layout, tar
from tests.registry.supplychain.conftest import osv_records  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow

EXPECTED = {  # purl prefixes (qualifiers follow) the image's SBOM must hold
    "deb": "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64",
    "apk": "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64",
    "pypi": "pkg:pypi/jinja2@2.10",
    "npm": "pkg:npm/lodash@4.17.15",
    "maven": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
}


@pytest.fixture
def server(server_factory: ServerFactory, tmp_path: Path) -> LiveServer:
    """A server whose push policy refuses failed scans and critical findings."""
    started = server_factory(
        env={
            "ARBITER_POLICY_DIR": str(strict_policy(tmp_path / "rego")),
            "ARBITER_SCAN_RESCAN_INTERVAL_S": "1",
        }
    )
    create_oci_repo(started.url, LIVE_ADMIN_TOKEN, "images")
    return started


def _get(server: LiveServer, path: str) -> httpx.Response:
    return httpx.get(server.url + path, headers=server.headers(), timeout=30)


def _findings(server: LiveServer, reference: str) -> dict[str, Any]:
    found = _get(server, f"/api/v1/findings/images/app/{reference}")
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


def test_an_image_pushed_by_skopeo_gets_an_sbom_referrer_and_findings(
    server: LiveServer,
    env: dict[str, str],
    tmp_path: Path,
    osv_records: Path,  # noqa: F811
) -> None:
    host = host_of(server.url)
    skopeo, oras, crane = tool("skopeo"), tool("oras"), tool("crane")
    layout = tmp_path / "layout"
    digest = oci_layout(layout, image_layers(), tag="v1")
    login = ["-u", "admin", "-p", LIVE_ADMIN_TOKEN, host]
    run([skopeo, "login", "--tls-verify=false", *login], env=env)
    run(
        [skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false",
         f"oci:{layout}:v1", f"docker://{host}/images/app:v1"],
        env=env,
    )  # fmt: skip

    # the SBOM, by tag and by digest: every package kind, with purls
    by_tag = _get(server, "/api/v1/sbom/images/app/v1")
    assert by_tag.status_code == 200, by_tag.text
    assert by_tag.headers["content-type"].startswith(SBOM_ARTIFACT_TYPE)
    document = by_tag.json()
    assert document["metadata"]["component"]["version"] == digest
    purls = [c["purl"] for c in document["components"] if c.get("purl")]
    for ecosystem, prefix in EXPECTED.items():
        assert any(p.startswith(prefix) for p in purls), (ecosystem, purls)
    assert _get(server, f"/api/v1/sbom/images/app/{digest}").content == by_tag.content
    xml = httpx.get(
        server.url + "/api/v1/sbom/images/app/v1",
        headers={**server.headers(), "Accept": "application/vnd.cyclonedx+xml"},
    )
    assert xml.status_code == 200 and b"<bom" in xml.content

    # the referrer: listed by oras discover, its layer is the SBOM
    run([oras, "login", "--plain-http", *login], env=env)
    discovered = json.loads(
        run(
            [oras, "discover", "--plain-http", "--format", "json", f"{host}/images/app:v1"],
            env=env,
        ).stdout
    )
    (referrer,) = discovered["referrers"]
    assert referrer["artifactType"] == SBOM_ARTIFACT_TYPE
    pulled = tmp_path / "pulled"
    run(
        [
            oras,
            "pull",
            "--plain-http",
            "-o",
            str(pulled),
            f"{host}/images/app@{referrer['digest']}",
        ],
        env=env,
    )
    assert (pulled / SBOM_TITLE).read_bytes() == by_tag.content
    assert _findings(server, "v1")["scan"]["status"] == "complete"

    # OSV data arrives: the rescan records the findings of the image's components
    runner = CliRunner()
    imported = runner.invoke(
        cli, ["vulndb", "import", str(osv_records), "--data", str(server.data)]
    )
    assert imported.exit_code == 0, imported.output
    deadline, found = time.monotonic() + 30, {}
    while time.monotonic() < deadline and not found.get("findings"):
        time.sleep(0.5)
        found = _findings(server, "v1")
    ids = {f["id"] for f in found["findings"]}
    assert {"GHSA-jfh8-c2jp-5v3q", "GHSA-35jh-r3h4-6jhm", "PYSEC-2019-217"} <= ids, ids
    assert found["counts"]["critical"] >= 1

    # a new image with the same packages: refused by the policy, with the OCI error
    run([crane, "auth", "login", host, "-u", "admin", "-p", LIVE_ADMIN_TOKEN], env=env)
    second = tmp_path / "second"
    second_digest = oci_layout(second, [*image_layers(), tar({"etc/motd": b"v2\n"})], tag="v2")
    refused = run(
        [crane, "push", "--insecure", str(second), f"{host}/images/app:v2"], env=env, check=False
    )
    assert refused.returncode != 0
    assert "DENIED" in refused.stderr and "critical vulnerability finding" in refused.stderr
    assert _get(server, f"/v2/images/app/manifests/{second_digest}").status_code == 404
    assert _get(server, "/api/v1/sbom/images/app/v2").status_code == 404


def test_a_failed_scan_is_refused_with_the_oci_error(
    server: LiveServer, env: dict[str, str], tmp_path: Path
) -> None:
    host = host_of(server.url)
    crane = tool("crane")
    run([crane, "auth", "login", host, "-u", "admin", "-p", LIVE_ADMIN_TOKEN], env=env)
    layout = tmp_path / "layout"
    digest = oci_layout(layout, [os.urandom(8192)], tag="v1")  # declared gzip, is not
    refused = run(
        [crane, "push", "--insecure", str(layout), f"{host}/images/app:v1"], env=env, check=False
    )
    assert refused.returncode != 0
    assert "DENIED" in refused.stderr and "is not gzip" in refused.stderr

    manifest = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    answer = httpx.put(
        f"{server.url}/v2/images/app/manifests/v1",
        content=manifest,
        headers={**server.headers(), "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert answer.status_code == 403
    (error,) = answer.json()["errors"]
    assert error["code"] == "DENIED"
    assert "content was not analysed (failed)" in error["message"]
