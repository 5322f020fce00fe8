"""The OCI distribution conformance suite against a real ``arbiter serve``.

The suite (``github.com/opencontainers/distribution-spec/conformance``, built
with ``go test -c`` by ``scripts/install-tools.sh``) pushes, pulls, lists,
discovers and deletes every kind of content it knows, through Docker token
auth with the admin's user name and API token. All four workflows must pass;
beyond the stable defaults the optional APIs are switched on too (upload
cancel, tag parameters, required digest headers), and sha512 content is
tested. The only data set left off is "sparse" manifests, which reference
content that was never pushed: Arbiter refuses those on purpose
(MANIFEST_BLOB_UNKNOWN). ``report.html``, ``junit.xml`` and ``results.yaml``
are kept in ``test-artifacts/oci-conformance`` (and, for the run with the
download listener on, in its ``download-listener`` folder).
"""

from __future__ import annotations

import re

import pytest

from tests.registry.conftest import LIVE_ADMIN_TOKEN, free_port
from tests.registry.formats.oci.oci_tools import REPO_ROOT, create_oci_repo, run, tool

pytestmark = pytest.mark.slow

REPORT_DIR = REPO_ROOT / "test-artifacts" / "oci-conformance"
WORKFLOWS = {
    "pull": [
        "Manifest get by digest",
        "Manifest get by tag",
        "Manifest head by digest",
        "Manifest head by tag",
        "Blob get",
        "Blob get range",
        "Blob head",
    ],
    "push": [
        "Blob push",
        "Blob post only",
        "Blob post put",
        "Blob chunked",
        "Blob streaming",
        "Blob mount",
        "Blob anonymous mount",
        "Blob upload cancel",
        "Manifest put by digest",
        "Manifest put by tag",
        "Manifest put with tag params",
        "Manifest put with subject",
    ],
    "content discovery": ["Tag listing", "Referrers"],
    "content management": [
        "Tag delete",
        "Tag delete atomic",
        "Manifest delete",
        "Manifest delete atomic",
        "Blob delete",
        "Blob delete atomic",
    ],
}
LEFT_OFF = {"Sparse Manifests"}


def _section(output: str, title: str) -> dict[str, str]:
    """``  Name.....:   Status`` lines under a heading of the suite's summary."""
    block = output.split(f"{title}:\n", 1)[1].split("\n\n", 1)[0]
    return dict(re.findall(r"^  (.+?)\.*:\s+(\w+)$", block, re.M))


@pytest.mark.parametrize("downloads", [False, True], ids=["blobs-inline", "download-listener"])
def test_conformance_suite_passes_all_four_workflows(server_factory, tmp_path, downloads) -> None:
    """Twice: blobs sent by the app server, and blob GETs redirected to the download listener."""
    suite = tool("oci-conformance.test")
    listener = {"ARBITER_DOWNLOAD_PORT": str(free_port()), "ARBITER_DOWNLOAD_MIN_SIZE": "0"}
    server = server_factory(env=listener if downloads else None)
    create_oci_repo(server.url, LIVE_ADMIN_TOKEN, "conformance")
    report_dir = REPORT_DIR / "download-listener" if downloads else REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "OCI_ROOT_URL": server.url,
        "OCI_NAMESPACE": "conformance/repo1",
        "OCI_CROSSMOUNT_NAMESPACE": "conformance/repo2",
        "OCI_USERNAME": "admin",
        "OCI_PASSWORD": LIVE_ADMIN_TOKEN,
        "OCI_TEST_PULL": "1",
        "OCI_TEST_PUSH": "1",
        "OCI_TEST_CONTENT_DISCOVERY": "1",
        "OCI_TEST_CONTENT_MANAGEMENT": "1",
        "OCI_REPORT_DIR": str(report_dir),  # the legacy suite's name
        "OCI_RESULTS_DIR": str(report_dir),  # this suite's name
        "OCI_API_BLOBS_UPLOAD_CANCEL": "true",
        "OCI_API_MANIFESTS_TAG_PARAM": "true",
        "OCI_API_BLOBS_DIGEST_HEADER": "true",
        "OCI_API_MANIFESTS_DIGEST_HEADER": "true",
    }
    done = run([suite], env=env, cwd=tmp_path, timeout=600, check=False)
    output = done.stdout + done.stderr
    summary = re.search(r"OCI Conformance Result: (\w+)", output)
    assert summary is not None, output[-4000:]
    counts = dict(re.findall(r"^  (Pass|FAIL|Error|Skip|Disabled)\.+:\s+(\d+)$", output, re.M))
    print(f"conformance: {summary[1]} {counts}; report in {report_dir}")
    assert done.returncode == 0 and summary[1] == "Pass", output[-8000:]
    assert counts["FAIL"] == "0" and counts["Error"] == "0" and int(counts["Pass"]) > 900

    apis, data = _section(output, "API conformance"), _section(output, "Data conformance")
    for workflow, names in WORKFLOWS.items():
        statuses = {api: apis.get(api) for api in names}
        assert set(statuses.values()) == {"Pass"}, f"{workflow}: {statuses}"
    tested = {name: status for name, status in data.items() if name not in LEFT_OFF}
    assert len(tested) > 20 and set(tested.values()) == {"Pass"}, data
    assert (report_dir / "report.html").is_file() and (report_dir / "junit.xml").is_file()
