"""The interpreter axis shows implementation and ABI: `cp313`, `cp314d`, `cp314t`, `pp311`."""

from __future__ import annotations

import pytest
from rich.console import Console

from sky_matrix.core.model import Cell, CellResult, Interpreter, abi_tag
from sky_matrix.plan.discovery import label_sort_key
from sky_matrix.report import table
from sky_matrix.report.store import report_record, result_from_json


@pytest.mark.parametrize(
    ("label", "tag"),
    [
        ("3.8", "cp38"),
        ("3.13", "cp313"),
        ("3.14d", "cp314d"),
        ("3.14t", "cp314t"),
        ("3.14td", "cp314td"),
        ("pp3.11", "pp311"),
        ("weird", "weird"),
    ],
)
def test_each_label_has_its_abi_tag(label: str, tag: str) -> None:
    assert abi_tag(label) == tag


def test_labels_sort_by_version_then_cpython_builds_then_pypy() -> None:
    labels = ["pp3.11", "3.14t", "3.11", "3.14", "3.14d", "3.8", "3.15"]
    assert sorted(labels, key=label_sort_key) == [
        "3.8", "3.11", "pp3.11", "3.14", "3.14d", "3.14t", "3.15",
    ]  # fmt: skip


def test_an_interpreter_label_says_pypy_and_free_threading() -> None:
    pypy = Interpreter("/usr/bin/pypy3", "3.11.17", "pypy", "pp311", False, "image:sid-pypy3")
    free = Interpreter("/opt/t/python3.14t", "3.14.2", "cpython", "cp314t", False, "x", True)
    assert (pypy.short, free.short) == ("pp3.11", "3.14t")
    assert abi_tag(pypy.short) == pypy.abi and abi_tag(free.short) == free.abi


def result(python: str) -> CellResult:
    cell = Cell(python=python, platform="docker:sid-pypy3", suite="parity", profile="default")
    return CellResult(cell=cell, verdict="pass", counts={"passed": 3})


def test_the_table_row_and_the_report_record_carry_the_abi() -> None:
    assert table.row_label(("docker:sid-pypy3", "pp3.11", "default")) == (
        "docker:sid-pypy3 / pp3.11 pp311"
    )
    assert table.row_label(("host", "3.14d", "cpus-1.5")) == "host / 3.14d cp314d / cpus-1.5"
    record = report_record(result("pp3.11"))
    assert record["abi"] == "pp311" and record["cell"]["python"] == "pp3.11"
    assert result_from_json(result("pp3.11").to_json()).cell.abi == "pp311"  # read back


def test_the_rendered_table_shows_the_abi() -> None:
    console = Console(record=True, width=160)
    table.render([result("pp3.11"), result("3.13")], console)
    text = console.export_text()
    assert "docker:sid-pypy3 / 3.13 cp313" in text
    assert "docker:sid-pypy3 / pp3.11 pp311" in text
