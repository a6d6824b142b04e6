"""Benchmark of the dashboard at 20,000, 100,000 and 1,000,000 checkpoints (prints numbers).

    python benchmarks/dashboard.py                          # the three sizes
    python benchmarks/dashboard.py --sizes 20000 --vector 2000,5000,10000
    python benchmarks/dashboard.py --recorded --runs 1000   # a recorded 20,000-checkpoint map

By default each size is a synthetic map given to the server as a computed map of a
small recorded experiment (benchmarks/_scale.py); headless Chromium measures the time
to a fully drawn page, a zoom and a pan re-rendered, and the answers to hovers and clicks
(in the page, event to answer painted, over 20 points: benchmarks/_answers.py; and
through webdriver's pointer actions, round trips included), and Flask's test client
times the server's callbacks and the hover endpoint. ``--vector`` measures the
maps drawn point by point with WebGL instead, to place the raster threshold
(``fspace.app.raster.VECTOR_LIMIT``).

With ``--recorded`` the experiment is recorded once with tiny MLPs and kept under
``--root``; its map is embedded once with :func:`fspace.pipeline.embed_experiment`
(cached in the experiment). Then every main callback is timed through Flask's test
client (the same ``/_dash-update-component`` requests the browser sends), and headless
Chromium measures how long the trajectories page takes to show every point.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

EXPERIMENT = "bench"
GROUPS = ("pretrained", "random")
DEPTHS = (1, 2, 3)
METHODS = ("rbm", "dae")
IMAGE = 8  # probe inputs are 8x8 images, so the details show receptive fields


def _task(seed: int = 0):
    """A fixed synthetic 10-class task: inputs, labels from a random linear teacher."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    teacher = torch.randn(IMAGE * IMAGE, 10, generator=gen)
    x = torch.randn(600, IMAGE * IMAGE, generator=gen)
    return x[:100], x[100:], (x[100:] @ teacher).argmax(1), teacher


def _record_runs(root: str, indices: list[int], epochs: int) -> int:
    import torch

    from fspace import ProbeSuite, Recorder
    from fspace.models.mlp import make_mlp

    torch.set_num_threads(1)
    probes, x, y, _ = _task()
    suite = ProbeSuite.from_array(probes.numpy(), name="probe")
    for i in indices:
        group, depth = GROUPS[i % 2], DEPTHS[(i // 2) % 3]
        method, seed = METHODS[(i // 6) % 2], i // 12
        kwargs = {"n_in": IMAGE * IMAGE, "hidden": [16] * depth, "n_classes": 10, "seed": i}
        model = make_mlp(**kwargs)
        opt = torch.optim.SGD(model.parameters(), lr=0.2 if group == "pretrained" else 0.1)
        with Recorder(
            Path(root) / EXPERIMENT,
            run=f"{group}-{method}-d{depth}-s{seed}",
            group=group,
            seed=seed,
            config={"depth": depth, "method": method},
            probes=suite,
            model_factory="fspace.models.mlp:make_mlp",
            model_kwargs=kwargs,
        ) as rec:
            for epoch in range(epochs + 1):
                if epoch:
                    for b in range(0, 400, 100):
                        loss = torch.nn.functional.cross_entropy(
                            model(x[b : b + 100]), y[b : b + 100]
                        )
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                with torch.no_grad():
                    error = float((model(x[400:]).argmax(1) != y[400:]).float().mean())
                rec.record(model, epoch=epoch, metrics={"test_error": error})
    return len(indices)


def build(root: Path, runs: int, epochs: int, workers: int = 2) -> Path:
    """Record ``runs`` runs of ``epochs + 1`` checkpoints into ``root/bench`` (resumable)."""
    path = root / EXPERIMENT
    start = time.perf_counter()
    chunks = [list(range(w, runs, workers)) for w in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        done = sum(pool.map(_record_runs, [str(root)] * workers, chunks, [epochs] * workers))
    print(f"recorded {done} runs x {epochs + 1} checkpoints in {time.perf_counter() - start:.0f} s")
    return path


def embed_once(path: Path, method: str) -> float:
    """Embed the experiment with ``method`` unless its map is cached; return seconds."""
    from fspace.pipeline import embed_experiment

    start = time.perf_counter()
    embed_experiment(path, method=method, progress=False)
    return time.perf_counter() - start


# -- server side: the POSTs the browser sends, through Flask's test client ---------------


def _spec(entry: dict, values: dict) -> dict | list:
    """One input/state of a callback request, with its value from ``values``."""
    import json

    ident, prop = entry["id"], entry["property"]
    if not ident.startswith("{"):
        return {"id": ident, "property": prop, "value": values.get((ident, prop))}
    pattern = json.loads(ident)
    columns = values.get((pattern["type"], "columns"), [])
    given = values.get((pattern["type"], prop), [None] * len(columns))
    return [
        {"id": {**pattern, "column": c}, "property": prop, "value": v}
        for c, v in zip(columns, given, strict=True)
    ]


def _outputs(callback: dict, values: dict) -> list | dict:
    outputs = callback["output"]
    many = isinstance(outputs, (list, tuple))
    out = []
    for o in outputs if many else [outputs]:
        entry = _spec({"id": str(o.component_id_str()), "property": o.component_property}, values)
        out.append(
            [{"id": e["id"], "property": e["property"]} for e in entry]
            if isinstance(entry, list)
            else {"id": entry["id"], "property": entry["property"]}
        )
    return out if many else out[0]


def post(client, app, key: str, values: dict, trigger: str):
    """Send the request that runs callback ``key``; return (seconds, bytes)."""
    callback = app.callback_map[key]
    body = {
        "output": key,
        "outputs": _outputs(callback, values),
        "inputs": [_spec(e, values) for e in callback["inputs"]],
        "state": [_spec(e, values) for e in callback.get("state", [])],
        "changedPropIds": [trigger],
    }
    start = time.perf_counter()
    response = client.post("/_dash-update-component", json=body)
    took = time.perf_counter() - start
    if response.status_code not in (200, 204):
        raise RuntimeError(f"{key}: HTTP {response.status_code}: {response.data[:300]!r}")
    return took, len(response.data)


def _key(app, fragment: str) -> str:
    if fragment in app.callback_map:
        return fragment
    hits = [k for k in app.callback_map if fragment in k]
    if len(hits) != 1:
        raise KeyError(f"{len(hits)} callbacks match {fragment!r}")
    return hits[0]


def time_callbacks(app, values: dict, repeat: int) -> list[tuple[str, float, float, int]]:
    """(name, median ms, max ms, response bytes) of each main callback."""
    from fspace.app.frames import FILTERS

    client = app.server.test_client()
    client.get("/")
    full = [None] * len(FILTERS)
    cases = [
        ("page layout (router)", "_pages_content.children", {}, "_pages_location.pathname"),
        ("poll map status", "map-token.data", {}, "trajectories-poll.n_intervals"),
        ("filter choices + slider", "filter-box", {}, "map-token.data"),
        (
            "draw: every checkpoint",
            "trajectory-graph.figure",
            {("filter", "value"): full},
            "map-token.data",
        ),
        (
            "draw: group+depth filter",
            "trajectory-graph.figure",
            {("filter", "value"): [["pretrained"], ["1", "2"], None, None]},
            '{"column":"group","type":"filter"}.value',
        ),
        (
            "draw: epoch window 0-5",
            "trajectory-graph.figure",
            {("filter", "value"): full, ("epoch-window", "value"): [0, 5]},
            "epoch-window.value",
        ),
        (
            "draw: selected run",
            "trajectory-graph.figure",
            {("filter", "value"): full},
            "selected-checkpoint.data",
        ),
        ("click -> checkpoint", "selected-checkpoint.data", {}, "trajectory-graph.clickData"),
        ("checkpoint details", "checkpoint-details.children", {}, "selected-checkpoint.data"),
        ("play step", "play-timer.disabled@", {}, "play-timer.n_intervals"),
        ("URL of the view", "view-query.data", {("filter", "value"): full}, "map-method.value"),
        ("results status", "results-token.data", {}, "results-poll.n_intervals"),
    ]
    rows = []
    for name, fragment, extra, trigger in cases:
        key = (
            _key(app, fragment)
            if fragment != "play-timer.disabled@"
            else next(k for k in app.callback_map if k.startswith("..epoch-window.value@"))
        )
        merged = {**values, **extra}
        if "selected" in name or "details" in name:
            merged[("selected-checkpoint", "data")] = values["selected"]
        times, size = [], 0
        for _ in range(repeat):
            took, size = post(client, app, key, merged, trigger)
            times.append(took * 1000)
        rows.append((name, statistics.median(times), max(times), size))
    return rows


def open_map(app, name: str, method: str) -> tuple[float, dict]:
    """Open the map as the page's first request does; return (seconds until ready,
    request values for :func:`time_callbacks`)."""
    from fspace.app.frames import FILTERS
    from fspace.app.maps import MapSpec
    from fspace.app.state import EXTENSION

    state = app.server.extensions[EXTENSION]
    handle = state.registry.get(name)
    spec = MapSpec.make(method)
    start = time.perf_counter()
    while (status := state.maps.status(handle, spec)).busy:
        time.sleep(0.05)
    took = time.perf_counter() - start
    if status.token is None:
        raise RuntimeError(status.message)
    plot = state.maps.find(status.token).plot
    first = 0
    click = {
        "points": [
            {
                "text": str(plot.runs[plot.run_code[first]]),
                "marker.color": float(plot.epoch[first]),
                "x": float(plot.x[first]),
                "y": float(plot.y[first]),
            }
        ]
    }
    lo, hi = plot.epoch_range
    values = {
        ("_pages_location", "pathname"): "/trajectories",
        ("_pages_location", "search"): f"?exp={name}&map={method}",
        ("trajectories-experiment", "data"): name,
        ("trajectories-poll", "n_intervals"): 1,
        ("map-method", "value"): method,
        ("map-perplexity", "value"): 30,
        ("map-neighbors", "value"): 15,
        ("map-seed", "value"): 0,
        ("map-token", "data"): status.token,
        ("epoch-window", "value"): [lo, hi],
        ("epoch-window", "min"): lo,
        ("epoch-window", "max"): hi,
        ("play-timer", "disabled"): False,
        ("graph-ready", "data"): True,
        ("trajectory-graph", "clickData"): click,
        ("results-experiment", "data"): name,
        ("results-poll", "n_intervals"): 1,
        ("filter", "columns"): list(FILTERS),
        ("filter-box", "columns"): list(FILTERS),
        "selected": str(plot.frame["checkpoint"].iloc[first]),
    }
    return took, values


# -- browser side --------------------------------------------------------------------

COUNT_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
if (!gd || !gd._fullData) return null;
let n = 0;
for (const t of gd._fullData) {
  if (t.meta && t.meta.role === 'checkpoints' && t.visible === true) n += t.x.length;
}
return [n, performance.now()];
"""


def chromium():
    """A headless Chromium driver (software WebGL), as the browser tests use."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--enable-unsafe-swiftshader",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def time_browser(url: str, expected: int) -> None:
    """Print when headless Chromium shows the controls and every point, and how long an
    epoch-slider step takes to redraw the map."""
    from selenium.webdriver.common.keys import Keys

    driver = chromium()
    try:
        # cold: a new browser profile compiles plotly.js (4.8 MB); warm: its code is cached
        for attempt in ("cold", "warm", "warm"):
            driver.get(url)
            controls = _until(driver, None, script=CONTROLS_JS)
            points = _until(driver, expected)
            print(
                f"  {attempt}: controls at {controls:5.0f} ms, "
                f"all {expected:,} points drawn at {points:5.0f} ms",
                flush=True,
            )
        thumb = driver.find_element("css selector", "#epoch-window .dash-slider-thumb-2")
        start = driver.execute_script("return performance.now()")
        thumb.send_keys(Keys.ARROW_LEFT)
        ready = _until(driver, None, lambda n: n < expected)
        print(f"  epoch slider step to redrawn map: {ready - start:5.0f} ms")
    finally:
        driver.quit()


CONTROLS_JS = """
return document.getElementById('map-method') ? [1, performance.now()] : null;
"""


def _until(driver, expected, accept=None, timeout=60.0, script=COUNT_JS) -> float:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = driver.execute_script(script)
        if got and (
            (expected is None and accept is None)
            or got[0] == expected
            or (accept is not None and accept(got[0]))
        ):
            return got[1]
        time.sleep(0.02)
    raise RuntimeError(f"the page did not show the map within {timeout} s")


def serve_in_thread(app):
    import threading

    from waitress.server import create_server

    server = create_server(app.server, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/fspace-bench"))
    parser.add_argument("--sizes", default="20000,100000,1000000", help="synthetic map sizes")
    parser.add_argument("--vector", default="", help="sizes drawn point by point, e.g. 5000")
    parser.add_argument("--recorded", action="store_true", help="a recorded map instead")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=19, help="epochs after epoch 0")
    parser.add_argument("--method", choices=("pca", "tsne", "umap"), default="tsne")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    if not args.recorded:
        from _scale import run

        sizes = [int(n) for n in args.sizes.split(",") if n]
        vector = [int(n) for n in args.vector.split(",") if n]
        return run(args.root / "scale", sizes, vector, args.repeat, not args.no_browser)
    return recorded(args)


def recorded(args: argparse.Namespace) -> int:
    """The benchmark of a recorded experiment's map (``--recorded``)."""
    expected = args.runs * (args.epochs + 1)

    from fspace.app.server import create_app
    from fspace.store import Experiment

    path = args.root / EXPERIMENT
    have = len(Experiment(path).checkpoints()) if path.is_dir() else 0
    if have != expected:
        build(args.root, args.runs, args.epochs)
    print(f"experiment {path}: {expected:,} checkpoints of {args.runs:,} runs")
    print(f"map ({args.method}) cached after {embed_once(path, args.method):.1f} s")

    app = create_app(args.root)
    took, values = open_map(app, EXPERIMENT, args.method)
    print(f"server: first open of the map (header scan + cached map) {took:.1f} s")
    if not args.no_browser:
        server = serve_in_thread(app)
        url = f"http://127.0.0.1:{server.effective_port}/trajectories?exp={EXPERIMENT}"
        # First, while no background job competes for the two cores (the results
        # status below starts the pre-training analyses).
        print("\nheadless Chromium (ms since navigation start):")
        time_browser(f"{url}&map={args.method}", expected)
        server.close()
    print(f"\nserver time per callback, {args.repeat} requests each (Flask test client):")
    print(f"  {'callback':<28} {'median':>8} {'max':>8} {'response':>10}")
    for name, median, worst, size in time_callbacks(app, values, args.repeat):
        print(f"  {name:<28} {median:6.1f}ms {worst:6.1f}ms {size / 1e3:8.0f}kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
