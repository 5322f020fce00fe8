"""What package formats (PyPI, npm) share: bounded archive reading, limits, licenses, digests.

Formats never import each other; what two of them need lives here, with no
knowledge of either protocol.
"""

from registry.packages.archives import TarArchive, ZipArchive, safe_member_name
from registry.packages.digests import MultiHasher
from registry.packages.errors import PackageInvalid
from registry.packages.licenses import license_ids, spdx_expression
from registry.packages.limits import ArchiveLimits
from registry.packages.publish import Staged, commit_staged, decide_request, discard

__all__ = [
    "ArchiveLimits",
    "MultiHasher",
    "PackageInvalid",
    "Staged",
    "TarArchive",
    "ZipArchive",
    "commit_staged",
    "decide_request",
    "discard",
    "license_ids",
    "safe_member_name",
    "spdx_expression",
]
