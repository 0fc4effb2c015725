"""Environment overrides, processes, ports, rlimits and directories on both backends."""

from __future__ import annotations

import errno
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

if TYPE_CHECKING:
    from conftest import Parity

CPU_VAR = "SKYPILOT_POD_CPU_CORE_LIMIT"
GB_VAR = "SKYPILOT_POD_MEMORY_GB_LIMIT"
BYTES_VAR = "SKYPILOT_POD_MEMORY_BYTES_LIMIT"

NUMBER_TEXTS = [
    "1",
    "2",
    "4.0",
    "4.99",
    "0.5",
    "0",
    "-0",
    "-1",
    "-2.5",
    "1e3",
    "1E3",
    "1e-3",
    "1e400",
    "-1e400",
    "1e308",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "Infinity",
    "-inf",
    "+inf",
    " 3 ",
    "\t3\n",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "\u0663",
    "\u0663.\u0665",
    "\uff14",
    "\u00a03\u2003",
    "0x10",
    "1/2",
    "",
    " ",
    "abc",
    "3 cpus",
    "10" * 40,
    "9" * 400,
    "1073741824",
    "1.5e9",
    "2**30",
    "\u00bd",
    "١٢٣",
    "𝟗",
    # ASCII corners of float()'s grammar, which the Rust core parses itself.
    "\x1c3",
    "3\x1f",
    "\x0b3\x0c\r",
    "1_0.2_5e1_0",
    "1._5",
    "1_.5",
    "1e_5",
    "1.",
    ".5",
    ".",
    "1e",
    "+nan",
    "iNfInItY",
    "1e30",
    "18446744073709551616",
    "18446744073709551615.9",
]
env_texts = st.one_of(
    st.sampled_from(NUMBER_TEXTS),
    st.text(max_size=12).map(lambda text: text.replace("\x00", "")),
    st.floats().map(repr),
    st.integers().map(str),
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in (CPU_VAR, GB_VAR, BYTES_VAR):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch


def with_env(values: dict) -> pytest.MonkeyPatch:
    patch = pytest.MonkeyPatch()
    for name in (CPU_VAR, GB_VAR, BYTES_VAR):
        if name in values:
            patch.setenv(name, values[name])
        else:
            patch.delenv(name, raising=False)
    return patch


@given(value=env_texts)
def test_cpu_count_override(parity: Parity, value: str) -> None:
    patch = with_env({CPU_VAR: value})
    try:
        outcome = parity.same("get_cpu_count")
    finally:
        patch.undo()
    if outcome.ok:
        assert isinstance(outcome.value, int) and outcome.value >= 1
    else:
        assert type(outcome.value) is ValueError, outcome.describe()


@given(gb=st.one_of(st.none(), env_texts), size=st.one_of(st.none(), env_texts))
def test_mem_size_overrides(parity: Parity, gb: object, size: object) -> None:
    values = {name: value for name, value in ((GB_VAR, gb), (BYTES_VAR, size)) if value is not None}
    patch = with_env(values)
    try:
        outcome = parity.same("get_mem_size_gb")
    finally:
        patch.undo()
    if outcome.ok:  # a tiny positive byte count may round to 0.0 GiB
        assert isinstance(outcome.value, float) and outcome.value >= 0
    else:
        assert type(outcome.value) is ValueError, outcome.describe()


@given(value=env_texts, cloud=st.one_of(st.none(), st.sampled_from(["kubernetes", "gcp"])))
def test_env_does_not_change_thread_counts(parity: Parity, value: str, cloud: object) -> None:
    """get_parallel_threads uses os.cpu_count(), never the pod override."""
    patch = with_env({CPU_VAR: value})
    try:
        parity.same("get_parallel_threads", cloud)
        parity.same("get_max_workers_for_file_mounts", {}, cloud)
    finally:
        patch.undo()


def test_cpu_count_of_the_interpreter(tmp_path: Path) -> None:
    """Python 3.13+ honours -X cpu_count and PYTHON_CPU_COUNT; both backends must follow."""
    script = (
        "import json, sky_rs.fallback as p, sky_rs._native as n\n"
        "print(json.dumps([[p.get_parallel_threads(c), n.get_parallel_threads(c)]"
        " for c in (None, 'kubernetes')]))\n"
    )
    for extra_args, extra_env in (
        (["-X", "cpu_count=3"], {}),
        ([], {"PYTHON_CPU_COUNT": "7"}),
        (["-X", "cpu_count=default"], {"PYTHON_CPU_COUNT": "9"}),
    ):
        env = {**os.environ, **extra_env}
        result = subprocess.run(
            [sys.executable, *extra_args, "-c", script],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        for python_value, native_value in json.loads(result.stdout):
            assert python_value == native_value, (extra_args, extra_env, result.stdout)


def test_system_answers_without_overrides(parity: Parity, clean_env: pytest.MonkeyPatch) -> None:
    cpus = parity.same("get_cpu_count")
    assert cpus.ok, cpus.describe()
    memory = parity.same("get_mem_size_gb")
    assert memory.ok, memory.describe()


# ------------------------------------------------------------------ is_process_alive

pids = st.one_of(
    st.integers(-(2**40), 2**40),
    st.sampled_from(
        [
            0,
            1,
            -1,
            2,
            os.getpid(),
            os.getppid(),
            2**31 - 1,
            2**31,
            2**63,
            2**64,
            -(2**31),
            4194304,
            4194305,
            32768,
        ]
    ),
    st.booleans(),
)


@given(pid=pids)
def test_is_process_alive_pids(parity: Parity, pid: int) -> None:
    parity.same_settled("is_process_alive", pid)


@given(
    pid=st.one_of(
        st.floats(),
        st.text(max_size=4),
        st.none(),
        st.binary(max_size=2),
        st.lists(st.integers(), max_size=1),
    )
)
def test_is_process_alive_wrong_types(parity: Parity, pid: object) -> None:
    parity.raises(TypeError, "is_process_alive", pid)


class PidSub(int):
    def __index__(self) -> int:
        return 0

    def __int__(self) -> int:
        return 0

    def __le__(self, other: object) -> bool:
        return True


def test_is_process_alive_int_subclass(parity: Parity) -> None:
    parity.returns(True, "is_process_alive", PidSub(os.getpid()))


def wait_for_state(pid: int, state: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        if stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == state.encode():
            return
        time.sleep(0.01)
    pytest.fail(f"process {pid} never reached state {state}")


def test_is_process_alive_zombie_and_dead(parity: Parity) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for_state(child.pid, "Z")  # exited, not yet reaped
        parity.returns(False, "is_process_alive", child.pid)
    finally:
        child.wait()
    parity.returns(False, "is_process_alive", child.pid)  # reaped: no such process


def test_is_process_alive_sleeping_child(parity: Parity) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        wait_for_state(child.pid, "S")
        parity.returns(True, "is_process_alive", child.pid)
    finally:
        child.kill()
        child.wait()


STATES = ["R", "S", "D", "Z", "T", "t", "X", "x", "I", "W", "P", "K", "", " ", "z", "ZZ"]


@given(
    comm=st.text(st.sampled_from(["a", " ", ")", "(", "Z", "\n", "\udcff", "é"]), max_size=10),
    state=st.sampled_from(STATES),
    gap=st.sampled_from([" ", "", "  ", "\t", "\n", "\x0b", "\x0c", "\r", " \t ", "\x1c", "\xa0"]),
    tail=st.sampled_from([" 1 2 3\n", "", "\n", " 0"]),
    which=st.sampled_from(["self", "dead"]),
    raw=st.one_of(
        st.none(),
        st.binary(max_size=16),
        st.sampled_from([b"", b"1 (x", b"1 (x)", b"1 (x) ", b"\n", b"(Z)", b")Z"]),
    ),
)
def test_is_process_alive_reads_stat(
    parity: Parity,
    tmp_path_factory: pytest.TempPathFactory,
    comm: str,
    state: str,
    gap: str,
    tail: str,
    which: str,
    raw: object,
) -> None:
    """The state after the *last* ')' decides; garbled files and missing ones ask kill(pid, 0)."""
    root = tmp_path_factory.mktemp("procroot")
    pid = os.getpid() if which == "self" else 2**31 - 2
    stat_dir = root / "proc" / str(pid)
    stat_dir.mkdir(parents=True)
    content = f"{pid} ({comm}){gap}{state}{tail}".encode("utf-8", "surrogateescape")
    (stat_dir / "stat").write_bytes(content if raw is None else raw)
    parity.same("_is_process_alive_at", str(root), pid)


def test_is_process_alive_without_proc(parity: Parity, tmp_path: Path) -> None:
    parity.returns(True, "_is_process_alive_at", str(tmp_path), os.getpid())
    parity.returns(False, "_is_process_alive_at", str(tmp_path), 2**31 - 2)
    (tmp_path / "proc" / str(os.getpid())).mkdir(parents=True)
    (tmp_path / "proc" / str(os.getpid()) / "stat").mkdir()  # a directory: unreadable as a file
    parity.returns(True, "_is_process_alive_at", str(tmp_path), os.getpid())
    parity.raises(ValueError, "_is_process_alive_at", str(tmp_path), 0)


# ------------------------------------------------------------------ find_free_port

ports = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-2, 70000),
    st.sampled_from([0, 1, 1023, 1024, 65534, 65535, 65536, -1, 2**16, 2**31, 2**64]),
)


@given(start=ports)
def test_find_free_port_ranges(parity: Parity, start: int) -> None:
    outcome = parity.same_settled("find_free_port", start)
    if outcome.ok:
        assert start <= outcome.value < 65535 or (start == 0 and outcome.value == 0)


@given(start=st.one_of(st.floats(), st.text(max_size=5), st.none(), st.binary(max_size=2)))
def test_find_free_port_wrong_types(parity: Parity, start: object) -> None:
    parity.raises(TypeError, "find_free_port", start)


def test_find_free_port_held_ports_are_skipped(parity: Parity) -> None:
    held = []
    try:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.append(listener)
        listener.bind(("", 0))
        listener.listen(1)
        start = listener.getsockname()[1]
        if start > 65000:
            pytest.fail(f"ephemeral port {start} is too close to 65535 for this test")
        for port in range(start + 1, start + 4):  # bound, not listening: still taken
            extra = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(extra)
            try:
                extra.bind(("", port))
            except OSError:
                pass
        outcome = parity.same_settled("find_free_port", start)
        assert outcome.ok and outcome.value >= start + 4, outcome.describe()
    finally:
        for sock in held:
            sock.close()


def _time_wait_port() -> int:
    """A port whose only socket is a connection in TIME_WAIT (the server side closed first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        # The listener itself may reuse; the question is what a fresh probe sees.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            served, _ = listener.accept()
            served.close()  # the active close: port's side goes to TIME_WAIT
            client.recv(1)  # the FIN arrived; closing now completes the handshake
    return port


def test_find_free_port_skips_a_port_in_time_wait(parity: Parity) -> None:
    port = _time_wait_port()
    if port > 65000:
        pytest.fail(f"ephemeral port {port} is too close to 65535 for this test")
    # The precondition, checked: a socket without SO_REUSEADDR cannot bind it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain:
        with pytest.raises(OSError) as refused:
            plain.bind(("", port))
    assert refused.value.errno == errno.EADDRINUSE
    outcome = parity.same_settled("find_free_port", port)
    assert outcome.ok and outcome.value > port, outcome.describe()


@pytest.fixture
def restore_nofile() -> Iterator[tuple]:
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield limits
    resource.setrlimit(resource.RLIMIT_NOFILE, limits)


def lowest_free_fd() -> int:
    fd = os.dup(0)
    os.close(fd)
    return fd


def test_find_free_port_socket_creation_fails(parity: Parity, restore_nofile: tuple) -> None:
    """EMFILE from socket() is raised, not skipped."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free_fd(), restore_nofile[1]))
    outcome = parity.same("find_free_port", 20000)
    resource.setrlimit(resource.RLIMIT_NOFILE, restore_nofile)
    assert not outcome.ok and type(outcome.value) is OSError, outcome.describe()
    assert outcome.value.errno == 24, outcome.describe()  # EMFILE


# ------------------------------------------------------------------ file mounts and directories


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mounts")
    for count in (0, 1, 7, 40, 333):
        directory = root / f"d{count}"
        directory.mkdir()
        for i in range(count):
            (directory / (f".h{i}" if i % 3 == 0 else f"f{i}")).write_bytes(b"")
    (root / "file").write_bytes(b"x")
    os.symlink(root / "d40", root / "link-to-d40")
    os.symlink(root / "nowhere", root / "dangling")
    os.symlink(root / "loop", root / "loop")
    return root


SOURCE_NAMES = [
    "d0",
    "d1",
    "d7",
    "d40",
    "d333",
    "file",
    "link-to-d40",
    "dangling",
    "missing",
    "loop",
    "file/under",
    "d7/",
]


def source_forms(tree: Path) -> st.SearchStrategy:
    def forms(name: str) -> st.SearchStrategy:
        path = tree / name if not name.endswith("/") else Path(str(tree / name) + "/")
        return st.sampled_from([str(path), os.fsencode(path), path])

    return st.one_of(
        st.sampled_from(SOURCE_NAMES).flatmap(forms),
        st.sampled_from(["gs://bucket/path", "s3://b", "~", "~/x", "", "r2://x"]),
    )


@given(data=st.data())
def test_max_workers_mounts(parity: Parity, tree: Path, data: st.DataObject) -> None:
    sources = data.draw(st.lists(source_forms(tree), max_size=5))
    cloud = data.draw(st.one_of(st.none(), st.sampled_from(["kubernetes", "KUBERNETES", "aws"])))
    mounts = {f"~/m{i}": source for i, source in enumerate(sources)}
    parity.same("get_max_workers_for_file_mounts", mounts, cloud)


@given(data=st.data())
def test_estimate_fd_for_directory(parity: Parity, tree: Path, data: st.DataObject) -> None:
    parity.same("estimate_fd_for_directory", data.draw(source_forms(tree)))


@given(
    bad=st.one_of(
        st.integers(),
        st.booleans(),
        st.none(),
        st.floats(),
        st.binary(max_size=3).map(bytearray),
        st.lists(st.text(), max_size=1),
    )
)
def test_path_arguments_wrong_types(parity: Parity, bad: object) -> None:
    parity.raises(TypeError, "estimate_fd_for_directory", bad)
    parity.raises(TypeError, "get_max_workers_for_file_mounts", {"~/x": bad})
    parity.raises(TypeError, "hash_file", bad, "sha256")
    parity.raises(TypeError, "read_last_n_lines", bad, 1)


@pytest.mark.parametrize("soft", [101, 150, 500, 1023, 1024, 4096])
def test_max_workers_under_low_rlimit(
    parity: Parity, tree: Path, restore_nofile: tuple, soft: int
) -> None:
    if lowest_free_fd() >= soft:
        pytest.fail(f"this process already holds {lowest_free_fd()} fds; cannot lower to {soft}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, restore_nofile[1]))
    try:
        for mounts in ({}, {"a": str(tree / "d7")}, {"a": str(tree / "d333"), "b": "gs://x"}):
            for cloud in (None, "kubernetes"):
                parity.same("get_max_workers_for_file_mounts", mounts, cloud)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, restore_nofile)


def test_low_fd_warning_once_per_process_across_backends(
    parity: Parity, restore_nofile: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    parity.python._low_fd_warning_issued = False  # fresh, as in a new process
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, restore_nofile[1]))
    try:
        with caplog.at_level(logging.WARNING, logger="sky_rs"):
            native = parity.native.get_max_workers_for_file_mounts({})
            python = parity.python.get_max_workers_for_file_mounts({})
            parity.native.get_max_workers_for_file_mounts({})
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, restore_nofile)
    assert native == python
    warnings = [r for r in caplog.records if r.name == "sky_rs" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "512" in warnings[0].getMessage()


class OddMapping:
    """Looks like a dict but is not a Mapping."""

    def values(self) -> list:
        return []

    def items(self) -> list:
        return []


def test_max_workers_mapping_kinds(parity: Parity, tree: Path) -> None:
    from collections import OrderedDict
    from types import MappingProxyType

    source = str(tree / "d40")
    parity.same("get_max_workers_for_file_mounts", MappingProxyType({"a": source}))
    parity.same("get_max_workers_for_file_mounts", OrderedDict(a=source))
    parity.raises(TypeError, "get_max_workers_for_file_mounts", OddMapping())
    parity.raises(TypeError, "get_max_workers_for_file_mounts", [("a", source)])
    parity.raises(TypeError, "get_max_workers_for_file_mounts", {"a": source}, b"aws")
