"""OCI distribution (``/v2``): container images, Helm charts and any OCI artifact.

An Arbiter repository ``R`` of format ``oci`` serves its images at
``/v2/R/<image>``. Every pull, push, tag and delete is a governed action;
errors come in the distribution spec's own format.
"""

from registry.formats.oci.routes import router

__all__ = ["router"]
