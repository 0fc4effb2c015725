#!/usr/bin/env bash
# Remakes the Mach-O fixtures of test_wheels_platforms.py with zig (pip install ziglang):
# stand-ins for an extension module, a few KiB each once gzipped.
#   arm64.so          minos 11.0,  libSystem alone, PyLong_FromLong by dynamic lookup
#   x86_64.so         minos 10.12, the same
#   x86_64-linked.so  minos 10.12, PyLong_FromLong bound to Python.framework (Python.tbd)
set -euo pipefail
cd "$(dirname "$0")"
zig() { python -m ziglang "$@"; }
out=$(mktemp -d)
zig cc -target aarch64-macos.11.0 -shared -O2 -s -undefined dynamic_lookup \
    -Wl,-dead_strip_dylibs ext.c -o "$out/arm64.so"
zig cc -target x86_64-macos.10.12 -shared -Os -s -undefined dynamic_lookup \
    -Wl,-dead_strip_dylibs ext.c -o "$out/x86_64.so"
zig cc -target x86_64-macos.10.12 -shared -Os -s -Wl,-dead_strip_dylibs ext.c Python.tbd \
    -o "$out/x86_64-linked.so"
for name in arm64 x86_64 x86_64-linked; do gzip -9n -c "$out/$name.so" > "$name.so.gz"; done
rm -r "$out"
