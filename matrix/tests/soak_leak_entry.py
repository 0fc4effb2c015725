"""The soak CLI with a test-only ``--inject-leak SIZE``: the leak lives here, not in the product.

Each selected call also ``malloc``s SIZE bytes through ctypes and never frees
them, the way the leak-suite's Rust canary leaks (a native allocation per
call, invisible to Python's own accounting). ``--inject-leak-function`` and
``--inject-leak-backend`` narrow it to one stream, as the canary does.

    python soak_leak_entry.py --inject-leak 64 --inject-leak-function base36_encode \\
        --inject-leak-backend rust --duration 2m --out /tmp/leaky
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from typing import Any, Callable, List, Optional, Sequence

from sky_matrix.soak import cli
from sky_matrix.soak.workload import Stream

_libc = ctypes.CDLL(None)
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.malloc.restype = ctypes.c_void_p


def leaking(call: Callable[..., Any], size: int) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        pointer = _libc.malloc(size)
        if pointer:  # touch it, so the pages are really resident
            ctypes.memset(pointer, 0xA5, size)
        return call(*args, **kwargs)

    return wrapper


def hook_for(size: int, function: Optional[str], backend: Optional[str]):  # type: ignore[no-untyped-def]
    def hook(streams: List[Stream]) -> List[Stream]:
        for stream in streams:
            if function in (None, stream.function) and backend in (None, stream.backend):
                stream.call = leaking(stream.call, size)
        return streams

    return hook


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--inject-leak", type=int, default=0, metavar="SIZE")
    parser.add_argument("--inject-leak-function", default=None)
    parser.add_argument("--inject-leak-backend", default=None)
    own, rest = parser.parse_known_args(argv)
    hook = None
    if own.inject_leak > 0:
        hook = hook_for(own.inject_leak, own.inject_leak_function, own.inject_leak_backend)
    return cli.main(rest, workload_hook=hook)


if __name__ == "__main__":
    sys.exit(main())
