"""The runner's own conftest, copied to the root of every host cell's working directory.

It is part of the matrix, never of the product. It records when the first test
starts, the suite's `sky_rs.stats()` per process, the CPU time the cell used
(the scheduler places cells by it), and, for the runner's own
tests only, fires the crash canary named by SKY_RS_MATRIX_CANARY in the pytest
main process: segfault, abort, hang or oom. Runs on every cell interpreter
(Python 3.8+), so it uses nothing newer.
"""

import json
import os
import sys
import time

import pytest

CELL_DIR = os.environ.get("SKY_RS_MATRIX_CELL_DIR")
CANARY = os.environ.get("SKY_RS_MATRIX_CANARY", "")
_first_test_written = False
_configured_at = None
CPU_USAGE_FILE = "cpu-usage.json"


def _is_xdist_worker(config):
    return hasattr(config, "workerinput")


def _fire_canary(kind):
    sys.stderr.write(f"sky-matrix canary: {kind}\n")
    sys.stderr.flush()
    if kind == "segfault":
        import ctypes

        ctypes.string_at(0)
    elif kind == "abort":
        os.abort()
    elif kind == "hang":
        while True:
            time.sleep(3600)
    elif kind == "oom":
        import resource

        # Cap this process's address space so only it runs out, not the machine.
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[0])
        limit = pages * os.sysconf("SC_PAGE_SIZE") + 256 * 1024 * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        hoard = []
        try:
            while True:
                hoard.append(bytearray(32 * 1024 * 1024))
        except MemoryError:
            # Give the memory back before pytest reports it: its teardown needs some.
            hoard.clear()
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
            raise MemoryError(
                f"sky-matrix canary: out of memory under RLIMIT_AS {limit >> 20} MiB"
            ) from None
    else:
        raise pytest.UsageError(f"unknown SKY_RS_MATRIX_CANARY {kind!r}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    if CANARY and not _is_xdist_worker(session.config):
        _fire_canary(CANARY)


def pytest_runtest_logstart(nodeid, location):
    global _first_test_written
    if _first_test_written or not CELL_DIR:
        return
    _first_test_written = True
    try:
        fd = os.open(os.path.join(CELL_DIR, "first-test"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except OSError:
        return  # another process of this cell was first
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{time.time():.3f}\n")


def pytest_sessionfinish(session):
    sky_rs = sys.modules.get("sky_rs")
    if not CELL_DIR or sky_rs is None:
        return
    try:
        stats = sky_rs.stats()
    except Exception as exc:  # the report shows it; the suite's own verdict stands
        stats = {"error": repr(exc)}
    path = os.path.join(CELL_DIR, f"suite-stats-{os.getpid()}.json")
    with open(path, "w") as handle:
        json.dump(stats, handle, default=repr)


def pytest_configure(config):
    global _configured_at
    if not _is_xdist_worker(config):
        _configured_at = time.monotonic()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """CPU seconds of pytest and every child it waited for (xdist workers, the suites'
    subprocesses) over the wall time: how many cores the cell keeps busy."""
    if not CELL_DIR or _is_xdist_worker(config) or _configured_at is None:
        return
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = {
        "cpu_seconds": round(
            own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime, 3
        ),
        "wall_seconds": round(time.monotonic() - _configured_at, 3),
    }
    with open(os.path.join(CELL_DIR, CPU_USAGE_FILE), "w") as handle:
        json.dump(usage, handle)
