"""Garbage collection: online mark-and-sweep of blobs nothing references.

``collector`` (the mark and the sweep), ``references`` (which columns
reference blobs), ``links`` (which OCI blob links are live), ``usage`` (bytes
per repository).
"""

from registry.gc.collector import CollectionInProgress, GarbageCollector, GcReport

__all__ = ["CollectionInProgress", "GarbageCollector", "GcReport"]
