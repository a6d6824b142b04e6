"""Command-line options generated from registries (fspace.cli._args)."""

from __future__ import annotations

import argparse

import pytest

from fspace.cli import build_parser
from fspace.cli._args import add_choice, add_entry_params, chosen_params, describe
from fspace.embedding import METHODS
from fspace.errors import ConfigError
from fspace.registry import Param, Registry


@pytest.fixture
def shapes() -> Registry:
    reg = Registry("shape", "fspace.test-shapes-none")
    reg.register(
        "circle",
        label="Circle",
        help="round",
        params=[Param("radius", float, 1.0, "size", low=0.0)],
    )(object)
    reg.register(
        "square",
        label="Square",
        help="four sides",
        params=[
            Param("side", int, 2, "size", low=1, high=9),
            Param("filled", bool, False, "paint the inside"),
            Param("csv", str, "x", "clashes with an option of the command"),
            Param("radius", int, 3, "corner size", low=0),
        ],
    )(object)
    return reg


def parser_of(reg: Registry) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="draw")
    parser.add_argument("--csv")
    group = parser.add_argument_group("shape")
    add_choice(group, "--shape", reg, default="circle", help="what to draw")
    add_entry_params(parser, group, reg, prefix="shape_")
    return parser


def test_choice_and_parameter_options_come_from_the_registry(shapes, capsys):
    parser = parser_of(shapes)
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "what to draw (default: circle) circle: Circle - round square: Square - four sides" in text
    )
    assert "--side N size Square: int in [1, 9], default 2" in text
    assert "--filled, --no-filled paint the inside Square: bool, default False" in text
    # One option for a name two entries share, its help naming both.
    assert "--radius X Circle: size; float >= 0, default 1.0 Square: corner size; int >= 0" in text
    assert "--square-csv TEXT" in text  # the command's own --csv keeps its name
    args = parser.parse_args(["--shape", "square", "--side", "3", "--filled", "--radius", "4"])
    assert chosen_params(args, shapes, "square", prefix="shape_", option="--shape") == {
        "side": 3,
        "filled": True,
        "radius": 4,
    }
    args = parser.parse_args(["--radius", "0.5"])
    assert chosen_params(args, shapes, "circle", prefix="shape_", option="--shape") == {
        "radius": 0.5
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--side", "0"], "side must be at least 1"),
        (["--side", "x"], "side must be int, got 'x'"),
        (["--shape", "hexagon"], "invalid choice: 'hexagon'"),
    ],
    ids=["range", "type", "choice"],
)
def test_bad_values_are_refused_by_argparse(shapes, argv, message, capsys):
    with pytest.raises(SystemExit):
        parser_of(shapes).parse_args(argv)
    assert message in capsys.readouterr().err


def test_a_parameter_of_another_entry_is_named(shapes):
    args = parser_of(shapes).parse_args(["--side", "3"])
    with pytest.raises(ConfigError) as err:
        chosen_params(args, shapes, "circle", prefix="shape_", option="--shape")
    assert str(err.value) == "--side applies to --shape square only; --shape circle takes --radius"
    args = parser_of(shapes).parse_args(["--shape", "square", "--radius", "1.5"])
    with pytest.raises(ConfigError, match="radius must be int, got '1.5'"):
        chosen_params(args, shapes, "square", prefix="shape_", option="--shape")


@pytest.mark.parametrize(
    ("param", "text"),
    [
        (Param("k", int, 15, low=2), "int >= 2, default 15"),
        (Param("d", float, 0.1, low=0, high=1), "float in [0, 1], default 0.1"),
        (Param("n", int, None, low=1), "int >= 1"),
        (Param("s", str, "a", choices=("a", "b")), "one of a, b, default a"),
        (Param("x", float, 1.0, high=2.5), "float <= 2.5, default 1.0"),
    ],
    ids=["low", "range", "no-default", "choices", "high"],
)
def test_describe(param, text):
    assert describe(param) == text


def test_embed_help_lists_every_method_and_parameter(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["embed", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for entry in METHODS:
        assert f"{entry.name}: {entry.label}" in text
        for param in entry.params:
            alone, shared = describe(param), f"{param.help}; {describe(param)}"
            assert param.flag in text
            assert f"{entry.label}: {alone}" in text or f"{entry.label}: {shared}" in text
