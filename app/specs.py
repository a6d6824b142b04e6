"""Which map a page asks for: an embedding method, its parameters, a seed, a distance and
the recorded output (vector form) it maps.

Everything here is read from the registries :data:`fspace.embedding.METHODS` (the
methods, their labels, and the parameters the dashboard offers, each method's
``dashboard`` tag, with their types, defaults and ranges) and
:data:`fspace.distances.DISTANCES`. A method or distance added by a plug-in is offered
like the built-in ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fspace.errors import ConfigError

if TYPE_CHECKING:
    from fspace.registry import Entry, Param
    from fspace.store import Experiment

DEFAULT_METHOD = "tsne"
DEFAULT_DISTANCE = "euclidean"
MAX_SEED = 9999
"""The largest map seed a URL may ask for (each seed is a map computed and kept)."""


def method_entries() -> tuple[Entry, ...]:
    """Every registered embedding method, in the registry's order."""
    from fspace.embedding import METHODS

    return METHODS.entries()


def method_entry(name: str) -> Entry:
    """The registry entry of method ``name``; :class:`ConfigError` listing the known ones."""
    from fspace.embedding import METHODS

    return METHODS.get(name)


def distance_entries() -> tuple[Entry, ...]:
    """Every registered distance, in the registry's order."""
    from fspace.distances import DISTANCES

    return DISTANCES.entries()


def distance_label(name: str) -> str:
    """The label of distance ``name`` (the name itself if it is unknown)."""
    from fspace.distances import DISTANCES

    return DISTANCES.get(name).label if name in DISTANCES else name


def shown_params(method: str) -> tuple[Param, ...]:
    """The parameters of ``method`` that the dashboard lets a visitor set."""
    entry = method_entry(method)
    names = entry.tags.get("dashboard", tuple(p.name for p in entry.params))
    return tuple(entry.param(name) for name in names)


def number_text(value: Any) -> str:
    """A parameter value as the URL and the labels write it: ``50`` not ``50.0``."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def recorded_outputs(exp: Experiment) -> tuple[tuple[str, str], ...]:
    """``(name, label)`` of every output whose function vectors ``exp`` holds on its
    probe suite, e.g. ``("logits", "logits (classification)")``; the one recorded while
    training first. Empty unless the experiment has exactly one probe suite."""
    suites = exp.probe_suites()
    if len(suites) != 1:
        return ()
    held = {
        name: meta for (_, name), meta in exp.vector_outputs(next(iter(suites.values()))).items()
    }
    out = []
    for name in sorted(held, key=lambda n: (not held[n].get("online"), n)):
        spec = held[name].get("spec")
        kind = spec.get("kind") if isinstance(spec, dict) else None
        out.append((name, f"{output_label(name)} ({kind})" if kind else output_label(name)))
    return tuple(out)


def default_output(exp: Experiment) -> str | None:
    """The output a map of ``exp`` shows unless one is chosen: the one recorded while
    training, else the first one cached (None if it holds no vectors yet)."""
    outputs = recorded_outputs(exp)
    return outputs[0][0] if outputs else None


def output_kind(exp: Experiment, output: str | None = None) -> str | None:
    """The output kind (classification, sequence, regression) of ``output`` (default:
    :func:`default_output`) as the experiment's vectors record it; None if unknown."""
    suites = exp.probe_suites()
    name = output or default_output(exp)
    if len(suites) != 1 or name is None:
        return None
    fingerprint = next(iter(suites.values()))
    spec = exp.vector_outputs(fingerprint).get((fingerprint, name), {}).get("spec")
    return spec.get("kind") if isinstance(spec, dict) else None


def chosen_output(exp: Experiment, value: Any) -> str | None:
    """The output a menu's ``value`` asks for, None when it is the default one (so that
    both name one map)."""
    return None if not value or value == default_output(exp) else str(value)


def output_label(name: str | None) -> str:
    """How a label names output ``name``: its form's label, e.g. "logits"."""
    from fspace.outputs import FORMS

    form, _, settings = str(name).partition(".")
    label = FORMS.get(form).label if form in FORMS else form
    return f"{label} ({settings})" if settings else label


@dataclass(frozen=True, init=False)
class MapSpec:
    """Which map: method, its parameters that differ from the defaults, seed, distance,
    and the recorded output it maps (None: the one the experiment was recorded with).

    ``MapSpec("tsne", 50.0, 1)`` gives the method's first dashboard parameter (t-SNE's
    perplexity) as the second argument; ``params={...}`` gives any of them by name.
    Parameters equal to their defaults are dropped, so equal maps have equal specs.
    """

    method: str
    values: tuple[tuple[str, Any], ...] = field(default=())
    random_state: int = 0
    distance: str = DEFAULT_DISTANCE
    output: str | None = None

    def __init__(
        self,
        method: str = DEFAULT_METHOD,
        param: Any = None,
        random_state: int = 0,
        *,
        params: dict[str, Any] | None = None,
        distance: str = DEFAULT_DISTANCE,
        output: str | None = None,
    ) -> None:
        given = dict(params or {})
        if param is not None:
            given[_main_param(method)] = param
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "values", _non_default(method, given))
        object.__setattr__(self, "random_state", int(random_state))
        object.__setattr__(self, "distance", distance)
        object.__setattr__(self, "output", output or None)

    @classmethod
    def make(
        cls,
        method: str = DEFAULT_METHOD,
        param: Any = None,
        random_state: Any = 0,
        *,
        params: dict[str, Any] | None = None,
        distance: Any = None,
        output: Any = None,
    ) -> MapSpec:
        """Validate and normalise values from a URL or the page's controls (text or
        numbers); :class:`ConfigError` names the value at fault."""
        from fspace.embedding import METHODS, get_method
        from fspace.embedding.inputs import check_method_takes

        entry = method_entry(method)
        given = dict(params or {})
        if param is not None:
            given[_main_param(method)] = param
        offered = {p.name: p for p in shown_params(method)}
        unknown = sorted(set(given) - set(offered))
        if unknown:
            raise ConfigError(
                f"{entry.label} has no parameter {unknown[0]!r} to set here "
                f"(it offers: {', '.join(offered) or 'none'})"
            )
        typed = {k: _typed(offered[k], v) for k, v in given.items() if v not in (None, "")}
        get_method(method).validate(typed)  # the same checks as fspace.embed
        distance = _distance(distance)
        check_method_takes(METHODS, entry, distance)
        return cls(
            method,
            None,
            _seed(random_state),
            params=typed,
            distance=distance,
            output=_output(output),
        )

    @property
    def params(self) -> dict[str, Any]:
        """Parameters passed to the embedding method (those that differ from defaults)."""
        return dict(self.values)

    @property
    def label(self) -> str:
        """Short description, e.g. "t-SNE (perplexity 50, seed 1)"."""
        text = map_label(self.method, self.params, self.random_state, self.distance)
        return f"{text} · {output_label(self.output)}" if self.output else text


def map_label(
    method: str,
    params: dict[str, Any],
    random_state: int,
    distance: str = DEFAULT_DISTANCE,
    asked: dict[str, Any] | None = None,
) -> str:
    """``t-SNE (perplexity 50, seed 1) of Hellinger distances``: the method's label with
    the dashboard parameters in ``params``, a seed other than 0 and a distance other
    than the Euclidean. A value that differs from the one ``asked`` for says so:
    ``perplexity 9.66 instead of 50``."""
    try:
        entry = method_entry(method)
        label, names = entry.label, [p.name for p in shown_params(method)]
    except ConfigError:
        label, names = method, sorted(params)
    asked = asked or {}
    parts = []
    for name in (n for n in names if n in params):
        text = f"{name} {number_text(params[name])}"
        if name in asked and asked[name] != params[name]:
            text += f" instead of {number_text(asked[name])}"
        parts.append(text)
    if random_state:
        parts.append(f"seed {random_state}")
    text = label + (f" ({', '.join(parts)})" if parts else "")
    if distance != DEFAULT_DISTANCE:
        text += f" of {distance_label(distance)} distances"
    return text


def _seed(value: Any) -> int:
    """The map's ``random_state`` from a URL or an input box: 0 to :data:`MAX_SEED`."""
    if value is None or value == "":
        return 0
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(f"random_state={value!r} (map seed) is not a number") from None
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or not 0 <= value <= MAX_SEED:
        raise ConfigError(
            f"random_state (map seed) must be an integer between 0 and {MAX_SEED}, got {value!r}"
        )
    return int(value)


def _output(value: Any) -> str | None:
    """An output named in a URL or a menu: a vector form with its settings, as cached
    vectors are filed (``logits``, ``sketch.k=1024``); None for the recorded one."""
    from fspace.outputs import FORMS

    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.partition(".")[0] not in FORMS:
        raise ConfigError(
            f"output={value!r} is not a vector form; use one of {', '.join(FORMS.names())}"
        )
    return value


def _distance(value: Any) -> str:
    """A distance named in a URL or a menu: a registered one (None: the default)."""
    from fspace.distances import distance_entry

    if value is None or value == "":
        return DEFAULT_DISTANCE
    return distance_entry(value).name


def _main_param(method: str) -> str:
    shown = shown_params(method)
    if not shown:
        raise ConfigError(f"{method_entry(method).label} has no parameter to set here")
    return shown[0].name


def _non_default(method: str, given: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    try:
        defaults = method_entry(method).defaults()
    except ConfigError:  # an unknown method: kept as given, refused where it is used
        defaults = {}
    return tuple(sorted((k, v) for k, v in given.items() if v is not None and v != defaults.get(k)))


def _typed(param: Param, value: Any) -> Any:
    """``value`` (text from a URL, or a number from an input box) as ``param``'s type.

    Only the type is settled here; ranges are the method's to check, so that the page
    and ``fspace.embed`` say the same thing about a bad value.
    """
    if not isinstance(value, str):
        if isinstance(value, bool):
            return value
        if param.type is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if param.type is float and isinstance(value, int):
            return float(value)  # 50 and 50.0 are one map, with one cache key
        return value
    text = value.strip()
    if param.type in (int, float):
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{param.name}={value!r} is not a number") from None
        if param.type is int and number.is_integer():
            return int(number)
        return number
    return param.parse(text)
