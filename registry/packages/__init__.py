"""What package formats (PyPI, npm) share: bounded archive reading, limits, licenses, digests.

Formats never import each other; what two of them need lives here, with no
knowledge of either protocol. The package root exports only the leaf modules
(nothing here imports the governance layer at import time, so the governance
layer and supply-chain analysis may use :mod:`registry.packages.licenses`);
the governed push and read helpers are imported from
:mod:`registry.packages.publish` and :mod:`registry.packages.reads`.
"""

from registry.packages.archives import TarArchive, ZipArchive, safe_member_name
from registry.packages.digests import MultiHasher
from registry.packages.errors import PackageInvalid
from registry.packages.licenses import license_ids, spdx_expression
from registry.packages.limits import ArchiveLimits

__all__ = [
    "ArchiveLimits",
    "MultiHasher",
    "PackageInvalid",
    "TarArchive",
    "ZipArchive",
    "license_ids",
    "safe_member_name",
    "spdx_expression",
]
