"""The ``arbiter`` command line: ``serve`` for operators, the rest a client of the HTTP API."""

__all__: list[str] = []
