"""Supply chain: SBOM generation speed, vulnerability matching speed, and Syft as the anchor.

Measured (targets from issue R6):

* SBOM of a 200 MiB archive holding 500 packages (300 Python distributions,
  150 npm packages under ``node_modules``, 50 Debian packages in a dpkg
  status file, incompressible file contents, gzip) -- the whole analysis:
  walk, hash (SHA-1 + SHA-256 of every file), catalog, CycloneDX 1.6 model,
  JSON output, schema validation. Target <= 10 s.
* Matching 10,000 components against 200,000 OSV records: the real records
  of ``../shared/osv`` (PyPI, npm, Go, Maven) replicated under new package
  names up to 200,000, half the components named by some record, versions
  spread inside and outside the ranges. Target <= 5 s (index build shown
  apart: the registry builds it per scan only for the packages an SBOM names).
* Syft v1.57.1, when ``syft`` is on PATH or in ``~/go/bin`` (``go install
  github.com/anchore/syft/cmd/syft@v1.57.1``): its time on the same
  archive, and per ecosystem the precision and recall of our component set
  against Syft's on the archive, on root file systems built here (dpkg
  status, apk database, Python dist-info, node_modules, a JAR) and on the
  test image of the OCI tests (two gzip layers with a whiteout, as an OCI
  image layout: ``syft scan oci-dir:PATH``; ours: the push analysis,
  layers applied in order).

Knobs: ``ARBITER_BENCH_SBOM_MIB`` (200), ``ARBITER_BENCH_SBOM_PACKAGES`` (500),
``ARBITER_BENCH_OSV_RECORDS`` (200000), ``ARBITER_BENCH_COMPONENTS`` (10000).
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from registry.supplychain import scan
from registry.supplychain.limits import ScanLimits
from registry.supplychain.sbom.analyse import Layer, analyse_image
from registry.supplychain.vulndb import records
from registry.supplychain.vulndb.index import AdvisoryIndex
from registry.supplychain.vulndb.matcher import match

MiB = 1024 * 1024
SBOM_MIB = int(os.environ.get("ARBITER_BENCH_SBOM_MIB", "200"))
SBOM_PACKAGES = int(os.environ.get("ARBITER_BENCH_SBOM_PACKAGES", "500"))
OSV_RECORDS = int(os.environ.get("ARBITER_BENCH_OSV_RECORDS", "200000"))
COMPONENTS = int(os.environ.get("ARBITER_BENCH_COMPONENTS", "10000"))
OSV_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "osv"
SYFT_OUTPUT = ("-o", "cyclonedx-json", "-q")
SBOM_TARGET_S = 10.0
MATCH_TARGET_S = 5.0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="arbiter-bench-sc-") as scratch:
        work = Path(scratch)
        archive = work / "bench-archive.tar.gz"
        expected = build_archive(archive, SBOM_MIB * MiB, SBOM_PACKAGES)
        ours_s, result = sbom_speed(archive)
        print(f"\nSBOM of {archive.stat().st_size / MiB:.0f} MiB archive, {SBOM_PACKAGES} packages")
        print(
            f"  arbiter: {ours_s:6.2f} s (target <= {SBOM_TARGET_S:g} s) "
            f"{'PASS' if ours_s <= SBOM_TARGET_S else 'FAIL'}; status {result.status}, "
            f"{result.summary.components} components, {result.summary.files} files, "
            f"SBOM {len(result.document or b'') / MiB:.1f} MiB"
        )
        found = {p for p in result.summary.purls if "@" in p}
        print(f"  packages found: {len(found & expected)}/{len(expected)} expected")
        matching_speed()
        syft = find_syft()
        if syft is None:
            print(
                "\nSyft: not installed (go install github.com/anchore/syft/cmd/syft@v1.57.1); "
                "no comparison"
            )
            return
        compare_with_syft(syft, work, archive, ours_s)


# --- SBOM speed ---------------------------------------------------------------------------


def build_archive(path: Path, size: int, packages: int) -> set[str]:
    """A gzip tar of ``size`` bytes (incompressible) holding ``packages`` packages."""
    rng = random.Random(6)
    python, npm = int(packages * 0.6), int(packages * 0.3)
    debian = packages - python - npm
    files_per_package = 3
    pieces = (python + npm) * (files_per_package - 1) + debian * files_per_package
    chunk = max(size // pieces, 1)
    expected: set[str] = set()
    with tarfile.open(path, "w:gz", compresslevel=1) as out:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))

        for i in range(python):
            name, version = f"bench-py-{i}", f"1.{i % 50}.{rng.randint(0, 9)}"
            base = f"usr/lib/python3/site-packages/bench_py_{i}"
            meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nLicense: MIT\n"
            add(
                f"usr/lib/python3/site-packages/bench_py_{i}-{version}.dist-info/METADATA",
                meta.encode(),
            )
            for j in range(files_per_package - 1):
                add(f"{base}/module_{j}.py", os.urandom(chunk))
            expected.add(f"pkg:pypi/{name}@{version}")
        for i in range(npm):
            name, version = f"bench-js-{i}", f"2.{i % 30}.0"
            manifest = json.dumps({"name": name, "version": version, "license": "ISC"})
            add(f"app/node_modules/{name}/package.json", manifest.encode())
            for j in range(files_per_package - 1):
                add(f"app/node_modules/{name}/lib/file_{j}.js", os.urandom(chunk))
            expected.add(f"pkg:npm/{name}@{version}")
        status = []
        for i in range(debian):
            status.append(
                f"Package: bench-deb-{i}\nStatus: install ok installed\nArchitecture: amd64\n"
                f"Version: 3.{i}-1\n"
            )
            add(f"usr/share/bench-deb-{i}/data.bin", os.urandom(chunk * files_per_package))
        add("var/lib/dpkg/status", "\n".join(status).encode())
        add("etc/os-release", b'ID=debian\nVERSION_ID="12"\n')
    expected.update(
        f"pkg:deb/debian/bench-deb-{i}@3.{i}-1?arch=amd64&distro=debian-12" for i in range(debian)
    )
    return expected


def sbom_speed(archive: Path) -> tuple[float, scan.Result]:
    target = scan.Target(
        "bench", "generic", "bench", "1", archive.name, "sha256:" + "0" * 64, archive.stat().st_size
    )
    with archive.open("rb") as file:  # warm the page cache and the imports
        scan.run(io.BytesIO(b"warm"), target, limits=ScanLimits(), db=None)
        file.read()
    with archive.open("rb") as file:
        started = time.perf_counter()
        result = scan.run(file, target, limits=ScanLimits(), db=None)
        return time.perf_counter() - started, result


# --- matching speed -----------------------------------------------------------------------


def load_real_records() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name in ("PyPI.zip", "npm.zip", "Go.zip", "Maven.zip"):
        path = OSV_DIR / name
        if not path.exists():
            continue
        with zipfile.ZipFile(path) as archive:
            found.extend(
                json.loads(archive.read(n)) for n in archive.namelist() if n.endswith(".json")
            )
    return found


def matching_speed() -> None:
    real = load_real_records()
    if not real:
        print(f"\nmatching: skipped, OSV data not found in {OSV_DIR}")
        return
    rng = random.Random(7)
    started = time.perf_counter()
    advisories: list[Any] = []
    copies = -(-OSV_RECORDS // len(real))
    for copy in range(copies):
        for record in real:
            if len(advisories) >= OSV_RECORDS:
                break
            if copy:
                record = _renamed(record, copy)
            advisories.append(records.parse(record))
    parsed_s = time.perf_counter() - started
    started = time.perf_counter()
    index = AdvisoryIndex.from_advisories(advisories)
    index_s = time.perf_counter() - started
    purls = _components(advisories, rng)
    # The 200,000 parsed records stay alive only for this benchmark (a scan
    # loads just the packages its SBOM names): keep the collector from
    # walking them again and again while the matches are made.
    gc.collect()
    gc.freeze()
    started = time.perf_counter()
    matches = match(index, purls)
    match_s = time.perf_counter() - started
    gc.unfreeze()
    print(
        f"\nmatching {len(purls)} components against {len(advisories)} OSV records "
        f"({len(index)} affected entries)"
    )
    print(f"  parse records {parsed_s:.1f} s, build index {index_s:.1f} s (not part of the target)")
    print(
        f"  arbiter: {match_s:6.2f} s (target <= {MATCH_TARGET_S:g} s) "
        f"{'PASS' if match_s <= MATCH_TARGET_S else 'FAIL'}; {len(matches)} findings"
    )


def _renamed(record: dict[str, Any], copy: int) -> dict[str, Any]:
    clone: dict[str, Any] = json.loads(json.dumps(record))
    clone["id"] = f"{record['id']}-{copy}"
    for affected in clone.get("affected", []):
        package = affected.get("package", {})
        if "name" in package:
            package["name"] = f"{package['name']}-{copy}"
    return clone


_PURL_TYPES = {"PyPI": "pypi", "npm": "npm", "Go": "golang", "Maven": "maven"}


def _components(advisories: list[records.Advisory], rng: random.Random) -> list[str]:
    named = [
        (a, affected)
        for a in advisories
        for affected in a.affected
        if affected.ecosystem in _PURL_TYPES
    ]
    purls: list[str] = []
    for i in range(COMPONENTS):
        if i % 2 == 0 and named:
            _advisory, affected = rng.choice(named)
            versions = affected.versions or [
                e.get("fixed") or e.get("introduced") or "1.0.0"
                for r in affected.ranges
                for e in r.get("events", [])
            ]
            version = rng.choice(versions or ["1.0.0"])
            if version == "0":
                version = "0.0.1"
            purls.append(_purl(affected.ecosystem, affected.name, version))
        else:
            purls.append(f"pkg:pypi/unrelated-{i}@1.{i % 10}.0")
    return purls


def _purl(ecosystem: str, name: str, version: str) -> str:
    kind = _PURL_TYPES[ecosystem]
    if kind == "maven" and ":" in name:
        group, artifact = name.split(":", 1)
        return f"pkg:maven/{group}/{artifact}@{version}"
    if kind == "golang":
        return f"pkg:golang/{name}@v{version}"
    if kind == "npm" and name.startswith("@"):
        return f"pkg:npm/%40{name[1:]}@{version}"
    return f"pkg:{kind}/{name}@{version}"


# --- Syft ---------------------------------------------------------------------------------


def find_syft() -> str | None:
    """``syft`` on PATH, else where scripts/install-tools.sh or ``go install`` put it."""
    found = shutil.which("syft")
    if found:
        return found
    tools = Path(os.environ.get("ARBITER_TOOLS", Path.home() / ".cache" / "arbiter-tools"))
    for candidate in (tools / "bin" / "syft", Path.home() / "go" / "bin" / "syft"):
        if candidate.exists():
            return str(candidate)
    return None


def compare_with_syft(syft: str, work: Path, archive: Path, ours_s: float) -> None:
    root = work / "extracted"
    root.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    started = time.perf_counter()
    syft_doc = _syft(syft, f"dir:{root}")
    syft_s = time.perf_counter() - started
    print(
        f"\nSyft on the same tree (extracted): {syft_s:.2f} s; "
        f"arbiter {ours_s:.2f} s on the archive"
    )
    _accuracy("bench archive", _archive_purls(archive), syft_doc)
    # the test images
    from tests.registry.supplychain.builders import image_layers, oci_layout, rootfs

    for distro in ("debian", "alpine"):
        image = work / f"{distro}.tar.gz"
        image.write_bytes(rootfs(distro))
        tree = work / distro
        tree.mkdir()
        with tarfile.open(image) as tar:
            tar.extractall(tree, filter="data")
        _accuracy(f"{distro} root file system", _archive_purls(image), _syft(syft, f"dir:{tree}"))
    layout = work / "oci-image"
    digest = oci_layout(layout, image_layers())
    _accuracy(
        "OCI test image (oci-dir, 2 layers, a whiteout)",
        _image_purls(layout, digest),
        _syft(syft, f"oci-dir:{layout}"),
    )


def _syft(syft: str, source: str) -> dict[str, Any]:
    out = subprocess.run(
        # The image catalogers: what Syft runs on a container image's file system
        # (installed packages: dpkg, apk, dist-info, node_modules, JARs).
        [
            syft,
            "scan",
            source,
            "--override-default-catalogers",
            "image",
            "-o",
            "cyclonedx-json",
            "-q",
        ],
        check=True,
        capture_output=True,
        timeout=600,
        env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"},
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _key(purl: str) -> tuple[str, str, str] | None:
    from packageurl import PackageURL

    try:
        parsed = PackageURL.from_string(purl)
    except ValueError:
        return None
    name = (
        f"{parsed.namespace}/{parsed.name}"
        if parsed.namespace and parsed.type in ("npm", "maven")
        else parsed.name
    )
    return parsed.type, name.lower().replace("_", "-"), parsed.version or ""


def _archive_purls(archive: Path) -> tuple[str, ...]:
    """Our purls for an archive, as a generic push analyses it."""
    target = scan.Target(
        "bench", "generic", "b", "1", archive.name, "sha256:" + "0" * 64, archive.stat().st_size
    )
    with archive.open("rb") as file:
        return scan.run(file, target, limits=ScanLimits(), db=None).summary.purls


def _image_purls(layout: Path, digest: str) -> tuple[str, ...]:
    """Our purls for an image layout, as an OCI manifest push analyses it."""
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / digest.removeprefix("sha256:")).read_bytes())
    target = scan.Target("bench", "oci", "app", digest, "manifest.json", digest, 0, container=True)
    with contextlib.ExitStack() as opened:
        layers = [
            Layer(
                opened.enter_context((blobs / d["digest"].removeprefix("sha256:")).open("rb")),
                d["mediaType"],
                d["digest"],
                d["size"],
            )
            for d in manifest["layers"]
        ]
        result = scan.run_with(
            lambda: analyse_image(layers, name="app", limits=ScanLimits()), target, db=None
        )
    return result.summary.purls


def _accuracy(label: str, ours: tuple[str, ...], syft_doc: dict[str, Any]) -> None:
    mine: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for purl in ours:
        key = _key(purl)
        if key and key[2]:
            mine[key[0]].add(key)
    theirs: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    unnamed = 0
    for component in syft_doc.get("components", []):
        key = _key(component.get("purl", "")) if component.get("purl") else _os_key(component)
        if key and key[2]:
            theirs[key[0]].add(key)
            unnamed += not component.get("purl")
    print(f"\naccuracy against Syft: {label}")
    print(f"  {'ecosystem':<10}{'ours':>6}{'syft':>6}{'both':>6}{'precision':>11}{'recall':>8}")
    for ecosystem in sorted(set(mine) | set(theirs)):
        a, b = mine[ecosystem], theirs[ecosystem]
        both = len(a & b)
        precision = both / len(a) if a else float("nan")
        recall = both / len(b) if b else float("nan")
        print(f"  {ecosystem:<10}{len(a):>6}{len(b):>6}{both:>6}{precision:>11.1%}{recall:>8.1%}")
        for missing in sorted(b - a)[:5]:
            print(f"    only syft: {missing}")
        for extra in sorted(a - b)[:5]:
            print(f"    only ours: {extra}")
    if unnamed:
        print(
            f"  ({unnamed} OS packages Syft lists without a purl, compared by name and version: "
            "with no os-release Syft cannot name the distribution, so it writes no deb/apk "
            "purl; ours names the vendor after the package database, debian or alpine)"
        )


def _os_key(component: dict[str, Any]) -> tuple[str, str, str] | None:
    """A dpkg or apk package Syft found but gave no purl (no os-release to name the distro)."""
    properties = {p.get("name"): p.get("value") for p in component.get("properties", [])}
    kind = properties.get("syft:package:type")
    if kind not in ("deb", "apk"):
        return None
    return str(kind), str(component.get("name", "")).lower(), str(component.get("version", ""))


if __name__ == "__main__":
    main()
