"""Which output an experiment's checkpoints are evaluated with: the one it was
recorded with (:func:`recorded_output`, read from the cached vectors' headers), or the
one asked for, given the recorded kind (:func:`resolve_output`)."""

from __future__ import annotations

from typing import Any

from fspace.errors import ConfigError
from fspace.outputs import KINDS, OutputSpec, as_spec
from fspace.probes import ProbeSuite
from fspace.store import Experiment


def resolve_output(
    exp: Experiment,
    suite: ProbeSuite,
    output: str | OutputSpec | None = None,
    **choices: Any,
) -> tuple[OutputSpec, dict[str, Any]]:
    """The output spec to evaluate ``exp`` with, and the header metadata of vectors
    already cached in it (empty if none).

    Without ``output`` or ``choices`` (``kind``, ``params``, ``key``, ``extract``,
    ``forward``) it is the one the experiment was recorded with (:func:`recorded_output`).
    """
    if output is None and not any(v not in (None, "logits", {}) for v in choices.values()):
        return recorded_output(exp, suite.fingerprint)
    remembered = {name: meta for (_, name), meta in exp.vector_outputs(suite.fingerprint).items()}
    spec = as_spec(output, **choices).with_default_form()
    known = remembered.get(spec.name)
    if spec.kind is None and known is not None:
        spec = _spec_of(spec.name, known)
    elif spec.kind is None:
        spec = _with_recorded_kind(exp, suite.fingerprint, spec, remembered)
    return spec, remembered.get(spec.name, {})


def _with_recorded_kind(
    exp: Experiment, fingerprint: str, spec: OutputSpec, remembered: dict[str, dict]
) -> OutputSpec:
    """``spec`` (of no kind yet) given the kind the experiment was recorded with, if one
    was; ConfigError at once when its form does not apply to that kind (probabilities of
    a regression), rather than after the models are built."""
    try:
        kind = recorded_output(exp, fingerprint, remembered)[0].kind
    except ConfigError:  # several outputs recorded: the form alone decides
        return spec
    if kind is None:
        return spec
    forms = KINDS.get(kind).tags["forms"]
    if spec.form not in forms:
        raise ConfigError(
            f"output {spec.form!r} does not apply to {exp.path}: it was recorded with "
            f"{kind} outputs, whose forms are {', '.join(forms)}"
        )
    return spec.with_kind(kind)


def recorded_output(
    exp: Experiment, fingerprint: str, remembered: dict[str, dict] | None = None
) -> tuple[OutputSpec, dict[str, Any]]:
    """The output spec the experiment's vectors on suite ``fingerprint`` were recorded
    with (the Recorder's, else the only one cached; probabilities if none is), and the
    header metadata of one of them. Reads only file headers (none if ``remembered``
    gives their metadata by output name already)."""
    if remembered is None:
        remembered = {n: meta for (_, n), meta in exp.vector_outputs(fingerprint).items()}
    online = [n for n, meta in remembered.items() if meta.get("online")]
    names = online if len(online) == 1 else sorted(remembered)
    if len(names) > 1:
        raise ConfigError(
            f"experiment {exp.path} holds function vectors of {len(names)} outputs on probe "
            f"suite {fingerprint} ({', '.join(names)}); pick one with --output"
        )
    if not names:
        return OutputSpec(form="prob"), {}
    return _spec_of(names[0], remembered[names[0]]), remembered[names[0]]


def _spec_of(name: str, meta: dict[str, Any]) -> OutputSpec:
    body = meta.get("spec")
    if isinstance(body, dict):
        return OutputSpec.from_json(body)
    # vectors cached before outputs had kinds: probabilities etc. of a classifier
    return OutputSpec("classification", name.split(".")[0])
