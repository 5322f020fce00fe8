"""Supply chain: CycloneDX SBOMs and vulnerability findings that feed the policy.

* :mod:`registry.supplychain.sbom` -- walk an artifact (never extracting it),
  catalog the packages inside, render a CycloneDX 1.6 document, validate one;
* :mod:`registry.supplychain.vulndb` -- import OSV records, match components
  by purl with each ecosystem's version semantics;
* :mod:`registry.supplychain.scan` -- the push hook: analyse staged bytes
  before the content-stage decision, store SBOM, findings and an ``analyse``
  event with the push;
* :mod:`registry.supplychain.facts` -- what the policy reads about a stored
  version (SBOM summary, findings, ``scan.status``);
* :mod:`registry.supplychain.rescan` -- rescans when the vulnerability data
  changes.

This root imports nothing, so ``registry.db.models`` can register the tables
of :mod:`registry.supplychain.models` without pulling in the analysers.
"""

__all__: list[str] = []
