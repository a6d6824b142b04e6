"""Probe suites: the fixed inputs every checkpoint is evaluated on.

A probe suite holds one tensor of any dtype, or a dict or tuple of tensors that share
their first dimension (``input_ids`` + ``attention_mask``; an image + its metadata).
The model is called as ``model(tensor)``, ``model(**dict)`` or ``model(*tuple)``.
Nothing is ever cast: token ids stay int64 exactly, float64 inputs stay float64 (a
float32 model then fails on them, and the Recorder says which input has which dtype),
and the suite's file stores every tensor with its own dtype.

Example::

    suite = ProbeSuite.from_array(test_images[:1000], name="heldout")
    suite = ProbeSuite({"input_ids": ids, "attention_mask": mask}, name="prompts")
    suite = ProbeSuite.from_texts(prompts, tokenizer, max_length=64, name="prompts")
    suite.fingerprint  # same inputs, same fingerprint, on any machine
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fspace.errors import ConfigError, ProbeMismatchError

Inputs = torch.Tensor | dict[str, torch.Tensor] | tuple[torch.Tensor, ...]

STORABLE_DTYPES = (
    torch.float64,
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
)
"""The dtypes a probe suite's file can hold (those of safetensors that fspace reads)."""


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().to("cpu").contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def fingerprint(inputs: Inputs) -> str:
    """A content fingerprint of probe inputs: 16 hex digits of a SHA-256 digest over the
    names, dtypes, shapes and bytes of every tensor (one tensor: its dtype, shape and
    bytes, as fspace has always computed it)."""
    if isinstance(inputs, torch.Tensor):
        h = hashlib.sha256(f"{inputs.dtype}|{tuple(inputs.shape)}|".encode())
        h.update(_tensor_bytes(inputs))
        return h.hexdigest()[:16]
    named = _named(inputs)
    h = hashlib.sha256(f"{_structure(inputs)}|".encode())
    order = sorted(named) if isinstance(inputs, Mapping) else list(named)
    for name in order:
        t = named[name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(_tensor_bytes(t))
    return h.hexdigest()[:16]


def _structure(inputs: Inputs) -> str:
    if isinstance(inputs, torch.Tensor):
        return "tensor"
    return "dict" if isinstance(inputs, Mapping) else "tuple"


def _named(inputs: Inputs) -> dict[str, torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        return {"inputs": inputs}
    if isinstance(inputs, Mapping):
        return dict(inputs)
    return {str(i): t for i, t in enumerate(inputs)}


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    """``value`` as a CPU tensor of its own dtype (numpy arrays and lists converted)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what} is not an array of numbers ({e})") from None
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ConfigError(f"{what} must be numbers, got an array of dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array))


def as_inputs(value: Any, what: str = "probe inputs") -> Inputs:
    """``value`` (a tensor or array, a dict of them, or a tuple/list of them) as probe
    inputs of the same structure, each tensor keeping its dtype."""
    if isinstance(value, Mapping):
        if not value:
            raise ConfigError(f"{what} is an empty dict")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k.isidentifier():
                raise ConfigError(
                    f"{what}: key {k!r} cannot be a keyword argument of the model's forward"
                )
            out[k] = _as_tensor(v, f"{what}[{k!r}]")
        return out
    if isinstance(value, (tuple, list)) and value and not _is_number_list(value):
        return tuple(_as_tensor(v, f"{what}[{i}]") for i, v in enumerate(value))
    return _as_tensor(value, what)


def _is_number_list(value: Sequence) -> bool:
    first = value[0]
    return isinstance(first, (int, float, np.number)) or (
        isinstance(first, (list, tuple)) and not isinstance(first, torch.Tensor)
    )


@dataclass(frozen=True)
class ProbeSuite:
    """A named, fingerprinted set of probe inputs (and optionally their labels).

    ``inputs`` is one tensor, a dict of tensors (passed as keyword arguments) or a
    tuple of tensors (passed positionally), all sharing their first dimension.

    Example::

        suite = ProbeSuite.from_array(test_images[:1000], name="heldout")
        suite.fingerprint  # same inputs, same fingerprint, on any machine
    """

    inputs: Inputs
    name: str = "default"
    targets: torch.Tensor | None = None
    fingerprint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.inputs, (torch.Tensor, Mapping, tuple)):
            raise ConfigError(
                f"probe suite {self.name!r}: inputs must be a tensor, a dict or a tuple of "
                f"tensors, got {type(self.inputs).__name__}; use ProbeSuite.from_array"
            )
        inputs = self.inputs if isinstance(self.inputs, torch.Tensor) else as_inputs(self.inputs)
        object.__setattr__(self, "inputs", inputs)
        self._check(_named(inputs))
        if self.targets is not None:
            if not isinstance(self.targets, torch.Tensor):
                object.__setattr__(self, "targets", _as_tensor(self.targets, "targets"))
            if len(self.targets) != len(self):
                raise ConfigError(
                    f"probe suite {self.name!r}: {len(self.targets)} targets for {len(self)} inputs"
                )
        object.__setattr__(self, "fingerprint", fingerprint(inputs))

    def _check(self, named: dict[str, torch.Tensor]) -> None:
        lengths = set()
        for key, t in named.items():
            what = f"probe suite {self.name!r}" + ("" if key == "inputs" else f", input {key!r}")
            if not isinstance(t, torch.Tensor):
                raise ConfigError(f"{what} is a {type(t).__name__}, not a tensor")
            if t.ndim < 1 or t.shape[0] == 0:
                raise ConfigError(f"{what} is empty (shape {tuple(t.shape)})")
            if t.dtype not in STORABLE_DTYPES:
                raise ConfigError(
                    f"{what} has dtype {t.dtype}, which a probe file cannot store; use one "
                    f"of {', '.join(str(d).removeprefix('torch.') for d in STORABLE_DTYPES)}"
                )
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise ConfigError(f"{what} has NaN or infinite values")
            lengths.add(t.shape[0])
        if len(lengths) > 1:
            shapes = ", ".join(f"{k} {tuple(t.shape)}" for k, t in named.items())
            raise ConfigError(
                f"probe suite {self.name!r}: inputs must share their first dimension (one "
                f"row per probe), got {shapes}"
            )

    @classmethod
    def from_array(cls, inputs: Any, *, name: str = "default", targets: Any = None) -> ProbeSuite:
        """Build a suite from numpy arrays or tensors (or a dict or tuple of them),
        keeping every dtype: int64 token ids stay int64, float64 stays float64."""
        x = as_inputs(inputs)
        y = None if targets is None else _as_tensor(targets, "targets")
        return cls(inputs=x, name=name, targets=y)

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        tokenizer: Any,
        *,
        max_length: int | None = None,
        name: str = "default",
        keys: str | Sequence[str] | None = None,
        pad_id: int = 0,
        targets: Any = None,
    ) -> ProbeSuite:
        """Tokenize ``texts`` with the user's own ``tokenizer`` object (nothing is
        downloaded) into a dict of ``input_ids`` and ``attention_mask``.

        ``tokenizer`` is a Hugging Face tokenizer (called with padding and, given
        ``max_length``, truncation; its pad token must be set) or any object with an
        ``encode(text) -> list[int]`` method (padded with ``pad_id``). ``keys`` keeps
        only those inputs; one key as a string gives a single tensor (for a model called
        as ``model(ids)``).
        """
        if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
            raise ConfigError("texts must be a non-empty list of strings")
        encoded = _tokenize(list(texts), tokenizer, max_length, pad_id)
        if keys is not None:
            wanted = [keys] if isinstance(keys, str) else list(keys)
            missing = [k for k in wanted if k not in encoded]
            if missing:
                raise ConfigError(
                    f"the tokenizer gave no {', '.join(missing)} (it gave: {', '.join(encoded)})"
                )
            if isinstance(keys, str):
                return cls.from_array(encoded[keys], name=name, targets=targets)
            encoded = {k: encoded[k] for k in wanted}
        return cls.from_array(encoded, name=name, targets=targets)

    # structure -----------------------------------------------------------------------

    @property
    def structure(self) -> str:
        """``"tensor"``, ``"dict"`` or ``"tuple"``: how the model is called."""
        return _structure(self.inputs)

    def named(self) -> dict[str, torch.Tensor]:
        """Every input tensor by name (``"inputs"`` for one tensor, ``"0"``, ``"1"``...
        for a tuple)."""
        return _named(self.inputs)

    def get(self, key: str) -> torch.Tensor | None:
        """The input called ``key`` of a dict suite, or None."""
        return self.inputs.get(key) if isinstance(self.inputs, Mapping) else None

    def token_ids(self, key: str = "input_ids") -> torch.Tensor | None:
        """The token ids: input ``key`` of a dict suite, or the one integer tensor."""
        if isinstance(self.inputs, torch.Tensor):
            return self.inputs if not self.inputs.is_floating_point() else None
        return self.get(key)

    def __len__(self) -> int:
        return next(iter(self.named().values())).shape[0]

    def describe(self) -> str:
        """``"input_ids int64 (8, 16), attention_mask int64 (8, 16)"``: for messages."""
        return ", ".join(
            ("" if self.structure == "tensor" else f"{k} ")
            + f"{str(t.dtype).removeprefix('torch.')} {tuple(t.shape)}"
            for k, t in self.named().items()
        )

    def batch(self, start: int, stop: int, device: torch.device | str | None = None) -> Inputs:
        """Rows ``start:stop`` of every input, with the suite's structure, on ``device``."""
        named = {
            k: t[start:stop].to(device) if device else t[start:stop]
            for k, t in self.named().items()
        }
        if self.structure == "tensor":
            return named["inputs"]
        return named if self.structure == "dict" else tuple(named.values())

    def batches(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> list[tuple[int, int, Inputs]]:
        """``(start, stop, inputs)`` for consecutive batches of at most ``batch_size``."""
        return [
            (s, min(s + batch_size, len(self)), self.batch(s, s + batch_size, device))
            for s in range(0, len(self), batch_size)
        ]

    # files -----------------------------------------------------------------------------

    def to_file(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The tensors and metadata the store writes into the suite's file."""
        named = self.named()
        tensors = {
            ("inputs" if self.structure == "tensor" else f"inputs.{k}"): t for k, t in named.items()
        }
        if self.targets is not None:
            tensors["targets"] = self.targets
        return tensors, {"structure": self.structure, "keys": list(named)}

    @classmethod
    def from_file(
        cls, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any], name: str
    ) -> ProbeSuite:
        """The suite :meth:`to_file` wrote (files without a structure hold one tensor)."""
        structure = meta.get("structure", "tensor")
        try:
            if structure == "tensor":
                inputs: Inputs = tensors["inputs"]
            else:
                parts = [tensors[f"inputs.{k}"] for k in meta["keys"]]
                inputs = (
                    dict(zip(meta["keys"], parts, strict=True))
                    if structure == "dict"
                    else tuple(parts)
                )
        except (KeyError, TypeError) as e:
            raise ProbeMismatchError(
                f"probe suite {name!r}: its file lacks input {e}; write it again"
            ) from None
        return cls(inputs=inputs, name=name, targets=tensors.get("targets"))

    def require(self, fingerprint: str, what: str) -> None:
        """Raise ProbeMismatchError unless ``fingerprint`` is this suite's."""
        if fingerprint != self.fingerprint:
            raise ProbeMismatchError(
                f"{what} was computed on probe suite {fingerprint}, not on "
                f"{self.name!r} ({self.fingerprint}); function vectors from different probe "
                f"suites cannot be compared"
            )


def call_model(model: Callable, inputs: Inputs) -> Any:
    """``model(inputs)``, ``model(**inputs)`` or ``model(*inputs)`` by the inputs' structure."""
    if isinstance(inputs, torch.Tensor):
        return model(inputs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    return model(*inputs)


def _tokenize(texts: list[str], tokenizer: Any, max_length, pad_id: int) -> dict[str, Any]:
    if callable(tokenizer) and hasattr(tokenizer, "pad_token"):
        kwargs: dict[str, Any] = {"padding": "max_length" if max_length else "longest"}
        if max_length:
            kwargs.update(truncation=True, max_length=max_length)
        try:
            out = tokenizer(texts, return_tensors="pt", **kwargs)
        except (ValueError, TypeError) as e:
            raise ConfigError(
                f"the tokenizer could not pad the texts ({e}); set tokenizer.pad_token "
                f"(e.g. tokenizer.pad_token = tokenizer.eos_token for GPT-2)"
            ) from None
        return {k: v for k, v in dict(out).items()}
    if not callable(getattr(tokenizer, "encode", None)):
        raise ConfigError(
            f"tokenizer must be a Hugging Face tokenizer or have encode(text) -> list[int], "
            f"got {type(tokenizer).__name__}"
        )
    rows = [
        list(tokenizer.encode(t))[:max_length] if max_length else list(tokenizer.encode(t))
        for t in texts
    ]
    width = max_length or max(len(r) for r in rows)
    ids = torch.full((len(rows), width), int(pad_id), dtype=torch.int64)
    mask = torch.zeros((len(rows), width), dtype=torch.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask}
