"""``python -m bench [NAME ...]``: run every ``bench/bench_*.py`` module's ``main()``.

Modules are found by glob, so a benchmark that is not written yet is simply
absent. Names on the command line keep only the benchmarks whose name
contains one of them (``python -m bench generic``). A benchmark that raises is
reported and the rest still run; the exit status is 1 if any failed.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

# The usual order of `make bench`: the headline first, experiments last.
PREFERRED_ORDER = ("generic", "policy", "audit", "server_choice")


def discover() -> list[str]:
    """Benchmark names (``bench_<name>.py``), in :data:`PREFERRED_ORDER` then by name."""
    here = Path(__file__).resolve().parent
    names = [path.stem.removeprefix("bench_") for path in here.glob("bench_*.py")]

    def rank(name: str) -> tuple[int, str]:
        order = PREFERRED_ORDER.index(name) if name in PREFERRED_ORDER else len(PREFERRED_ORDER)
        return order, name

    return sorted(names, key=rank)


def select(names: list[str], filters: list[str]) -> list[str]:
    if not filters:
        return names
    return [name for name in names if any(f in name for f in filters)]


def run(name: str) -> bool:
    """Import ``bench.bench_<name>`` and call its ``main()``; ``False`` if it raised."""
    print(f"\n{'=' * 80}\n== bench {name}\n{'=' * 80}", flush=True)
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.bench_{name}")
        module.main()
    except Exception:
        traceback.print_exc()
        print(f"== bench {name}: FAILED after {time.perf_counter() - started:.1f} s", flush=True)
        return False
    print(f"== bench {name}: done in {time.perf_counter() - started:.1f} s", flush=True)
    return True


def main(argv: list[str]) -> int:
    names = select(discover(), argv)
    if not names:
        print(f"no benchmark matches {' '.join(argv)!r}; available: {', '.join(discover())}")
        return 2
    failed = [name for name in names if not run(name)]
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
