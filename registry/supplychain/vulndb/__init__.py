"""Vulnerability data: OSV records imported into the database, matched by purl.

* :mod:`.records` -- an OSV record as the matcher needs it;
* :mod:`.severity` -- CVSS v2/v3/v4 base scores and severity labels;
* :mod:`.ecosystems` -- purl types and names to OSV ecosystems and names;
* :mod:`.versions` -- each ecosystem's version ordering;
* :mod:`.ranges` -- whether a version falls in an OSV range;
* :mod:`.index` / :mod:`.matcher` -- advisories by package, and matching;
* :mod:`.importer` -- ``arbiter vulndb import``: zip or directory, idempotent.

OSV data is CC-BY 4.0 (the PyPA advisory database, the Go vulnerability
database, the GitHub Advisory Database): keep the attribution with the data.
"""

__all__: list[str] = []
