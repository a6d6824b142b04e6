"""Probe suite files, ``probes/NAME.safetensors``: the inputs every function vector of
the experiment is computed on, stored once under their name with their fingerprint.

A suite is never replaced: writing one whose name is taken leaves the file as it is, and
:meth:`~fspace.store.Experiment.add_probes` then compares the fingerprints.
"""

from __future__ import annotations

from pathlib import Path

from fspace.errors import CheckpointError, ProbeMismatchError, StoreWriteError
from fspace.probes import ProbeSuite
from fspace.store import files, layout, reading


def path(root: Path, name: str) -> Path:
    """The file of probe suite ``name`` in the experiment at ``root``."""
    return root / "probes" / f"{name}.safetensors"


def write(root: Path, suite: ProbeSuite) -> bool:
    """Write ``suite`` under its name unless a suite of that name is stored already;
    return whether it was written (StoreWriteError if the disk refuses it)."""
    layout.check_name(suite.name, "probe suite name")
    target = layout.writable(root, path(root, suite.name))
    tensors, structure = suite.to_file()
    meta = {"kind": "probes", "name": suite.name, "fingerprint": suite.fingerprint}
    meta.update(structure)
    try:
        files.write(target, tensors, meta, exclusive=True)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        raise StoreWriteError(f"cannot write {target} ({e.strerror})") from None


def fingerprint(file: Path) -> str:
    """The fingerprint in a probe suite file's header; CheckpointError if it has none."""
    _, meta = files.read_header(file, limit=files.MAX_PROBE_BYTES)
    found = meta.get("fingerprint")
    if meta.get("kind", "probes") != "probes" or not isinstance(found, str):
        raise CheckpointError(f"{file}: not a probe suite (no fingerprint)")
    return found


def shapes(file: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of a probe suite file's tensors, read from its header only."""
    header, _ = files.read_header(file)
    return {k: tuple(int(n) for n in v["shape"]) for k, v in header.items()}


def load(file: Path, name: str) -> ProbeSuite:
    """The probe suite stored in ``file``, checked against its stored fingerprint."""
    tensors, meta = reading.read(file, limit=files.MAX_PROBE_BYTES)
    if not isinstance(meta.get("fingerprint"), str):
        raise CheckpointError(f"{file}: not a probe suite (no fingerprint)")
    suite = ProbeSuite.from_file(tensors, meta, name=name)
    suite.require(meta["fingerprint"], f"stored probe suite {name!r}")
    return suite


def choose(root: Path, suites: dict[str, str], name: str | None) -> str:
    """The name of the stored suite named or fingerprinted ``name`` among ``suites``
    (name -> fingerprint); the only one if ``name`` is None. ProbeMismatchError if none."""
    if name is None:
        if len(suites) != 1:
            what = "no probe suite" if not suites else f"{len(suites)} probe suites"
            raise ProbeMismatchError(
                f"experiment {root} has {what}; "
                + ("name one of: " + ", ".join(suites) if suites else "add one first")
            )
        return next(iter(suites))
    by_fp = {fp: n for n, fp in suites.items()}
    stem = name if name in suites else by_fp.get(name)
    if stem is None:
        raise ProbeMismatchError(
            f"no probe suite {name!r} in {root} (have: {', '.join(suites) or 'none'})"
        )
    return stem
