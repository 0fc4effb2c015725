"""Images: the host's apt mirror, content hashing, image selection and probing, docker status."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest
from matrix_helpers import project_root

from sky_matrix.docker import images
from sky_matrix.docker.images import (
    DEBIAN_IMAGES,
    LAYER_IMAGES,
    MANYLINUX_IMAGES,
    AptSource,
    ImageBuild,
    ImageSpec,
    build_command,
    build_inputs,
    choose_debian_mirror,
    content_hash,
    host_apt_source_files,
    host_debian_mirror,
    image_is_current,
    image_tag,
    interpreter_from_probe,
    parse_deb822_sources,
    parse_one_line_sources,
    parse_probe_output,
    probe_script,
    select_images,
)

REPO_DOCKER_DIR = project_root() / "docker"

# What a Debian 12 host in a cloud VM carries (deb822), with the host names made up.
DEB822_SAMPLE = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""

ONE_LINE_SAMPLE = """\
# the main archive
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://old.example/debian bullseye main contrib
deb-src http://old.example/debian bullseye main
deb http://old.example/debian-security bullseye-security main
"""  # noqa: E501


def test_one_line_sources_drop_comments_and_options() -> None:
    sources = parse_one_line_sources(ONE_LINE_SAMPLE)
    assert [s.types for s in sources] == [("deb",), ("deb-src",), ("deb",)]
    assert sources[0] == AptSource(
        ("deb",), ("http://old.example/debian",), ("bullseye",), ("main", "contrib")
    )


def test_deb822_sources_read_stanzas_and_skip_comment_lines() -> None:
    sources = parse_deb822_sources(DEB822_SAMPLE)
    assert len(sources) == 2
    assert sources[0].uris == ("http://mirror.example/debian",)
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[1].suites == ("bookworm-security",)
    assert all(s.enabled for s in sources)


def test_deb822_enabled_no_and_continuation_lines() -> None:
    text = (
        "Types: deb\nURIs: http://a.example/debian\nSuites: trixie\nEnabled: no\n\n"
        "Types: deb deb-src\nURIs: http://b.example/debian\n"
        "Suites: trixie\n trixie-updates\nComponents: main\n"
    )
    first, second = parse_deb822_sources(text)
    assert not first.enabled
    assert second.types == ("deb", "deb-src")
    assert second.suites == ("trixie", "trixie-updates")


def test_mirror_is_the_main_archive_not_security_nor_third_party() -> None:
    third_party = AptSource(("deb",), ("https://repo.example/node_20.x",), ("nodistro",), ("main",))
    security = parse_deb822_sources(DEB822_SAMPLE)[1]
    disabled = AptSource(("deb",), ("http://off.example/debian",), ("sid",), (), enabled=False)
    source_only = AptSource(("deb-src",), ("http://src.example/debian",), ("sid",), ())
    main = parse_deb822_sources(DEB822_SAMPLE)[0]
    assert choose_debian_mirror([third_party, security, disabled, source_only, main]) == (
        "http://mirror.example/debian"
    )
    assert choose_debian_mirror([third_party, security]) is None
    assert choose_debian_mirror(parse_one_line_sources(ONE_LINE_SAMPLE)) == (
        "http://old.example/debian"
    )


def _apt_tree(root: Path, files: Dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "etc/apt" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_host_sources_in_apt_order_and_disabled_files_ignored(tmp_path: Path) -> None:
    root = _apt_tree(
        tmp_path,
        {
            "sources.list.d/nodesource.sources.disabled-by-admin": DEB822_SAMPLE.replace(
                "mirror.example", "wrong.example"
            ),
            "sources.list.d/b-debian.sources": DEB822_SAMPLE,
            "sources.list.d/a-other.list": "deb http://third.example/apt stable-ish main\n",
        },
    )
    names = [p.name for p in host_apt_source_files(root)]
    assert names == ["a-other.list", "b-debian.sources"]
    assert host_debian_mirror(root, env={}) == "http://mirror.example/debian"


def test_sources_list_comes_first(tmp_path: Path) -> None:
    root = _apt_tree(
        tmp_path,
        {"sources.list": ONE_LINE_SAMPLE, "sources.list.d/debian.sources": DEB822_SAMPLE},
    )
    assert host_debian_mirror(root, env={}) == "http://old.example/debian"


def test_mirror_override_and_none_found(tmp_path: Path) -> None:
    assert host_debian_mirror(tmp_path, env={}) is None
    env = {images.MIRROR_ENV: "http://override.example/debian/"}
    assert host_debian_mirror(tmp_path, env=env) == "http://override.example/debian"


# ---------------------------------------------------------------- hashing and tags


def _docker_tree(root: Path) -> Path:
    docker = root / "docker"
    for name in ("bullseye", "sid"):
        (docker / "images" / name).mkdir(parents=True)
        (docker / "images" / name / "suite").write_text(name + "\n")
        (docker / "images" / name / "packages").write_text("python3\n")
    (docker / "build-image.sh").write_text("#!/bin/sh\n")
    (docker / "finish.Dockerfile").write_text("FROM x\n")
    return docker


def test_content_hash_follows_every_build_input(tmp_path: Path) -> None:
    docker = _docker_tree(tmp_path)
    bullseye, sid = DEBIAN_IMAGES["bullseye"], DEBIAN_IMAGES["sid"]
    first = content_hash(bullseye, docker)
    assert content_hash(bullseye, docker) == first  # deterministic
    assert content_hash(sid, docker) != first  # the image's identity counts

    (docker / "images/sid/packages").write_text("python3\npython3.14\n")
    assert content_hash(bullseye, docker) == first  # another image's inputs don't
    for rel in ("images/bullseye/packages", "finish.Dockerfile", "build-image.sh"):
        before = content_hash(bullseye, docker)
        with open(docker / rel, "a") as handle:
            handle.write("# changed\n")
        assert content_hash(bullseye, docker) != before, rel


def test_content_hash_of_the_repository_images() -> None:
    digests = {name: content_hash(spec, REPO_DOCKER_DIR) for name, spec in DEBIAN_IMAGES.items()}
    assert len(set(digests.values())) == len(digests)
    tag = image_tag(DEBIAN_IMAGES["sid"], digests["sid"])
    assert tag == f"sky-rs-matrix/sid:{digests['sid'][:16]}"


def test_image_is_current_only_with_the_same_hash_label() -> None:
    labelled = {"Config": {"Labels": {images.HASH_LABEL: "abc"}}}
    assert image_is_current(labelled, "abc")
    assert not image_is_current(labelled, "abd")
    assert not image_is_current({"Config": {"Labels": None}}, "abc")
    assert not image_is_current(None, "abc")


# ---------------------------------------------------------------- sources of images


def test_select_images_by_source() -> None:
    assert list(select_images(env={})) == [
        "bullseye", "bookworm", "trixie", "sid", "sid-pypy3", "sid-3.13t", "bookworm-arm64",
    ]  # fmt: skip
    assert select_images(env={images.SOURCE_ENV: "manylinux"}) == MANYLINUX_IMAGES
    debian = select_images("Debian", env={images.SOURCE_ENV: "manylinux"})
    assert debian == {**DEBIAN_IMAGES, **LAYER_IMAGES, **images.EMULATED_IMAGES}
    assert select_images(env={images.SOURCE_ENV: "nonsense"}) == {}


def test_debian_specs_match_the_issue() -> None:
    expected = {
        "bullseye": ("2.31", ("3.9",)),
        "bookworm": ("2.36", ("3.11",)),
        "trixie": ("2.41", ("3.13",)),
        "sid": ("2.43", ("3.13", "3.14", "3.14d", "3.15")),
    }
    assert {n: (s.glibc, s.pythons) for n, s in DEBIAN_IMAGES.items()} == expected
    for name in DEBIAN_IMAGES:
        suite = (REPO_DOCKER_DIR / "images" / name / "suite").read_text().strip()
        assert suite == name


def test_build_command_debian_needs_a_mirror(tmp_path: Path) -> None:
    spec = DEBIAN_IMAGES["trixie"]
    with pytest.raises(ValueError, match="no Debian mirror"):
        build_command(spec, tmp_path, "f" * 64, env={}, mirror=None)
    cmd = build_command(spec, tmp_path, "f" * 64, env={}, mirror="http://m.example/debian")
    assert cmd[:2] == ["bash", str(tmp_path / "build-image.sh")]
    assert cmd[cmd.index("--mirror") + 1] == "http://m.example/debian"
    assert cmd[cmd.index("--tag") + 1] == "sky-rs-matrix/trixie:" + "f" * 16
    assert cmd[cmd.index("--source") + 1] == "debian"


def test_build_command_manylinux_takes_the_registry_from_the_environment(tmp_path: Path) -> None:
    spec = MANYLINUX_IMAGES["manylinux2014"]
    with pytest.raises(ValueError, match=images.REGISTRY_ENV):
        build_command(spec, tmp_path, "0" * 64, env={})
    cmd = build_command(spec, tmp_path, "0" * 64, env={images.REGISTRY_ENV: "reg.example/"})
    assert cmd[cmd.index("--base") + 1] == "reg.example/pypa/manylinux2014_x86_64"
    assert cmd[cmd.index("--source") + 1] == "manylinux"
    assert "--mirror" not in cmd


def test_build_command_unknown_source(tmp_path: Path) -> None:
    spec = ImageSpec("x", "nix", "2.0", (), ())
    with pytest.raises(ValueError, match="unknown image source"):
        build_command(spec, tmp_path, "0" * 64, env={})


def test_no_registry_or_mirror_host_in_the_docker_directory() -> None:
    for path in REPO_DOCKER_DIR.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8").lower()
            for host in ("deb.debian.org", "quay.io", "docker.io", "pypi.org", "ghcr.io"):
                assert host not in text, f"{path} names {host}"


# ---------------------------------------------------------------- probing


PROBE_OUTPUT = """\
glibc 2.43
py /usr/bin/python3.13 {"version": "3.13.18", "implementation": "cpython", "debug": false, "free_threaded": false, "executable": "/usr/bin/python3.13"}
py /usr/bin/python3.14 {"version": "3.14.10", "implementation": "cpython", "debug": false, "free_threaded": false, "executable": "/usr/bin/python3.14"}
py /usr/bin/python3.14-config {"version": "3.14.10", "implementation": "cpython", "debug": false, "free_threaded": false, "executable": ""}
py /usr/bin/python3.14d {"version": "3.14.10", "implementation": "cpython", "debug": true, "free_threaded": false, "executable": "/usr/bin/python3.14d"}
py /usr/bin/python3.15 {"version": "3.15.2", "implementation": "cpython", "debug": false, "free_threaded": false, "executable": "/usr/bin/python3.15"}
"""  # noqa: E501


def test_probe_output_gives_glibc_and_labelled_interpreters() -> None:
    glibc, found, notes = parse_probe_output("sid", DEBIAN_IMAGES["sid"], PROBE_OUTPUT)
    assert glibc == "2.43"
    assert sorted(found) == ["3.13", "3.14", "3.14d", "3.15"]
    debug = found["3.14d"]
    assert (debug.path, debug.abi, debug.debug, debug.source) == (
        "/usr/bin/python3.14d", "cp314d", True, "image:sid"
    )  # fmt: skip
    assert found["3.15"].version == "3.15.2"
    assert notes == []


def test_probe_output_leaves_out_free_threaded_pypy_and_duplicates() -> None:
    spec = MANYLINUX_IMAGES["manylinux_2_28"]
    line = (
        'py /opt/python/{tag}/bin/python {{"version": "{v}", "implementation": "{impl}",'
        ' "debug": false, "free_threaded": {ft}, "executable": ""}}'
    )
    output = "\n".join(
        [
            "glibc 2.28",
            line.format(tag="cp312-cp312", v="3.12.8", impl="cpython", ft="false"),
            line.format(tag="cp313-cp313t", v="3.13.1", impl="cpython", ft="true"),
            line.format(tag="pp310-pypy310_pp73", v="3.10.14", impl="pypy", ft="false"),
            line.format(tag="cp312-cp312-again", v="3.12.8", impl="cpython", ft="false"),
            "py /opt/python/broken/bin/python not-json",
        ]
    )
    glibc, found, notes = parse_probe_output("manylinux_2_28", spec, output)
    assert glibc == "2.28"
    assert list(found) == ["3.12"]
    assert found["3.12"].path == "/opt/python/cp312-cp312/bin/python"
    assert len(notes) == 3
    assert any("free-threaded" in n for n in notes)
    assert any("pypy" in n for n in notes)


def test_probe_script_runs_under_sh_and_finds_a_real_interpreter(tmp_path: Path) -> None:
    """The shell quoting of the probe, checked by running it (on the host) for real."""
    folder = tmp_path / "bin"
    folder.mkdir()
    major, minor = sys.version_info[:2]
    (folder / f"python{major}.{minor}").symlink_to(sys.executable)
    (folder / f"python{major}.{minor}-config").write_text("#!/bin/sh\nexit 1\n")
    os.chmod(folder / f"python{major}.{minor}-config", 0o755)
    script = probe_script([f"{folder}/python3.[0-9]*"])
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    spec = ImageSpec("host", "manylinux", "", (), ())  # no Debian path filter
    glibc, found, _ = parse_probe_output("host", spec, out)
    assert glibc and glibc[0].isdigit()
    label = f"{major}.{minor}" + ("d" if hasattr(sys, "gettotalrefcount") else "")
    assert list(found) == [label]
    assert found[label].version == "{}.{}.{}".format(*sys.version_info[:3])


# ---------------------------------------------------------------- docker itself


def test_docker_status_without_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    usable, why = images.docker_status()
    assert not usable and "docker CLI not found" in why


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_docker_status_with_an_unreachable_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    usable, why = images.docker_status()
    assert not usable
    assert why.startswith("docker daemon not reachable")


def test_ensure_image_never_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lines = []
    unknown = images.ensure_image("woody", log=lines.append)
    assert not unknown.ok and "unknown image 'woody'" in (unknown.error or "")

    monkeypatch.setenv("PATH", str(tmp_path))  # no docker at all
    build = images.ensure_image("sid", log=lines.append)
    assert (build.ok, build.tag, build.pythons) == (False, None, {})
    assert "docker CLI not found" in (build.error or "")
    assert any("docker CLI not found" in line for line in lines)


def test_ensure_image_reports_a_failed_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    docker = _docker_tree(tmp_path)
    (docker / "build-image.sh").write_text(
        "echo not for the console\necho 'E: Unable to locate package python3.99'\nexit 7\n"
    )
    monkeypatch.setattr(images, "docker_status", lambda: (True, ""))
    monkeypatch.setattr(images, "_inspect_image", lambda tag: None)
    monkeypatch.setenv(images.MIRROR_ENV, "http://m.example/debian")
    lines = []
    build = images.ensure_image("bullseye", log=lines.append, docker_dir=docker)
    assert not build.ok
    assert build.error == (
        f"build failed (exit 7): E: Unable to locate package python3.99 -- log: {build.build_log}"
    )
    assert "E: Unable to locate package python3.99" in lines  # apt's errors reach the log
    assert "not for the console" not in lines  # the rest only the build log holds
    assert build.build_log and "not for the console" in Path(build.build_log).read_text()


def test_format_builds_reports_absent_interpreters() -> None:
    ok = ImageBuild("sid", "t", True, cached=True, seconds=1.25, glibc="2.43", size_bytes=451e6)
    ok.missing_pythons = ("3.15",)
    bad = ImageBuild("trixie", None, False, error="docker CLI not found on PATH")
    text = images.format_builds([ok, bad])
    assert "absent: 3.15" in text and "451 MB" in text and "no: docker CLI not found" in text


# ----------------------------------------------------------------------------- layer images


def test_the_pypy_image_keeps_its_pypy_and_labels_it_by_implementation() -> None:
    spec = LAYER_IMAGES["sid-pypy3"]
    payload = (
        '{"version": "3.11.17", "implementation": "pypy", "debug": false,'
        ' "free_threaded": false, "executable": "/usr/bin/pypy3"}'
    )
    glibc, found, notes = parse_probe_output(
        "sid-pypy3", spec, f"glibc 2.43\npy /usr/bin/pypy3 {payload}"
    )
    assert glibc == "2.43" and notes == []
    pypy = found["pp3.11"]
    assert (pypy.implementation, pypy.abi, pypy.short) == ("pypy", "pp311", "pp3.11")


def test_the_free_threaded_image_keeps_its_3_13t_and_sid_leaves_one_out() -> None:
    payload = (
        '{"version": "3.13.15", "implementation": "cpython", "debug": false,'
        ' "free_threaded": true, "soabi": "cpython-313t-x86_64-linux-gnu"}'
    )
    line = f"glibc 2.43\npy /opt/python3.13t/bin/python3.13t {payload}"
    _, found, notes = parse_probe_output("sid-3.13t", LAYER_IMAGES["sid-3.13t"], line)
    assert notes == [] and found["3.13t"].abi == "cp313t"
    # A free-threaded build found in an image not made for it is no cell of that image.
    layer_like_sid = dataclasses.replace(LAYER_IMAGES["sid-3.13t"], pythons=("3.13",))
    _, found, notes = parse_probe_output("x", layer_like_sid, line)
    assert found == {} and "free-threaded build (3.13t), left out" in notes[0]


def test_a_free_threaded_interpreter_is_labelled_t_and_its_abi_cp_t() -> None:
    info = {"version": "3.14.2", "implementation": "cpython", "debug": False, "free_threaded": True}
    interp = interpreter_from_probe("/opt/python3.14t/bin/python3.14t", info, "image:x")
    assert interp is not None
    assert (interp.abi, interp.short, interp.free_threaded) == ("cp314t", "3.14t", True)
    debug = interpreter_from_probe("/p", {**info, "free_threaded": False, "debug": True}, "x")
    assert debug is not None and (debug.abi, debug.short) == ("cp314d", "3.14d")
    assert interpreter_from_probe("/p", {**info, "implementation": "graalpy"}, "x") is None


def test_a_layer_image_is_built_from_its_parents_tag_and_hashed_with_it(tmp_path: Path) -> None:
    docker_dir = tmp_path / "docker"
    for name in ("sid", "sid-pypy3"):
        (docker_dir / "images" / name).mkdir(parents=True)
    (docker_dir / "build-image.sh").write_text("#!/bin/sh\n")
    (docker_dir / "finish.Dockerfile").write_text("FROM x\n")
    (docker_dir / "images" / "sid" / "suite").write_text("sid\n")
    (docker_dir / "images" / "sid" / "packages").write_text("python3.13\n")
    (docker_dir / "images" / "sid-pypy3" / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\n")
    table = {**DEBIAN_IMAGES, **LAYER_IMAGES}
    spec = LAYER_IMAGES["sid-pypy3"]
    before = content_hash(spec, docker_dir, table)
    assert build_inputs(spec, docker_dir) == [docker_dir / "images/sid-pypy3/Dockerfile"]
    (docker_dir / "images" / "sid" / "packages").write_text("python3.13\npython3.14\n")
    assert content_hash(spec, docker_dir, table) != before  # a new parent makes a new layer
    digest = content_hash(spec, docker_dir, table)
    command = build_command(
        spec, docker_dir, digest, mirror="http://mirror/debian", parent_tag="sky-rs-matrix/sid:abc"
    )
    assert command[:2] == ["docker", "build"]
    assert "BASE=sky-rs-matrix/sid:abc" in command and "MIRROR=http://mirror/debian" in command
    assert f"org.skypilot-rust.matrix.content-hash={digest}" in command
    assert command[-3:] == ["-f", str(docker_dir / "images/sid-pypy3/Dockerfile"),
                            str(docker_dir / "images/sid-pypy3")]  # fmt: skip
    with pytest.raises(ValueError, match="needs its parent's tag and a Debian mirror"):
        build_command(spec, docker_dir, digest, mirror=None, parent_tag="t")
