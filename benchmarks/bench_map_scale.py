"""Large maps outside the page: exported figures and live updates at 20,000 to 1,000,000
checkpoints (prints numbers).

    python benchmarks/bench_map_scale.py                      # 20,000, 100,000, 1,000,000
    python benchmarks/bench_map_scale.py --sizes 100000 --formats png

For each size, a synthetic map (tests/_bigmap.py) is exported as the dashboard and
``fspace export`` export it (:func:`fspace.plot.density.map_figure`: a picture of the
density above 5,000 checkpoints, the paths of two runs on top): the time to build the
figure, then to write each format, and the file's size. Then the map is given to a
dashboard's map store as a computed map of a small recorded experiment, and checkpoints
are recorded one at a time: the time until each is placed (without re-fitting) and the
new map is ready to draw, as a page polling the server would see it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _bigmap import real_points, synthetic_embedding, with_real_runs

EPOCHS = 19


def exports(size: int, formats: list[str], out: Path) -> None:
    """Build the figure of a ``size``-checkpoint map and write it in each format."""
    from fspace.export import write_figure
    from fspace.plot.density import map_figure

    frame = synthetic_embedding(size // (EPOCHS + 1), EPOCHS).frame
    start = time.perf_counter()
    fig = map_figure(frame, title="sweep", highlight_runs=["sweep-r0000003", "sweep-r0000010"])
    print(f"  figure built in {time.perf_counter() - start:.2f} s")
    for fmt in formats:
        start = time.perf_counter()
        path = write_figure(fig, out / f"map-{size}.{fmt}", width=1200, height=850)
        took = time.perf_counter() - start
        print(f"  {fmt:4s} written in {took:5.2f} s, {path.stat().st_size / 2**20:6.2f} MiB")


def live(size: int, root: Path, updates: int) -> None:
    """Seconds from a recorded checkpoint to the new map, ready to draw, ``updates`` times."""
    from conftest import record_experiment
    from test_app_callbacks import probe_suite, record_one

    from fspace.app.maps import MapSpec
    from fspace.app.state import ServerState

    path = root / f"live-{size}"
    record_experiment(path / "exp", probe_suite(), groups=("pretrained",), seeds=(0,))
    state = ServerState(path)
    try:
        handle = state.registry.get("exp")
        embedding = synthetic_embedding(size // (EPOCHS + 1), EPOCHS)
        x0, y0 = embedding.coords.min(axis=0)
        embedding = with_real_runs(embedding, real_points(handle), (x0, y0 - 2.0))
        spec = MapSpec.make("pca")
        start = time.perf_counter()
        token = state.maps.adopt(handle, spec, embedding).token
        print(f"  map prepared in {time.perf_counter() - start:.2f} s")
        for i in range(updates):
            record_one(path / "exp", probe_suite(), run=f"random-s{9 + i}", seed=9 + i)
            start = time.perf_counter()
            while (status := state.maps.status(handle, spec)).token == token or status.busy:
                time.sleep(0.01)
            token = status.token
            print(f"  new checkpoint {i + 1} shown after {time.perf_counter() - start:.2f} s")
    finally:
        state.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,100000,1000000")
    parser.add_argument("--formats", default="png,svg,pdf")
    parser.add_argument("--updates", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = [f for f in args.formats.split(",") if f]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            print(f"{size:,} checkpoints: export")
            exports(size, formats, Path(tmp))
            print(f"{size:,} checkpoints: live updates")
            live(size, Path(tmp), args.updates)
    return 0


if __name__ == "__main__":
    sys.exit(main())
