"""Rendered packuments, reused while the rows they were rendered from are unchanged.

``npm install`` asks for the same packuments over and over, and rendering
one (parsing every manifest, building the document, ``json.dumps``) cost
more than reading its rows. The rows are still read on every request (the
read is decided and audited, and is what the policy sees); what is kept is
the rendered body, next to the rows' :attr:`Snapshot.source
<registry.formats.npm.lookups.Snapshot.source>` it came from. A body is
served only when the source just read equals the kept one, value for value:
any publish, dist-tag move, deprecation or unpublish, by this process or
another one serving the same database, changes the rows and so renders
anew. Nothing is keyed on time.

The base URL (tarball URLs are absolute) and the variant are part of the
key. Memory is bounded by the number of documents and their total size; the
least recently served go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

MAX_DOCUMENTS = 512
MAX_BYTES = 64 * 1024 * 1024

Key = tuple[str, ...]


class RenderedDocuments:
    """A bounded map from (repository, name, base URL, variant) to a body and its source."""

    def __init__(self, max_documents: int = MAX_DOCUMENTS, max_bytes: int = MAX_BYTES) -> None:
        self._max_documents = max_documents
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Key, tuple[Hashable, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def body(self, key: Key, source: Hashable, render: Callable[[], bytes]) -> bytes:
        """The body rendered from ``source``: the kept one if its source is equal, else rendered."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == source:
                self._entries.move_to_end(key)
                return entry[1]
        body = render()
        self._keep(key, source, body)
        return body

    def _keep(self, key: Key, source: Hashable, body: bytes) -> None:
        if len(body) > self._max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= len(previous[1])
            self._entries[key] = (source, body)
            self._bytes += len(body)
            while len(self._entries) > self._max_documents or self._bytes > self._max_bytes:
                _key, (_source, dropped) = self._entries.popitem(last=False)
                self._bytes -= len(dropped)
