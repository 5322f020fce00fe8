"""OCI images: layers applied in order, whiteouts honoured, non-gzip layers refused."""

from __future__ import annotations

import io
import tarfile

import pytest

from registry.supplychain.errors import ScanFailed
from registry.supplychain.limits import ScanLimits
from registry.supplychain.sbom.analyse import Layer, analyse_image
from tests.registry.supplychain.builders import DPKG_STATUS, metadata, npm_package, tar

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
TAR = "application/vnd.oci.image.layer.v1.tar"


def _layer(data: bytes, media_type: str = GZIP) -> Layer:
    return Layer(io.BytesIO(data), media_type, "sha256:" + "1" * 64, len(data))


def test_later_layers_replace_and_white_out(limits: ScanLimits) -> None:
    base = tar(
        {
            "etc/os-release": b'ID=debian\nVERSION_ID="12"\n',
            "var/lib/dpkg/status": DPKG_STATUS,
            "usr/lib/python3/site-packages/old-1.0.dist-info/METADATA": metadata(
                "old", "1.0"
            ).encode(),
            "usr/lib/python3/site-packages/keep-2.0.dist-info/METADATA": metadata(
                "keep", "2.0"
            ).encode(),
            "app/node_modules/left-pad/package.json": npm_package("left-pad", "1.3.0"),
            "app/node_modules/lodash/package.json": npm_package("lodash", "4.17.15"),
        }
    )
    only_libc = DPKG_STATUS.split(b"\n\n")[0] + b"\n"
    top = tar(
        {
            "var/lib/dpkg/status": only_libc,  # replaces the base layer's database
            "usr/lib/python3/site-packages/.wh.old-1.0.dist-info": b"",  # removes a directory
            "app/node_modules/.wh..wh..opq": b"",  # empties node_modules of the base layer
            "app/node_modules/lodash/package.json": npm_package("lodash", "4.17.21"),
        },
        mode="w",
    )
    inventory = analyse_image([_layer(base), _layer(top, TAR)], name="app:1.0", limits=limits)
    names = {(p.ecosystem, p.name, p.version) for p in inventory.packages.values()}
    assert ("deb", "libc6", "2.36-9+deb12u4") in names
    assert not any(p.name == "libgcc-s1" for p in inventory.packages.values())
    assert ("pypi", "keep", "2.0") in names and not any(n == "old" for _, n, _ in names)
    assert ("npm", "lodash", "4.17.21") in names
    assert not any(n in ("left-pad",) or v == "4.17.15" for _, n, v in names)
    paths = {f.path for f in inventory.files}
    assert "usr/lib/python3/site-packages/old-1.0.dist-info/METADATA" not in paths
    assert "app/node_modules/left-pad/package.json" not in paths
    assert not any(".wh." in p for p in paths)


def test_a_layer_declared_gzip_that_is_not(limits: ScanLimits) -> None:
    plain = tar({"a": b"a"}, mode="w")
    with pytest.raises(ScanFailed, match=r"declared .* but is not gzip"):
        analyse_image([_layer(plain, GZIP)], name="x", limits=limits)
    with pytest.raises(ScanFailed, match="not a tar"):
        analyse_image([_layer(b"\0" * 1024, TAR)], name="x", limits=limits)


def test_absolute_symlinks_are_normal_in_a_root_file_system(limits: ScanLimits) -> None:
    layer = tar(
        {"usr/bin/python3.11": b"\x7fELF"},
        links={"usr/bin/python3": (tarfile.SYMTYPE, "/usr/bin/python3.11")},
    )
    inventory = analyse_image([_layer(layer)], name="x", limits=limits)
    assert [f.path for f in inventory.files] == ["usr/bin/python3.11"]


def test_device_files_fail_even_in_images(limits: ScanLimits) -> None:
    layer = tar({"a": b"a"}, links={"dev/null": (tarfile.CHRTYPE, "")})
    with pytest.raises(ScanFailed, match="device"):
        analyse_image([_layer(layer)], name="x", limits=limits)
