"""The generic registry: entries, parameters and entry-point plug-ins."""

from __future__ import annotations

import sys

import pytest

from fspace.errors import ConfigError
from fspace.registry import Param, Registry


def test_entries_are_listed_sorted_and_found_by_name():
    reg = Registry("widget", "fspace.test-widgets-none")

    @reg.register("b", label="Bee", params=[Param("size", int, 3, low=1)])
    def b():
        """Makes a bee."""

    reg.register("a")(lambda: None)
    assert reg.names() == ("a", "b")
    entry = reg.get("b")
    assert entry.obj is b and entry.label == "Bee" and entry.help == "Makes a bee."
    assert entry.parse({"size": "5"}) == {"size": 5}
    assert "b" in reg and "c" not in reg
    with pytest.raises(ConfigError, match=r"unknown widget 'c' \(known: a, b\)"):
        reg.get("c")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("b")(lambda: None)


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        (Param("k", int, low=1), "0", "at least 1"),
        (Param("k", int), "2.5", "must be int"),
        (Param("k", int), 2.5, "must be int"),
        (Param("x", float, high=1.0), "1.5", "at most 1.0"),
        (Param("x", float), "nan", "finite"),
        (Param("x", float), "inf", "finite"),
        (Param("s", str, choices=("u", "v")), "w", "one of"),
        (Param("f", bool), "maybe", "must be bool"),
    ],
    ids=["below", "int-str", "int-float", "above", "nan", "inf", "choice", "bool"],
)
def test_bad_parameter_values_are_refused_by_name(param, value, message):
    with pytest.raises(ConfigError, match=message) as err:
        param.parse(value)
    assert param.name in str(err.value)


def test_flags_and_bools():
    assert Param("n_neighbors", int).flag == "--n-neighbors"
    assert Param("f", bool).parse("yes") is True and Param("f", bool).parse("off") is False


def test_unknown_parameter_is_refused():
    reg = Registry("widget", "fspace.test-widgets-none")
    reg.register("x", params=[Param("k", int, 1)])(len)
    with pytest.raises(ConfigError, match="no parameter 'nope'"):
        reg.get("x").parse({"nope": 1})


def test_plugins_come_from_entry_points(tmp_path, monkeypatch):
    pkg = tmp_path / "plugwidgets.py"
    pkg.write_text("def green():\n    '''A green widget.'''\n")
    broken = tmp_path / "brokenwidgets.py"
    broken.write_text("raise RuntimeError('boom')\n")
    dist = tmp_path / "plugwidgets-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugwidgets\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[fspace.test-widgets]\ngreen = plugwidgets:green\nbad = brokenwidgets\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("widget", "fspace.test-widgets")
    assert reg.names() == ("green",)  # the broken plug-in is skipped with a warning
    assert reg.get("green").help == "A green widget."
    assert sys.modules["plugwidgets"].green is reg.get("green").obj
