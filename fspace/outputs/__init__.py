"""Output kinds and vector forms: what a model returns, and what a function vector holds.

The registries, :class:`OutputSpec` and the base classes live in
:mod:`fspace.outputs.base`; the built-in kinds and forms in :mod:`fspace.outputs.forms`
(the sketch in :mod:`fspace.outputs.sketch`); turning a model's outputs into function
vectors in :mod:`fspace.outputs.apply`.
"""

from fspace.outputs import forms as _forms  # noqa: F401  (registers the built-ins)
from fspace.outputs.base import (
    FORMS,
    KINDS,
    Form,
    Kind,
    OutputSpec,
    Rows,
    as_spec,
    as_stored,
    callable_name,
    extract_output,
    form_for,
    kind_of,
)

__all__ = [
    "FORMS",
    "KINDS",
    "Form",
    "Kind",
    "OutputSpec",
    "Rows",
    "as_spec",
    "as_stored",
    "callable_name",
    "extract_output",
    "form_for",
    "kind_of",
]
