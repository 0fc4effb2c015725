"""Sessions of skypilot-rust. They only declare; the work is done by `sky_matrix` (matrix/).

nox -s matrix                 every suite x interpreter x platform found
nox -s parity -- -k 3.11      one suite; arguments after `--` go to the runner
nox -s matrix --install-only  wheel, test environments and images, no test run
nox -s tests                  the project's own tests (what CI runs)
"""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"
# uv installs in a fraction of pip's time (a second run starts its tests sooner); pip otherwise.
nox.options.default_venv_backend = "uv|virtualenv"

MATURIN = "maturin>=1.7,<2"
RUFF = "ruff>=0.6"
IMPORT_LINTER = "import-linter>=2.1"  # the layers of sky_matrix (docs/internals.md)
LINT_PATHS = ("python", "tests", "matrix", "noxfile.py")
APPLE_TARGETS = ("aarch64-apple-darwin", "x86_64-apple-darwin")
RELEASE_TARGETS = ("x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu", *APPLE_TARGETS)
SELF_TEST_PATHS = (
    "tests/compat/parity",
    "tests/compat/dispatcher",
    "tests/compat/cgroup",
    "matrix/tests",
)


def _install_runner(session: nox.Session, *extras: str) -> None:
    spec = f"./matrix[{','.join(extras)}]" if extras else "./matrix"
    session.install(MATURIN, spec)


def _matrix(session: nox.Session, *runner_args: str) -> None:
    """Install the runner; prepare (also under --install-only), then run the cells."""
    _install_runner(session)
    args = [*runner_args, *session.posargs]
    session.run_install("python", "-m", "sky_matrix", "run", "--prepare-only", *args)
    session.run("python", "-m", "sky_matrix", "run", *args)


@nox.session
def build(session: nox.Session) -> None:
    """The host wheel, built once and reused while the sources are unchanged."""
    _install_runner(session)
    session.run("python", "-m", "sky_matrix", "build", *session.posargs)


@nox.session
def matrix(session: nox.Session) -> None:
    """Every suite on every interpreter and platform found."""
    _matrix(session)


@nox.session
def parity(session: nox.Session) -> None:
    _matrix(session, "--suite", "parity")


@nox.session
def cgroup(session: nox.Session) -> None:
    _matrix(session, "--suite", "cgroup")


@nox.session
def eperm(session: nox.Session) -> None:
    _matrix(session, "--suite", "eperm")


@nox.session
def leaks(session: nox.Session) -> None:
    _matrix(session, "--suite", "leaks")


@nox.session
def stability(session: nox.Session) -> None:
    _matrix(session, "--suite", "stability")


@nox.session
def lint(session: nox.Session) -> None:
    session.install(RUFF, IMPORT_LINTER)
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)
    _lint_imports(session, {"PYTHONPATH": "matrix/src"})


def _lint_imports(session: nox.Session, env: dict | None = None) -> None:
    """A layer importing one above it, or any import cycle between layers, fails here."""
    session.run("lint-imports", "--no-cache", "matrix/pyproject.toml", env=env)


@nox.session
def tests(session: nox.Session) -> None:
    """Rust checks and tests, then the Python suites against the built wheel, from a temp dir."""
    with session.chdir("rust"):
        session.run("cargo", "fmt", "--all", "--check", external=True)
        session.run(
            "cargo", "clippy", "--workspace", "--all-targets", "--", "-D", "warnings",
            external=True,
        )  # fmt: skip
        # macOS builds are checked here too (clippy needs no Apple linker or SDK).
        for target in APPLE_TARGETS:
            _require_rust_target(session, target)
            session.run(
                "cargo", "clippy", "--workspace", "--all-targets", "--target", target,
                "--", "-D", "warnings", external=True,
            )  # fmt: skip
        if shutil.which("cargo-nextest"):
            session.run("cargo", "nextest", "run", "--workspace", external=True)
        else:
            session.run("cargo", "test", "--workspace", external=True)
    session.install(RUFF, IMPORT_LINTER)
    session.run("ruff", "check", *LINT_PATHS)
    _install_runner(session, "test", "soak", "bench")
    _lint_imports(session)
    session.install("-r", "tests/requirements.txt")
    _install_built_wheel(session)
    session.run(
        "python", "-m", "sky_matrix", "pytest", *SELF_TEST_PATHS,
        "--", "-n", "auto", "-m", "not live", "--timeout=900", *session.posargs,
    )  # fmt: skip
    # Deterministic figures of the built wheel against the committed baseline (bench/counts.py):
    # +5 % instructions or one more system call per call fails. No timing is asserted.
    session.run(
        "python", "-m", "sky_matrix.bench", "--check", "--small",
        "--baseline", "matrix/src/sky_matrix/bench/counts_baseline.json",
    )  # fmt: skip


def _require_rust_target(session: nox.Session, target: str) -> None:
    """Install a rustup target when missing; an error (never a skip) when that is impossible."""
    if shutil.which("rustup") is None:
        session.error(f"rustup is not on PATH: cannot install the Rust target {target}")
    installed = session.run(
        "rustup", "target", "list", "--installed", external=True, silent=True
    )  # fmt: skip
    if target in str(installed).split():
        return
    try:
        session.run("rustup", "target", "add", target, external=True)
    except nox.command.CommandFailed:
        session.error(f"cannot install the Rust target {target} (`rustup target add {target}`)")


def _install_built_wheel(session: nox.Session) -> None:
    """The cached host wheel, installed --no-index into this session (also under --install-only)."""
    built = session.run_install("python", "-m", "sky_matrix", "build", silent=True)
    wheel = str(built).strip().splitlines()[-1]
    session.install("--no-index", "--force-reinstall", "--no-deps", wheel)


@nox.session
def soak(session: nox.Session) -> None:
    """Stability soak (2 min by default): nox -s soak -- --duration 24h [--platform docker:sid]."""
    _install_runner(session, "soak")
    _install_built_wheel(session)
    session.run("python", "-m", "sky_matrix.soak", *session.posargs)


@nox.session(name="leak-canaries")
def leak_canaries(session: nox.Session) -> None:
    """Build the leak-canary wheel and prove every leak detector catches its canary."""
    _install_runner(session)
    session.run("python", "-m", "sky_matrix.leaks", *session.posargs)


@nox.session(python="3.11")  # hashlib.file_digest, the bench's yardstick, needs 3.11+
def bench(session: nox.Session) -> None:
    """Rust vs Python, interleaved in one process: medians, p99, ratios, peak memory."""
    _install_runner(session, "bench")
    _install_built_wheel(session)
    session.run("python", "-m", "sky_matrix.bench", *session.posargs)


@nox.session
def coverage(session: nox.Session) -> None:
    """Rust and Python line coverage of the parity suite, as evidence for the sign-off."""
    _install_runner(session)
    session.install("-r", "tests/requirements.txt", "coverage>=7")
    session.run("python", "-m", "sky_matrix.signoff.coverage_run", *session.posargs)


@nox.session(name="release-check")
def release_check(session: nox.Session) -> None:
    """Build the sdist, the four release wheels (Linux x86_64/aarch64, macOS arm64/x86_64) with
    zig and the pure-Python wheel, and audit them: twine check, tags, ELF/Mach-O facts,
    auditwheel, abi3audit; the pure wheel's files against the binary ones, and pip's choice of
    wheel per interpreter and platform (offline, `pip install --dry-run --report`)."""
    _install_runner(session, "release")
    for target in RELEASE_TARGETS:
        _require_rust_target(session, target)
    session.run("python", "-m", "sky_matrix.signoff.wheels", "--build", *session.posargs)


@nox.session
def signoff(session: nox.Session) -> None:
    """The release checklist decided from evidence: SIGNOFF.md and signoff.json."""
    _install_runner(session)
    session.run("python", "-m", "sky_matrix.signoff", *session.posargs)
