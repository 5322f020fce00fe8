"""``python -m registry.supervisor``: what ``arbiter serve`` execs into to run granian.

A module of its own so that ``registry.server`` (which workers import by
name) is never also ``__main__``.
"""

from registry.server import supervise

if __name__ == "__main__":
    supervise()
