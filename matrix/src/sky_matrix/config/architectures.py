"""The CPU architectures the matrix knows: their names in each tool's spelling.

One table. `uname -m` names an architecture (`x86_64`, `aarch64`); Debian (`amd64`, `arm64`),
Rust's target triples, the wheel platform tags and qemu's binfmt entry each spell it their own
way. The host's architecture runs natively; any other runs in containers through qemu's binfmt
handler (`sky_matrix.docker.emulation`).
"""

from __future__ import annotations

import dataclasses
import platform
from typing import Dict, Tuple


@dataclasses.dataclass(frozen=True)
class Architecture:
    name: str  # `uname -m` inside a container of this architecture
    debian: str  # dpkg's name (mmdebstrap --arch, arch-test)
    rust_target: str  # the target triple of the manylinux wheel
    # The platform tags a wheel of this architecture may carry to install in its images, oldest
    # glibc first. Their newest glibc must be no newer than the oldest image's of this
    # architecture (the wheelhouse serves them all).
    wheel_platforms: Tuple[str, ...]
    binfmt_entry: str  # qemu-user-static's entry under /proc/sys/fs/binfmt_misc


ARCHITECTURES: Dict[str, Architecture] = {
    arch.name: arch
    for arch in (
        Architecture(
            "x86_64",
            "amd64",
            "x86_64-unknown-linux-gnu",
            # Wheels for glibc 2.17 or older install in every x86_64 image, manylinux2014 too.
            (
                "manylinux2014_x86_64",
                "manylinux_2_17_x86_64",
                "manylinux2010_x86_64",
                "manylinux_2_12_x86_64",
                "manylinux1_x86_64",
                "manylinux_2_5_x86_64",
            ),
            "qemu-x86_64",
        ),
        Architecture(
            "aarch64",
            "arm64",
            "aarch64-unknown-linux-gnu",
            # manylinux2014 is aarch64's first manylinux tag; memray publishes aarch64 wheels
            # only as manylinux_2_28, which every aarch64 image (bookworm: glibc 2.36) takes.
            ("manylinux2014_aarch64", "manylinux_2_17_aarch64", "manylinux_2_28_aarch64"),
            "qemu-aarch64",
        ),
    )
}

NATIVE = "x86_64"  # the architecture images are assumed to have unless they say otherwise


def host_architecture() -> str:
    """`uname -m` of this machine (`x86_64`, `aarch64`)."""
    return platform.machine() or NATIVE


def get(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(ARCHITECTURES)
        raise ValueError(f"unknown architecture {name!r} (known: {known})") from None
