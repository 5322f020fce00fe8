"""Archives built in the tests: wheels, tars, JARs, npm manifests, root file systems."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path


def metadata(
    name: str, version: str, *, license: str = "MIT", requires: tuple[str, ...] = ()
) -> str:
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {name}",
        f"Version: {version}",
        f"License-Expression: {license}",
        *(f"Requires-Dist: {r}" for r in requires),
    ]
    return "\n".join(lines) + "\n"


def wheel(
    name: str = "demo",
    version: str = "1.0",
    *,
    license: str = "MIT",
    requires: tuple[str, ...] = (),
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}/__init__.py", "VALUE = 1\n")
        archive.writestr(
            f"{name}-{version}.dist-info/METADATA",
            metadata(name, version, license=license, requires=requires),
        )
        archive.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return buffer.getvalue()


def tar(
    members: dict[str, bytes],
    *,
    mode: str = "w:gz",
    links: dict[str, tuple[bytes, str]] | None = None,
) -> bytes:
    """A tar with regular files ``members`` and ``links`` = {name: (type, target)}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def jar(
    group: str, artifact: str, version: str, *, nested: dict[str, bytes] | None = None
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nImplementation-Version: {version}\n"
        )
        archive.writestr(
            f"META-INF/maven/{group}/{artifact}/pom.properties",
            f"groupId={group}\nartifactId={artifact}\nversion={version}\n",
        )
        archive.writestr("com/example/Main.class", b"\xca\xfe\xba\xbe")
        for name, data in (nested or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npm_package(
    name: str, version: str, *, license: str = "MIT", dependencies: dict[str, str] | None = None
) -> bytes:
    return json.dumps(
        {"name": name, "version": version, "license": license, "dependencies": dependencies or {}}
    ).encode()


DPKG_STATUS = b"""Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Depends: libgcc-s1

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12
Version: 12.2.0-14

Package: removed-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

"""

APK_INSTALLED = b"""C:Q1Nn4+OHR8xaEjqpypLEJ8MUh5VJU=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
o:musl
p:so:libc.musl-x86_64.so.1=1

C:Q1lw+y3V3h8vK3tJHh5eJGuOcSI4M=
P:busybox
V:1.36.1-r5
A:x86_64
L:GPL-2.0-only
o:busybox
D:so:libc.musl-x86_64.so.1

"""


def _language_packages() -> dict[str, bytes]:
    """Python dist-info, ``node_modules`` and a JAR, as a root file system holds them."""
    return {
        "usr/lib/python3/dist-packages/jinja2-2.10.dist-info/METADATA": metadata(
            "Jinja2", "2.10", license="BSD-3-Clause", requires=("MarkupSafe>=0.23",)
        ).encode(),
        "usr/lib/python3/dist-packages/MarkupSafe-2.1.3.dist-info/METADATA": metadata(
            "MarkupSafe", "2.1.3", license="BSD-3-Clause"
        ).encode(),
        "app/node_modules/lodash/package.json": npm_package("lodash", "4.17.15"),
        "app/node_modules/@types/node/package.json": npm_package("@types/node", "20.1.0"),
        "opt/app/lib/log4j-core-2.14.1.jar": jar(
            "org.apache.logging.log4j", "log4j-core", "2.14.1"
        ),
    }


def rootfs(distro: str = "debian") -> bytes:
    """A root file system image layer with OS, Python, npm and Java packages."""
    members = {
        "etc/os-release": b'ID=debian\nVERSION_ID="12"\n'
        if distro == "debian"
        else b"ID=alpine\nVERSION_ID=3.19.1\n",
        **_language_packages(),
    }
    if distro == "debian":
        members["var/lib/dpkg/status"] = DPKG_STATUS
    else:
        members["lib/apk/db/installed"] = APK_INSTALLED
    return tar(members)


def image_layers() -> list[bytes]:
    """Two gzip layers of a test image: every package kind an image analysis reads.

    The base layer holds a dpkg status file, Python dist-info, ``node_modules``
    and a JAR; the top layer adds an apk database and whites out one Python
    distribution of the base. No os-release, so each OS package keeps its own
    vendor (``debian`` for dpkg, ``alpine`` for apk).
    """
    base = {
        "var/lib/dpkg/status": DPKG_STATUS,
        **_language_packages(),
        "usr/lib/python3/dist-packages/removed-1.0.dist-info/METADATA": metadata(
            "removed", "1.0"
        ).encode(),
    }
    top = {
        "lib/apk/db/installed": APK_INSTALLED,
        "usr/lib/python3/dist-packages/.wh.removed-1.0.dist-info": b"",
    }
    return [tar(base), tar(top)]


OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def oci_layout(path: Path, layers: list[bytes], tag: str = "v1") -> str:
    """Write an OCI image layout of ``layers`` at ``path``; returns the manifest digest."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data: bytes, media_type: str) -> dict[str, object]:
        hex_digest = hashlib.sha256(data).hexdigest()
        (blobs / hex_digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{hex_digest}", "size": len(data)}

    diff_ids = ["sha256:" + hashlib.sha256(_uncompressed(layer)).hexdigest() for layer in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": put(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [put(layer, OCI_LAYER_GZIP) for layer in layers],
    }
    described = put(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    described["annotations"] = {"org.opencontainers.image.ref.name": tag}
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [described]}))
    return str(described["digest"])


def _uncompressed(layer: bytes) -> bytes:
    try:
        return gzip.decompress(layer)
    except OSError:  # a hostile layer that only claims to be gzip
        return layer
