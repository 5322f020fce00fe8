"""The supply-chain errors: one root, each with a sentence for people.

A scan that cannot finish is not an error a client sees: it becomes the fact
``scan.status = "failed"`` with :class:`ScanFailed`'s reason, and the policy
decides. What a client does see is a producer SBOM that is not CycloneDX
(:class:`SbomInvalid`, 422) or an unusable vulnerability feed.
"""

from __future__ import annotations

from registry.errors import ArbiterError, Unprocessable


class SupplyChainError(ArbiterError):
    """Root of every supply-chain error."""

    status = 500
    code = "SUPPLY_CHAIN"

    def diagnostics(self) -> str:
        """The message, for logs and the CLI."""
        return self.message


class ScanFailed(SupplyChainError):
    """Analysis stopped: a bound was hit or the content is hostile or broken.

    Raised inside the analysers and caught by :mod:`registry.supplychain.scan`,
    which turns it into ``scan.status = "failed"`` with :attr:`reason`.
    """

    status = 422
    code = "SCAN_FAILED"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SbomInvalid(Unprocessable):
    """An uploaded SBOM is not a valid CycloneDX document (the schema says why)."""

    code = "SBOM_INVALID"


class VulnDbError(SupplyChainError):
    """A vulnerability feed could not be read (not a zip, not OSV JSON, ...)."""

    status = 400
    code = "VULNDB_INVALID"
