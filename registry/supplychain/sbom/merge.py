"""One CycloneDX document for a version made of several files' SBOMs.

A version may hold several files (a wheel and an sdist, a tool for three
platforms), each analysed into its own SBOM. Serving the version merges them
at the JSON level: the version becomes ``metadata.component`` (an
``application``), each file's root component becomes a component the
version depends on, components are united by ``bom-ref`` and dependencies
by ``ref``. Only documents Arbiter generated (and validated) are merged.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from registry.supplychain.sbom.cyclonedx import SPEC_VERSION, TOOL_NAME, TOOL_VERSION


def merge(
    documents: Sequence[dict[str, Any]], *, repository: str, name: str, version: str
) -> dict[str, Any]:
    """The union of ``documents`` under a root component for ``repository/name/version``."""
    if len(documents) == 1:
        return documents[0]
    root_ref = f"arbiter:{repository}/{name}/{version}"
    components: dict[str, dict[str, Any]] = {}
    dependencies: dict[str, set[str]] = {root_ref: set()}
    for document in documents:
        metadata = document.get("metadata", {})
        root = metadata.get("component")
        if isinstance(root, dict) and root.get("bom-ref"):
            components.setdefault(root["bom-ref"], root)
            dependencies[root_ref].add(root["bom-ref"])
        for component in document.get("components", []):
            ref = component.get("bom-ref")
            if ref:
                components.setdefault(ref, component)
        for dependency in document.get("dependencies", []):
            targets = dependencies.setdefault(dependency["ref"], set())
            targets.update(dependency.get("dependsOn", []))
    return {
        "$schema": f"http://cyclonedx.org/schema/bom-{SPEC_VERSION}.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": uuid.uuid4().urn,
        "version": 1,
        "metadata": {
            "timestamp": datetime.now(UTC).isoformat(),
            "tools": {
                "components": [{"type": "application", "name": TOOL_NAME, "version": TOOL_VERSION}]
            },
            "component": {
                "type": "application",
                "bom-ref": root_ref,
                "name": name,
                "version": version,
                "properties": [{"name": "arbiter:repository", "value": repository}],
            },
        },
        "components": [components[ref] for ref in sorted(components)],
        "dependencies": [
            {"ref": ref, "dependsOn": sorted(targets)} if targets else {"ref": ref}
            for ref, targets in sorted(dependencies.items())
        ],
    }
