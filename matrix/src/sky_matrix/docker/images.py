"""Container images of the matrix's `docker:<image>` platforms: which exist, building and probing.

Two image sources, one code path (`SKY_RS_IMAGE_SOURCE`):

- `debian` (default): no image registry. `docker/build-image.sh` bootstraps a Debian root file
  system from the mirror in the host's apt sources, `docker import`s it and finishes it with
  `docker/finish.Dockerfile`.
- `manylinux`: where images can be pulled (GitHub runners), pypa's manylinux images, from the
  registry named by `SKY_RS_IMAGE_REGISTRY`, finished by the same Dockerfile.

Builds are cached by content: the image tag and its label carry a hash of everything the build
reads, so an unchanged image is reused in seconds. The interpreters and glibc of an image are
probed by running them inside it, never taken from the tables here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from sky_matrix.build import cache
from sky_matrix.config import architectures
from sky_matrix.core.model import Interpreter
from sky_matrix.core.text import last_lines, telling_line
from sky_matrix.docker import containers, emulation

HASH_LABEL = f"{containers.LABEL_PREFIX}.content-hash"
IMAGE_REPOSITORY = "sky-rs-matrix"
SOURCE_ENV = "SKY_RS_IMAGE_SOURCE"
REGISTRY_ENV = "SKY_RS_IMAGE_REGISTRY"
MIRROR_ENV = "SKY_RS_DEBIAN_MIRROR"
DOCKER_DIR_ENV = "SKY_RS_DOCKER_DIR"
SOURCES = ("debian", "manylinux", "layer", "emulated")

# Docker answers `version` in well under a second; a daemon that takes longer is stuck.
_STATUS_TIMEOUT = 30.0
_PROBE_TIMEOUT = 120.0
_BUILD_TIMEOUT = 3600.0
# A layer may compile (an interpreter): more time than a bootstrap.
_LAYER_BUILD_TIMEOUT = 7200.0
# The most telling line of a failed build's output: its last error.
_BUILD_FAILURE = re.compile(r"(^E: |error|failed|denied|not found)", re.IGNORECASE)

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """One image of the platform axis, as declared (what a build should produce)."""

    name: str
    source: str  # "debian" or "manylinux"
    glibc: str  # the glibc the image is expected to have (the probe reports the real one)
    pythons: Tuple[str, ...]  # expected interpreter labels; missing ones are reported
    python_globs: Tuple[str, ...]  # where the probe looks for interpreters inside the image
    base: Optional[str] = None  # manylinux: the pulled image, without the registry host
    # layer: the image this one adds to (its Dockerfile is docker/images/<name>/Dockerfile)
    parent: Optional[str] = None
    # Why the image's cells do not fail a run yet (see Platform.optional_because), or None.
    optional_because: Optional[str] = None
    # (suite, why it cannot run in this image): planned, recorded as skipped with the reason.
    skipped_suites: Tuple[Tuple[str, str], ...] = ()
    # Why the image's interpreter gets the pure-Python wheel (what pip installs there) rather
    # than a native one, or None.
    pure_wheel_because: Optional[str] = None
    # `uname -m` in the image (config/architectures.py), None for the host's own. Another
    # architecture runs through qemu's binfmt handler (docker/emulation.py).
    architecture: Optional[str] = None
    # An emulated image's native counterpart (same suite and interpreters): the emulation
    # factor is measured against it when it is built.
    native_twin: Optional[str] = None
    # (suite, its profiles here) when the image runs fewer than every profile of a suite;
    # None: all of them.
    profiles: Optional[Tuple[Tuple[str, Tuple[str, ...]], ...]] = None

    @property
    def machine(self) -> str:
        """The architecture the image's programs are built for (`uname -m`)."""
        return self.architecture or architectures.host_architecture()

    @property
    def emulated(self) -> bool:
        return self.machine != architectures.host_architecture()


_DEBIAN_GLOBS = ("/usr/bin/python3.[0-9]*",)
_MANYLINUX_GLOBS = ("/opt/python/cp3*/bin/python",)
# A layer image is probed only for the interpreter it adds (the parent's are the parent's cells).
_PYPY_GLOBS = ("/usr/bin/pypy3",)
_FREE_THREADED_GLOBS = ("/opt/python3.13t/bin/python3.13t",)
# maturin's build against 3.13t stops in pyo3-build-config: "PyO3 does not support the
# free-threaded build of CPython versions below 3.14". No cp313t wheel exists, so pip installs
# the pure wheel there, and that is what the cells test (with the GIL kept off).
_NO_NATIVE_313T = "PyO3 0.29 builds no module for free-threaded CPython below 3.14"

# Images that add one interpreter to a Debian image with a Dockerfile layer
# (docker/images/<name>/Dockerfile, `docker build` FROM the parent's tag), so the parent's inputs
# and tag stay as they are. Their apt-get uses the same mirror as the parent's bootstrap.
# Their interpreters need a wheel of their own (docker/interpreter_wheel.py builds PyPy's).
LAYER_IMAGES: Dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec(
            "sid-pypy3",
            "layer",
            "2.43",
            ("pp3.11",),
            _PYPY_GLOBS,
            parent="sid",
            skipped_suites=(
                (
                    "leaks",
                    "PyPy has no reference counts: the references detector's sys.getrefcount()"
                    " does not exist there (AttributeError), memray supports CPython only, and"
                    " the suite's first PyPy run did not end within its 1800 s limit",
                ),
                (
                    "stability",
                    "psutil publishes no PyPy wheel (pip finds none for pp311, pypy311_pp80)"
                    " and test_threads imports it, so the suite does not collect; hdrhistogram"
                    " (the short soak's recorder) has none either",
                ),
            ),
        ),
        # CPython built with --disable-gil from Debian's source package (docker/images/sid-3.13t:
        # 3.13 because the mirror serves no 3.14 or 3.15 source tarball). memray, pytest-memray
        # and hdrhistogram have no cp313t wheels: the wheelhouse leaves them out and says so,
        # and the tests that need them skip with that reason.
        ImageSpec(
            "sid-3.13t",
            "layer",
            "2.43",
            ("3.13t",),
            _FREE_THREADED_GLOBS,
            parent="sid",
            pure_wheel_because=_NO_NATIVE_313T,
            skipped_suites=tuple(
                (
                    suite,
                    f"the cp313t installation is the pure-Python wheel ({_NO_NATIVE_313T}):"
                    " no native module to compare or measure",
                )
                for suite in ("parity", "cgroup", "eperm", "leaks")
            ),
        ),
    )
}

DEBIAN_IMAGES: Dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("bullseye", "debian", "2.31", ("3.9",), _DEBIAN_GLOBS),
        ImageSpec("bookworm", "debian", "2.36", ("3.11",), _DEBIAN_GLOBS),
        ImageSpec("trixie", "debian", "2.41", ("3.13",), _DEBIAN_GLOBS),
        ImageSpec("sid", "debian", "2.43", ("3.13", "3.14", "3.14d", "3.15"), _DEBIAN_GLOBS),
    )
}

# Debian images of another architecture than the host's: bootstrapped for it by
# `docker/build-emulated-image.sh` (mmdebstrap --arch) and run through qemu's binfmt handler.
# Their cells are opt-in (sky_matrix.execute.platforms: emulation makes them slow).
EMULATED_IMAGES: Dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec(
            "bookworm-arm64",
            "emulated",
            "2.36",
            ("3.11",),
            _DEBIAN_GLOBS,
            architecture="aarch64",
            native_twin="bookworm",
            # What emulation is for: the functions' answers on another architecture, under
            # each kind of limit once (issue 14); the rest of the profile axis is x86_64's.
            profiles=(
                ("parity", ("default",)),
                ("cgroup", ("default", "cpus-1.5", "memory-512m")),
                ("eperm", ("seccomp-eperm", "nonroot")),
                ("leaks", ("default",)),
                ("stability", ("default",)),
            ),
        ),
    )
}

MANYLINUX_IMAGES: Dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec(
            "manylinux2014",
            "manylinux",
            "2.17",
            (),
            _MANYLINUX_GLOBS,
            base="pypa/manylinux2014_x86_64",
        ),
        ImageSpec(
            "manylinux_2_28",
            "manylinux",
            "2.28",
            (),
            _MANYLINUX_GLOBS,
            base="pypa/manylinux_2_28_x86_64",
        ),
    )
}


def select_images(
    source: Optional[str] = None, env: Mapping[str, str] = os.environ
) -> Dict[str, ImageSpec]:
    """The images of one source: `source`, else `$SKY_RS_IMAGE_SOURCE`, else `debian`.

    An unknown source name yields no images (and `ensure_image` explains why), never an error at
    import time.
    """
    chosen = (source or env.get(SOURCE_ENV) or "debian").strip().lower()
    if chosen == "debian":
        return {**DEBIAN_IMAGES, **LAYER_IMAGES, **EMULATED_IMAGES}
    if chosen == "manylinux":
        return dict(MANYLINUX_IMAGES)
    return {}


IMAGES: Dict[str, ImageSpec] = select_images()


@dataclasses.dataclass
class ImageBuild:
    """What `ensure_image` found or made: the report data of one image."""

    name: str
    tag: Optional[str]
    ok: bool
    cached: bool = False
    seconds: float = 0.0  # time spent in ensure_image (build or reuse, plus the probe)
    error: Optional[str] = None
    glibc: Optional[str] = None
    pythons: Dict[str, Interpreter] = dataclasses.field(default_factory=dict)
    missing_pythons: Tuple[str, ...] = ()  # expected by the spec, not found in the image
    size_bytes: Optional[int] = None
    content_hash: Optional[str] = None
    source: Optional[str] = None
    build_log: Optional[str] = None  # the build's whole output, when it was built
    architecture: Optional[str] = None  # `uname -m` in the image, probed

    def to_json(self) -> Dict[str, object]:
        data = dataclasses.asdict(self)
        data["pythons"] = {label: dataclasses.asdict(i) for label, i in self.pythons.items()}
        return data


# --------------------------------------------------------------------------- docker itself


def docker_status(timeout: float = _STATUS_TIMEOUT) -> Tuple[bool, str]:
    """(usable, reason): the docker CLI is installed and its daemon answers."""
    if shutil.which("docker") is None:
        return False, "docker CLI not found on PATH"
    try:
        proc = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False, f"docker daemon did not answer within {timeout:.0f}s"
    except OSError as exc:
        return False, f"docker CLI could not run: {exc}"
    if proc.returncode != 0 or not proc.stdout.strip():
        return False, "docker daemon not reachable: " + last_lines(proc.stderr or proc.stdout)
    return True, ""


# --------------------------------------------------------------------------- the apt mirror

_DEBIAN_CODENAMES = frozenset(
    {
        "buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
        "oldoldstable", "oldstable", "stable", "testing", "unstable",
    }
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class AptSource:
    """One source of the host's apt configuration (a one-line entry or a deb822 stanza)."""

    types: Tuple[str, ...]
    uris: Tuple[str, ...]
    suites: Tuple[str, ...]
    components: Tuple[str, ...]
    enabled: bool = True


def parse_one_line_sources(text: str) -> List[AptSource]:
    """Entries of a `sources.list`-style file: `deb [options] URI suite [component...]`."""
    sources: List[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        # Options in brackets (`[arch=amd64 signed-by=...]`) are not needed here.
        line = re.sub(r"\[[^\]]*\]", " ", line)
        fields = line.split()
        if len(fields) < 3 or fields[0] not in ("deb", "deb-src"):
            continue
        sources.append(AptSource((fields[0],), (fields[1],), (fields[2],), tuple(fields[3:])))
    return sources


def parse_deb822_sources(text: str) -> List[AptSource]:
    """Stanzas of a `.sources` file (deb822: `Field: value`, stanzas split by blank lines)."""
    sources: List[AptSource] = []
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields: Dict[str, str] = {}
        current: Optional[str] = None
        for raw in stanza.splitlines():
            if raw.lstrip().startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and current is not None:
                fields[current] += " " + raw.strip()  # continuation line
                continue
            key, sep, value = raw.partition(":")
            if not sep:
                continue
            current = key.strip().lower()
            fields[current] = value.strip()
        if "uris" not in fields or "suites" not in fields:
            continue
        enabled = fields.get("enabled", "yes").strip().lower() not in ("no", "false", "0")
        sources.append(
            AptSource(
                tuple(fields.get("types", "deb").split()),
                tuple(fields["uris"].split()),
                tuple(fields["suites"].split()),
                tuple(fields.get("components", "").split()),
                enabled,
            )
        )
    return sources


def choose_debian_mirror(sources: Iterable[AptSource]) -> Optional[str]:
    """The URI of the first enabled binary source that serves a Debian release's main archive.

    Security and backports archives (`bookworm-security`, `.../debian-security`) are not the
    archive the images bootstrap from; third-party repositories don't name a Debian suite.
    """
    for source in sources:
        if not source.enabled or "deb" not in source.types:
            continue
        if not any(suite in _DEBIAN_CODENAMES for suite in source.suites):
            continue
        for uri in source.uris:
            if "security" in uri.rstrip("/").rsplit("/", 1)[-1]:
                continue
            if uri.startswith(("http://", "https://", "file:/")):
                return uri.rstrip("/")
    return None


def host_apt_source_files(root: Path = Path("/")) -> List[Path]:
    """The host's apt source files in apt's order: sources.list, then sources.list.d sorted."""
    files: List[Path] = []
    main = root / "etc/apt/sources.list"
    if main.is_file():
        files.append(main)
    parts = root / "etc/apt/sources.list.d"
    if parts.is_dir():
        files.extend(
            p for p in sorted(parts.iterdir()) if p.suffix in (".list", ".sources") and p.is_file()
        )
    return files


def host_debian_mirror(
    root: Path = Path("/"), env: Mapping[str, str] = os.environ
) -> Optional[str]:
    """`$SKY_RS_DEBIAN_MIRROR`, else the Debian mirror of the host's apt sources, else None."""
    override = env.get(MIRROR_ENV, "").strip()
    if override:
        return override.rstrip("/")
    sources: List[AptSource] = []
    for path in host_apt_source_files(root):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            sources.extend(parse_deb822_sources(text))
        else:
            sources.extend(parse_one_line_sources(text))
    return choose_debian_mirror(sources)


# --------------------------------------------------------------------------- content hashing


def find_docker_dir(env: Mapping[str, str] = os.environ) -> Optional[Path]:
    """The project's `docker/` directory: `$SKY_RS_DOCKER_DIR`, else next to this checkout.

    Looks above this file (a source checkout, editable install) and above the working directory
    (a runner installed into a venv and started from the project root).
    """
    override = env.get(DOCKER_DIR_ENV)
    if override:
        return Path(override)
    starts = [Path(__file__).resolve().parent, Path.cwd().resolve()]
    for start in starts:
        for candidate in (start, *start.parents):
            if (candidate / "docker" / "build-image.sh").is_file():
                return candidate / "docker"
    return None


def build_inputs(spec: ImageSpec, docker_dir: Path) -> List[Path]:
    """Every file the build of `spec` reads from the repository, in a fixed order."""
    if spec.source == "layer":
        return sorted(p for p in (docker_dir / "images" / spec.name).rglob("*") if p.is_file())
    script = "build-emulated-image.sh" if spec.source == "emulated" else "build-image.sh"
    inputs = [docker_dir / script, docker_dir / "finish.Dockerfile"]
    if spec.source in ("debian", "emulated"):
        image_dir = docker_dir / "images" / spec.name
        if image_dir.is_dir():
            inputs.extend(sorted(p for p in image_dir.rglob("*") if p.is_file()))
    return inputs


def content_hash(
    spec: ImageSpec, docker_dir: Path, images: Optional[Mapping[str, ImageSpec]] = None
) -> str:
    """sha256 over the spec's identity and the bytes of every build input (paths included);
    a layer image's also over its parent's hash, so a rebuilt parent rebuilds the layer.

    The mirror is not part of it: any mirror serves the same suite.
    """
    digest = hashlib.sha256()
    identity = json.dumps([spec.name, spec.source, spec.base], sort_keys=True)
    digest.update(identity.encode())
    if spec.parent is not None:
        table = IMAGES if images is None else images
        parent_hash = content_hash(table[spec.parent], docker_dir, table)
        digest.update(b"\0parent\0" + parent_hash.encode())
    for path in build_inputs(spec, docker_dir):
        rel = path.relative_to(docker_dir).as_posix()
        digest.update(b"\0file\0" + rel.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def image_tag(spec: ImageSpec, digest: str) -> str:
    return f"{IMAGE_REPOSITORY}/{spec.name}:{digest[:16]}"


# --------------------------------------------------------------------------- building


def build_command(
    spec: ImageSpec,
    docker_dir: Path,
    digest: str,
    env: Mapping[str, str] = os.environ,
    mirror: Optional[str] = None,
    parent_tag: Optional[str] = None,
) -> List[str]:
    """The build command for `spec`; ValueError when a source's input is missing.

    `build-image.sh` for bootstrapped and pulled images; a plain `docker build` of the image's
    Dockerfile for a layer (build-image.sh is an input of every parent's hash: teaching it
    layers would rebuild them all).
    """
    if spec.source == "layer":
        if not mirror or not parent_tag:
            raise ValueError(f"layer image {spec.name} needs its parent's tag and a Debian mirror")
        image_dir = docker_dir / "images" / spec.name
        return [
            "docker", "build", "--pull=false", "--rm", "--force-rm",
            "--build-arg", f"BASE={parent_tag}",
            "--build-arg", f"MIRROR={mirror}",
            "--label", f"{containers.LABEL_PREFIX}.image={spec.name}",
            "--label", f"{containers.LABEL_PREFIX}.source=layer",
            "--label", f"{HASH_LABEL}={digest}",
            "-t", image_tag(spec, digest),
            "-f", str(image_dir / "Dockerfile"), str(image_dir),
        ]  # fmt: skip
    if spec.source == "emulated":
        # A script of its own: build-image.sh is an input of every native image's hash, and
        # teaching it --arch would rebuild them all.
        if not mirror:
            raise ValueError(
                "no Debian mirror: the host's apt sources name none;"
                f" set {MIRROR_ENV} to a Debian archive URI"
            )
        return [
            "bash", str(docker_dir / "build-emulated-image.sh"),
            "--name", spec.name,
            "--tag", image_tag(spec, digest),
            "--hash", digest,
            "--arch", architectures.get(spec.machine).debian,
            "--mirror", mirror,
        ]  # fmt: skip
    cmd = [
        "bash", str(docker_dir / "build-image.sh"),
        "--name", spec.name,
        "--tag", image_tag(spec, digest),
        "--hash", digest,
        "--source", spec.source,
    ]  # fmt: skip
    if spec.source == "debian":
        if not mirror:
            raise ValueError(
                "no Debian mirror: the host's apt sources name none;"
                f" set {MIRROR_ENV} to a Debian archive URI"
            )
        cmd += ["--mirror", mirror]
    elif spec.source == "manylinux":
        registry = env.get(REGISTRY_ENV, "").strip().rstrip("/")
        if not registry:
            raise ValueError(
                f"{REGISTRY_ENV} is not set: name the registry that serves pypa's manylinux"
                " images (this repository names no registry host)"
            )
        cmd += ["--base", f"{registry}/{spec.base}"]
    else:
        raise ValueError(f"unknown image source {spec.source!r} (known: {', '.join(SOURCES)})")
    return cmd


def _inspect_image(tag: str) -> Optional[Dict[str, object]]:
    proc = subprocess.run(
        ["docker", "image", "inspect", tag], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    return data[0] if data else None


def image_is_current(inspect: Optional[Mapping[str, object]], digest: str) -> bool:
    """An existing image is reused only when its label carries the same content hash."""
    if not inspect:
        return False
    config = inspect.get("Config") or {}
    labels = (config.get("Labels") if isinstance(config, dict) else None) or {}
    return labels.get(HASH_LABEL) == digest


def current_image_tag(name: str) -> Optional[str]:
    """The tag of image `name` when it is already built from the present sources, else None.

    Never builds: for callers that only want to use an image the run has anyway.
    """
    docker_dir = find_docker_dir()
    spec = IMAGES.get(name)
    if docker_dir is None or spec is None:
        return None
    digest = content_hash(spec, docker_dir)
    tag = image_tag(spec, digest)
    return tag if image_is_current(_inspect_image(tag), digest) else None


def _run_logged(
    cmd: Sequence[str], log: Log, log_path: Path, timeout: float
) -> Tuple[int, List[str]]:
    """Run `cmd` with its whole output in `log_path`; only the build script's own progress
    lines and apt's errors go to `log`. (returncode, last lines)."""
    tail: List[str] = []
    deadline = time.monotonic() + timeout
    with (
        open(log_path, "w", encoding="utf-8") as out,
        subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            line = line.rstrip("\n")
            if line.startswith(("[build-image", "E: ")):
                log(line)
            tail = [*tail, line][-40:]
            if time.monotonic() > deadline:
                proc.kill()
                tail.append(f"(killed after {timeout:.0f}s)")
                break
        return proc.wait(), tail


# --------------------------------------------------------------------------- probing

_PROBE_SNIPPET = (
    "import json,sys,sysconfig;"
    "print(json.dumps({'version':'%d.%d.%d'%sys.version_info[:3],"
    "'implementation':sys.implementation.name,"
    "'debug':hasattr(sys,'gettotalrefcount'),"
    "'free_threaded':bool(sysconfig.get_config_var('Py_GIL_DISABLED')),"
    "'soabi':sysconfig.get_config_var('SOABI'),"
    "'executable':sys.executable}))"
)


def probe_script(globs: Sequence[str]) -> str:
    """A POSIX shell script printing `glibc <version>`, then `py <path> <json>` per interpreter."""
    snippet = _PROBE_SNIPPET.replace('"', '\\"')
    return (
        'echo "arch $(uname -m)"\n'
        "echo \"glibc $(getconf GNU_LIBC_VERSION 2>/dev/null | sed 's/^glibc //')\"\n"
        f"for p in {' '.join(globs)}; do\n"
        '  [ -x "$p" ] && [ ! -d "$p" ] || continue\n'
        f'  out=$("$p" -I -c "{snippet}" 2>/dev/null) && echo "py $p $out"\n'
        "done\n"
        "exit 0\n"  # a candidate that fails to run is no reason to fail the probe
    )


_DEBIAN_INTERPRETER = re.compile(r"^/usr/bin/python3\.\d+d?$")


def parse_probe_architecture(output: str) -> Optional[str]:
    """`uname -m` of the image, from the probe's `arch <machine>` line."""
    for line in output.splitlines():
        if line.startswith("arch "):
            return line[len("arch ") :].strip() or None
    return None


def parse_probe_output(
    image_name: str, spec: ImageSpec, output: str
) -> Tuple[Optional[str], Dict[str, Interpreter], List[str]]:
    """(glibc, interpreters by label, notes) from the probe's output.

    PyPy and free-threaded interpreters are kept only in the images made for them (their label,
    `pp3.11` or `3.14t`, is one the spec expects): elsewhere they are left out and said so in
    the notes; so is a second interpreter with the same label.
    """
    glibc: Optional[str] = None
    found: Dict[str, Interpreter] = {}
    notes: List[str] = []
    for line in output.splitlines():
        if line.startswith("glibc "):
            glibc = line[len("glibc ") :].strip() or None
            continue
        if not line.startswith("py "):
            continue
        _, path, payload = line.split(" ", 2)
        if spec.source == "debian" and not _DEBIAN_INTERPRETER.match(path):
            continue  # python3.11-config and the like
        try:
            info = json.loads(payload)
        except ValueError:
            continue
        interp = interpreter_from_probe(path, info, f"image:{image_name}")
        if interp is None:
            notes.append(f"{path}: {info.get('implementation')} is not CPython or PyPy, left out")
            continue
        if (interp.implementation != "cpython" or interp.free_threaded) and (
            interp.short not in spec.pythons
        ):
            kind = "free-threaded build" if interp.free_threaded else interp.implementation
            notes.append(f"{path}: {kind} ({interp.short}), left out: not an image for it")
            continue
        if interp.short in found:
            notes.append(f"{path}: same label {interp.short} as {found[interp.short].path}")
            continue
        found[interp.short] = interp
    return glibc, found, notes


def interpreter_from_probe(
    path: str, info: Mapping[str, object], source: str
) -> Optional[Interpreter]:
    """The Interpreter the probe's JSON describes; None for an implementation we don't test.

    The ABI is the wheel-tag interpreter part pip matches: `cp313`, `cp314t`, `cp314d`, `pp311`.
    """
    implementation = str(info.get("implementation"))
    if implementation not in ("cpython", "pypy"):
        return None
    version = str(info["version"])
    debug = bool(info.get("debug"))
    free_threaded = bool(info.get("free_threaded"))
    major, minor = version.split(".")[:2]
    prefix = "pp" if implementation == "pypy" else "cp"
    abi = f"{prefix}{major}{minor}" + ("t" if free_threaded else "") + ("d" if debug else "")
    return Interpreter(
        path=path,
        version=version,
        implementation=implementation,
        abi=abi,
        debug=debug,
        source=source,
        free_threaded=free_threaded,
        soabi=str(info["soabi"]) if info.get("soabi") else None,
    )


def probe_image(
    tag: str, spec: ImageSpec
) -> Tuple[Optional[str], Dict[str, Interpreter], List[str], Optional[str]]:
    """(glibc, interpreters, notes, architecture) of the built image."""
    argv = containers.run_argv(
        tag, ["-c", probe_script(spec.python_globs)], remove=True, entrypoint="/bin/sh"
    )
    # Under emulation every interpreter starts some 30 times slower.
    code, output = containers.run(argv, _PROBE_TIMEOUT * (10 if spec.emulated else 1))
    if code != 0:
        raise RuntimeError(f"probe of {tag} failed: {last_lines(output)}")
    return (*parse_probe_output(spec.name, spec, output), parse_probe_architecture(output))


# --------------------------------------------------------------------------- the entry point


def ensure_image(
    name: str,
    *,
    log: Log,
    images: Optional[Mapping[str, ImageSpec]] = None,
    docker_dir: Optional[Path] = None,
) -> ImageBuild:
    """Build `name` (or reuse it when its content hash matches) and probe it.

    Never raises for a failed build, a missing docker or a bad spec: the result has ok=False and
    the reason in `error`.
    """
    start = time.monotonic()
    table = IMAGES if images is None else images
    result = ImageBuild(name=name, tag=None, ok=False)

    def finish(error: Optional[str] = None) -> ImageBuild:
        result.seconds = round(time.monotonic() - start, 2)
        result.error = error
        result.ok = error is None
        if error:
            log(f"image {name}: {error}")
        return result

    spec = table.get(name)
    if spec is None:
        source = os.environ.get(SOURCE_ENV) or "debian"
        return finish(
            f"unknown image {name!r} for image source {source!r}"
            f" (known: {', '.join(table) or 'none'})"
        )
    result.source = spec.source
    usable, why = docker_status()
    if not usable:
        return finish(why)
    docker_dir = docker_dir or find_docker_dir()
    if docker_dir is None:
        return finish(f"docker/build-image.sh not found (set {DOCKER_DIR_ENV})")
    if spec.emulated:
        no_emulation = emulation.ensure_emulation(spec.machine, log=log)
        if no_emulation:
            return finish(no_emulation)
    parent_tag: Optional[str] = None
    if spec.parent is not None:
        parent = ensure_image(spec.parent, log=log, images=table, docker_dir=docker_dir)
        if not parent.ok:
            return finish(f"its parent image {spec.parent} is unavailable: {parent.error}")
        parent_tag = parent.tag
    try:
        digest = content_hash(spec, docker_dir, table)
        tag = image_tag(spec, digest)
        result.content_hash, result.tag = digest, tag
        # Two runners asking for the same image at once build it once.
        with cache.locked(_build_lock_path(tag)):
            if image_is_current(_inspect_image(tag), digest):
                result.cached = True
                log(f"image {name}: reusing {tag}")
            else:
                mirror = (
                    host_debian_mirror() if spec.source in ("debian", "layer", "emulated") else None
                )
                cmd = build_command(spec, docker_dir, digest, mirror=mirror, parent_tag=parent_tag)
                build_log = Path(tempfile.gettempdir()) / f"sky-rs-image-{name}.log"
                result.build_log = str(build_log)
                log(f"image {name}: building {tag} (log: {build_log})")
                timeout = _LAYER_BUILD_TIMEOUT if spec.source == "layer" else _BUILD_TIMEOUT
                code, tail = _run_logged(cmd, log, build_log, timeout)
                if code != 0:
                    return finish(
                        f"build failed (exit {code}): {telling_line(tail, _BUILD_FAILURE)}"
                        f" -- log: {build_log}"
                    )
                _remove_outdated(spec, tag, log)
        inspect = _inspect_image(tag)
        if not image_is_current(inspect, digest):
            return finish(f"build finished but {tag} is missing or unlabelled")
        assert inspect is not None
        size = inspect.get("Size")
        result.size_bytes = int(size) if isinstance(size, (int, float)) else None
        glibc, pythons, notes, result.architecture = probe_image(tag, spec)
    except (OSError, ValueError, RuntimeError, subprocess.SubprocessError) as exc:
        return finish(str(exc) or type(exc).__name__)
    for note in notes:
        log(f"image {name}: {note}")
    if result.architecture != spec.machine:
        return finish(
            f"{tag} runs as {result.architecture or 'an unknown architecture'} (uname -m),"
            f" not {spec.machine}"
        )
    result.glibc, result.pythons = glibc, pythons
    result.missing_pythons = tuple(label for label in spec.pythons if label not in pythons)
    if result.missing_pythons:
        log(f"image {name}: expected interpreters absent: {', '.join(result.missing_pythons)}")
    if not pythons:
        return finish(f"no usable CPython found in {tag}")
    return finish()


def _remove_outdated(spec: ImageSpec, current: str, log: Log) -> None:
    """Drop this image's builds from older inputs (a few hundred MB each); in-use ones stay."""
    repository = f"{IMAGE_REPOSITORY}/{spec.name}"
    proc = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repository],
        capture_output=True,
        text=True,
        timeout=60,
    )
    for tag in proc.stdout.split():
        if tag != current and tag.startswith(repository + ":"):
            removed = subprocess.run(["docker", "rmi", tag], capture_output=True, timeout=120)
            if removed.returncode == 0:
                log(f"image {spec.name}: removed outdated {tag}")


def _build_lock_path(tag: str) -> Path:
    return Path(tempfile.gettempdir()) / ("sky-rs-image-" + re.sub(r"[^\w.-]", "_", tag) + ".lock")


def format_builds(builds: Sequence[ImageBuild]) -> str:
    """A plain-text table of image builds (the CLI's and the report's summary)."""
    rows = [("image", "ok", "cached", "seconds", "size", "arch", "glibc", "pythons")]
    for b in builds:
        size = f"{b.size_bytes / 1e6:.0f} MB" if b.size_bytes else "-"
        pythons = ", ".join(f"{k} ({v.version})" for k, v in sorted(b.pythons.items()))
        if b.missing_pythons:
            pythons += f"; absent: {', '.join(b.missing_pythons)}"
        status = "yes" if b.ok else f"no: {b.error}"
        rows.append(
            (b.name, status, "yes" if b.cached else "no", f"{b.seconds:.1f}", size,
             b.architecture or "-", b.glibc or "-", pythons or "-")
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m sky_matrix.docker.images [status | build [--json] [NAME...]]` (no NAME: every
    native image)."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args else "build"
    if command == "status":
        usable, why = docker_status()
        print("docker: usable" if usable else f"docker: unusable: {why}")
        print(f"images ({os.environ.get(SOURCE_ENV) or 'debian'}): {', '.join(IMAGES)}")
        print(f"debian mirror: {host_debian_mirror() or 'none found'}")
        return 0 if usable else 1
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    if command != "build":
        print(
            "usage: python -m sky_matrix.docker.images [status | build [--json] [NAME...]]",
            file=sys.stderr,
        )
        return 2
    # Emulated images are built when named (as their cells run when named): hours of qemu.
    names = args or [name for name, spec in IMAGES.items() if not spec.emulated]
    builds = [ensure_image(n, log=lambda line: print(line, file=sys.stderr)) for n in names]
    if as_json:
        print(json.dumps([b.to_json() for b in builds], indent=1))
    else:
        print(format_builds(builds))
    return 0 if all(b.ok for b in builds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
