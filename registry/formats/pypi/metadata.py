"""Core metadata (wheel METADATA, sdist PKG-INFO) as the facts a policy and pip read.

The file's own metadata is the truth about a distribution: the upload form's
fields are only checked against it. Parsing and validation are
:mod:`packaging`'s (the reference implementation of the core metadata
spec), so what pip would refuse is refused here, with its message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from packaging.metadata import ExceptionGroup, InvalidMetadata, Metadata, parse_email
from packaging.requirements import Requirement

from registry.formats.pypi.names import normalize
from registry.packages import PackageInvalid, license_ids, spdx_expression
from registry.packages.licenses import classifier_ids


@dataclass(frozen=True)
class CoreMetadata:
    """The fields of one distribution's metadata the registry keeps and serves."""

    name: str
    version: str  # normalised
    metadata_version: str
    summary: str = ""
    description: str = ""
    description_content_type: str = ""
    license: str = ""  # the License field, free text
    license_expression: str | None = None  # canonical SPDX
    licenses: tuple[str, ...] = ()  # SPDX ids, for policy
    classifiers: tuple[str, ...] = ()
    requires_dist: tuple[str, ...] = ()
    requires_python: str | None = None
    author: str = ""
    author_email: str = ""
    maintainer: str = ""
    maintainer_email: str = ""
    home_page: str = ""
    keywords: tuple[str, ...] = ()
    project_urls: dict[str, str] = field(default_factory=dict)
    provides_extra: tuple[str, ...] = ()

    @property
    def dependency_names(self) -> list[str]:
        """Normalised names of every declared dependency (extras included)."""
        return sorted({normalize(Requirement(spec).name) for spec in self.requires_dist})

    def purls(self) -> list[str]:
        """Package URLs of the declared dependencies (``input.artifact.sbom.purls``)."""
        return [f"pkg:pypi/{name}" for name in self.dependency_names]

    def release_meta(self) -> dict[str, Any]:
        """What a release row keeps (``Version.meta``) for the JSON API."""
        return {
            "name": self.name,
            "summary": self.summary,
            "description": self.description,
            "description_content_type": self.description_content_type,
            "license": self.license,
            "license_expression": self.license_expression,
            "licenses": list(self.licenses),
            "classifiers": list(self.classifiers),
            "requires_dist": list(self.requires_dist),
            "requires_python": self.requires_python,
            "author": self.author,
            "author_email": self.author_email,
            "maintainer": self.maintainer,
            "maintainer_email": self.maintainer_email,
            "home_page": self.home_page,
            "keywords": ",".join(self.keywords),
            "project_urls": dict(self.project_urls),
            "provides_extra": list(self.provides_extra),
            "metadata_version": self.metadata_version,
        }


def parse_core_metadata(data: bytes, source: str) -> CoreMetadata:
    """Parse and validate ``data``; :class:`PackageInvalid` says what is wrong and where."""
    try:
        raw, _unparsed = parse_email(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise PackageInvalid(f"{source} cannot be read as core metadata: {error}") from None
    try:
        meta = Metadata.from_raw(raw, validate=True)
    except ExceptionGroup as group:
        problems = "; ".join(str(e) for e in group.exceptions)
        raise PackageInvalid(f"{source} is not valid core metadata: {problems}") from None
    except InvalidMetadata as error:
        raise PackageInvalid(f"{source} is not valid core metadata: {error}") from None
    expression = meta.license_expression or spdx_expression(meta.license)
    classifiers = tuple(meta.classifiers or ())
    licenses = license_ids(expression) or classifier_ids(list(classifiers))
    return CoreMetadata(
        name=str(meta.name),
        version=str(meta.version),
        metadata_version=str(meta.metadata_version),
        summary=meta.summary or "",
        description=meta.description or "",
        description_content_type=meta.description_content_type or "",
        license=meta.license or "",
        license_expression=str(expression) if expression else None,
        licenses=tuple(licenses),
        classifiers=classifiers,
        requires_dist=tuple(str(r) for r in meta.requires_dist or ()),
        requires_python=str(meta.requires_python) if meta.requires_python else None,
        author=meta.author or "",
        author_email=meta.author_email or "",
        maintainer=meta.maintainer or "",
        maintainer_email=meta.maintainer_email or "",
        home_page=meta.home_page or "",
        keywords=tuple(meta.keywords or ()),
        project_urls=dict(meta.project_urls or {}),
        provides_extra=tuple(str(e) for e in meta.provides_extra or ()),
    )
