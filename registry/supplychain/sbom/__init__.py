"""SBOM generation: walk an artifact without extracting it, catalog its packages, render CycloneDX.

* :mod:`.walk` -- stream archive entries within the bounds of a :mod:`.budget`;
* :mod:`.analyse` -- hash files, hand metadata to :mod:`.catalogers`, apply
  image layers and whiteouts; the result is an :mod:`.inventory`;
* :mod:`.cyclonedx` -- the CycloneDX 1.6 document (cyclonedx-python-lib);
* :mod:`.validate` -- schema validation of ours and of producers' documents;
* :mod:`.merge` -- one document for a version of several files.
"""

__all__: list[str] = []
