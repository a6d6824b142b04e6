"""The dashboard under hostile use: bounded background work, contained exports, no
HTTP 500 on crafted callback state, the Host check and the security headers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from conftest import record_experiment

from fspace.app import maps as maps_module
from fspace.app.exports import MAX_CELL_CHARS, ExportFolder, truncate_cells
from fspace.app.jobs import Jobs, QueueFullError
from fspace.app.maps import MapSpec
from fspace.app.security import host_policy, split_host
from fspace.app.server import create_app
from fspace.app.state import EXTENSION, ServerState
from fspace.errors import ConfigError, ExportError

pytestmark = pytest.mark.filterwarnings("ignore:t-SNE. perplexity:UserWarning")
HUGE = "x" * (20 * 2**20)  # a 20 MB config value
NO_FILTERS = [[], [], [], []]
PAGE = [("_pages_content", "children"), ("_pages_store", "data")]


def wait_for(condition, timeout=60):
    """Poll ``condition()`` until it returns something truthy."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if value := condition():
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


PCA = MapSpec("pca")


def ready(state: ServerState, name: str = "exp", spec: MapSpec = PCA):
    """The status of a map once its job has finished."""
    handle = state.registry.get(name)
    return wait_for(lambda: (s := state.maps.status(handle, spec)) and not s.busy and s)


def probe_suite():
    from fspace import ProbeSuite

    gen = np.random.default_rng(0)
    return ProbeSuite.from_array(gen.normal(size=(20, 4)).astype(np.float32), name="probe")


def open_page(client, path: str, search: str = ""):
    """What the page router answers for ``path?search``."""
    return post(
        client,
        {
            "output": ".._pages_content.children..._pages_store.data..",
            "outputs": [{"id": i, "property": p} for i, p in PAGE],
            "inputs": [
                {"id": "_pages_location", "property": "pathname", "value": path},
                {"id": "_pages_location", "property": "search", "value": search},
            ],
            "changedPropIds": ["_pages_location.pathname"],
        },
    )


def post(client, body):
    return client.post("/_dash-update-component", json=body)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A root with one experiment (2 groups x 3 seeds x 5 checkpoints)."""
    root = tmp_path_factory.mktemp("security")
    record_experiment(root / "exp", probe_suite())
    return root


@pytest.fixture
def root(template, tmp_path):
    shutil.copytree(template, tmp_path / "root")
    return tmp_path / "root"


@pytest.fixture(scope="module")
def app(template, tmp_path_factory):
    app = create_app(template, export_dir=tmp_path_factory.mktemp("exports"), poll_ms=200)
    yield app
    app.server.extensions[EXTENSION].close()


@pytest.fixture
def client(app):
    return app.server.test_client()


@pytest.fixture
def token(app):
    with app.server.app_context():
        return ready(app.server.extensions[EXTENSION], spec=MapSpec("pca")).token


def cached_maps(path) -> list:
    """Every cached map of the experiment at ``path``, whichever cache layout holds it."""
    return [*path.glob("embeddings/*.safetensors"), *path.glob("cache/map/*.safetensors")]


# --- bounded background work ----------------------------------------------------------


def test_jobs_share_a_key_and_bound_threads_and_queue():
    gate = threading.Event()
    jobs = Jobs(2, "test-jobs", max_pending=3)
    ran = []

    def work(n):
        gate.wait(10)
        ran.append(n)

    first = jobs.submit(work, 0, key="a")
    assert jobs.submit(work, 99, key="a") is first  # an identical request shares the job
    second = jobs.submit(work, 1, key=1)
    wait_for(lambda: first.started and second.started)
    assert jobs.submit(work, 99, key="a") is first  # also while it runs
    more = [jobs.submit(work, n, key=n) for n in range(2, 5)]
    with pytest.raises(QueueFullError, match="waiting for a free worker"):
        jobs.submit(work, 5, key=5)
    assert jobs.cancel(more[-1]) and more[-1].done() and more[-1].cancelled
    assert not jobs.cancel(first)  # running: it cannot be taken back
    more.insert(0, second)
    assert len([t for t in threading.enumerate() if t.name == "test-jobs"]) <= 2
    gate.set()
    assert all(job.wait(10) for job in [first, *more[:-1]])
    assert sorted(ran) == [0, 1, 2, 3]
    assert len([t for t in threading.enumerate() if t.name == "test-jobs"]) <= 2
    jobs.close()
    assert jobs.submit(work, 6).cancelled


@pytest.mark.slow
def test_forty_map_seeds_never_wait_for_fits_and_stay_bounded(root, monkeypatch):
    state = ServerState(root)
    handle = state.registry.get("exp")
    fits, running, lock = [], {"now": 0, "peak": 0}, threading.Lock()
    gate = threading.Event()  # every fit blocks until the polls are all answered
    real = maps_module.embed

    def counted(*a):
        with lock:
            fits.append(a)
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
        try:
            gate.wait(timeout=60)
            return real(*a)
        finally:
            with lock:
                running["now"] -= 1

    monkeypatch.setattr(maps_module, "embed", counted)
    seen = {"threads": 0, "pending": 0}

    def poll_forty():
        for seed in range(1, 41):
            state.maps.status(handle, MapSpec("pca", None, seed))
            running_threads = sum(t.name == "fspace-map" for t in threading.enumerate())
            seen["threads"] = max(seen["threads"], running_threads)
            seen["pending"] = max(seen["pending"], state.maps._jobs.pending)

    # The polls are answered while no fit can finish: a poll never waits for a fit.
    poller = threading.Thread(target=poll_forty, daemon=True)
    poller.start()
    poller.join(timeout=30)
    polls_done = not poller.is_alive()
    gate.set()
    assert polls_done, "a poll waited for a fit"
    assert not any(e.embedding is not None for e in state.maps._entries.values())
    threads, pending = seen["threads"], seen["pending"]
    assert threads <= maps_module.WORKERS
    wait_for(
        lambda: (
            state.maps._jobs.pending == 0 and not any(e.busy for e in state.maps._entries.values())
        )
    )
    # At any moment at most WORKERS fits run and MAX_PENDING wait (how many run in all
    # depends on how fast each finishes while the polls come in).
    assert running["peak"] <= maps_module.WORKERS and pending <= maps_module.MAX_PENDING
    assert 1 <= len(fits) <= 40
    # A client that polls until each map is drawn still leaves a bounded cache.
    for seed in range(1, maps_module.MAX_CACHED_MAPS + 5):
        ready(state, spec=MapSpec("pca", None, seed))
        threads = max(threads, sum(t.name == "fspace-map" for t in threading.enumerate()))
    assert threads <= maps_module.WORKERS
    assert 1 <= len(cached_maps(root / "exp")) <= maps_module.MAX_CACHED_MAPS
    state.close()


def test_identical_map_requests_share_one_job(root, monkeypatch):
    state = ServerState(root)
    handle = state.registry.get("exp")
    fits = []
    real = maps_module.embed
    monkeypatch.setattr(maps_module, "embed", lambda *a: fits.append(a) or real(*a))
    spec = MapSpec("pca", None, 7)
    statuses = [state.maps.status(handle, MapSpec("pca", None, 7)) for _ in range(20)]
    assert all(s.busy for s in statuses)
    ready(state, spec=spec)
    assert len(fits) == 1
    state.close()


def test_a_full_queue_waits_for_the_next_poll(root):
    state = ServerState(root)
    state.maps._jobs.close()  # no worker takes anything: every request stays queued
    state.maps._jobs = Jobs(1, "fspace-map", max_pending=0)
    status = state.maps.status(state.registry.get("exp"), MapSpec("pca", None, 3))
    assert status.busy and status.token is None and "computing other maps" in status.message
    state.close()


def test_cached_maps_are_capped_least_recently_used_first(root):
    import numpy as np

    handle = ServerState(root).registry.get("exp")
    cache = handle.experiment.cache
    for n in range(12):
        path = cache.put("map", {"n": n}, np.zeros((2, 2)), {})
        os.utime(path, ns=(n * 10**9, n * 10**9))
    assert cache.get("map", {"n": 0}) is not None  # read just now
    maps_module.limit_cached_maps(handle, 4)
    assert sorted(e.key["n"] for e in cache.entries("map")) == [0, 9, 10, 11]


@pytest.mark.parametrize(
    "seed", [maps_module.MAX_SEED + 1, 10**12, -1], ids=["over", "huge", "neg"]
)
def test_map_seed_is_bounded(seed):
    with pytest.raises(ConfigError, match="seed"):
        MapSpec.make("pca", None, seed)
    assert MapSpec.make("pca", None, maps_module.MAX_SEED).random_state == maps_module.MAX_SEED


# --- exports --------------------------------------------------------------------------


def test_export_folder_is_removed_on_close(tmp_path):
    made = ExportFolder()
    table = pd.DataFrame({"a": [1, 2]})
    path, _ = made.table(table, "t")
    assert path.is_file() and path.parent.name.startswith("fspace-exports-")
    made.close()
    assert not path.parent.exists()
    given = ExportFolder(tmp_path / "given")
    path, _ = given.table(table, "t")
    (tmp_path / "given" / "mine.txt").write_text("not an export")
    given.close()
    assert not path.exists() and (tmp_path / "given" / "mine.txt").exists()


@pytest.mark.slow
def test_export_folder_is_removed_at_process_exit(tmp_path):
    code = (
        "import pandas as pd\n"
        "from fspace.app.exports import ExportFolder\n"
        "folder = ExportFolder()\n"
        "path, _ = folder.table(pd.DataFrame({'a': [1]}), 't')\n"
        "print(path.parent)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    folder = out.stdout.strip()
    assert folder and "fspace-exports-" in folder and not os.path.exists(folder)


def test_export_folder_keeps_under_its_size_cap(tmp_path):
    folder = ExportFolder(tmp_path / "x", max_bytes=10_000)
    frame = pd.DataFrame({"a": ["y" * 100] * 30})  # about 3 kB of CSV
    paths = [folder.table(frame, f"t{n}")[0] for n in range(8)]
    assert folder.total() <= 10_000
    assert sum(p.stat().st_size for p in (tmp_path / "x").iterdir()) <= 10_000
    assert paths[-1].exists() and not paths[0].exists()  # the oldest went first
    with pytest.raises(ExportError, match="more than the 0 MiB") as err:
        folder.table(pd.DataFrame({"a": ["z" * 150] * 100}), "big")
    assert str(tmp_path) not in str(err.value)
    assert not (tmp_path / "x" / "big.csv").exists()


def test_long_cells_are_cut_not_copied_into_every_row():
    frame = pd.DataFrame({"run": ["a", "b"], "note": [HUGE, "short"], "n": [1, 2]})
    out, cut = truncate_cells(frame)
    assert cut == 1 and out["note"][1] == "short" and frame["note"][0] is HUGE
    assert len(out["note"][0]) < MAX_CELL_CHARS + 60 and "more characters cut" in out["note"][0]


def test_csv_of_a_huge_config_is_small_and_says_so(tmp_path):
    root = tmp_path / "root"
    record_experiment(root / "exp", probe_suite(), groups=("g",), seeds=(0, 1), epochs=2)
    run_json = root / "exp" / "runs" / "g-s0" / "run.json"
    body = json.loads(run_json.read_text())
    body["config"]["note"] = "x" * 200_000  # the store refuses a 20 MB run.json itself
    run_json.write_text(json.dumps(body))
    app = create_app(root, export_dir=tmp_path / "exports")
    state = app.server.extensions[EXTENSION]
    from fspace.app import downloads  # pages need an app to exist

    with app.server.app_context():
        token = ready(state, spec=MapSpec("pca")).token
        sent, text = downloads.export_csv(1, "exp", token, NO_FILTERS, None)
    assert "long values were cut" in text, text
    assert (tmp_path / "exports" / sent["filename"]).stat().st_size < 100_000
    from fspace.app.details import details_panel

    panel = json.dumps(
        details_panel(state.registry.get("exp"), "g-s0").to_plotly_json(),
        default=lambda o: o.to_plotly_json(),
    )
    assert len(panel) < 100_000 and "more characters cut" in panel
    state.close()


def test_figure_export_refuses_csv_without_naming_server_paths(app, client, token):
    folder = str(app.server.extensions[EXTENSION].export_dir)
    for fmt in ("csv", "../../x", {"a": 1}, None):
        values = {"export-figure.n_clicks": 1, "export-format.value": fmt, "map-token.data": token}
        response = call(app, client, "export", values | {"trajectories-experiment.data": "exp"})
        body = response.get_data(as_text=True)
        assert response.status_code == 200, body
        assert "cannot export the figure as" in body
        assert folder not in body and "/tmp" not in body and "Traceback" not in body


def test_export_names_come_from_the_server_not_the_client(app, token):
    from fspace.app import downloads

    state = app.server.extensions[EXTENSION]
    with app.server.app_context():
        sent, text = downloads.export(
            1, "html", "../../<script>PWNED9", token, NO_FILTERS, None, None
        )
    assert sent["filename"] == "exp-pca-trajectories.html" and "PWNED9" not in text
    html = (state.export_dir / sent["filename"]).read_text()
    assert "PWNED9" not in html and "exp: function space" in html


# --- callbacks on crafted state -------------------------------------------------------


def _name(spec: dict) -> str:
    """``id.property`` of an input or state; a pattern id is named by its type."""
    ident = spec["id"]
    ident = json.loads(ident)["type"] if ident.startswith("{") else ident
    return f"{ident}.{spec['property'].partition('@')[0]}"


def _component(spec: dict, value=None, with_value=True):
    """What the browser sends for one input, state or output (a list for ALL ids)."""
    ident, prop = spec["id"], spec["property"].partition("@")[0]
    extra = {"value": value} if with_value else {}
    if not ident.startswith("{"):
        return {"id": ident, "property": prop, **extra}
    pattern = json.loads(ident)
    values = value if isinstance(value, list) and with_value else [value] * 2
    out = []
    for n, item in enumerate(values):
        concrete = {k: f"{k}{n}" if v == ["ALL"] else v for k, v in pattern.items()}
        out.append({"id": concrete, "property": prop, **({"value": item} if with_value else {})})
    return out


def call(app, client, name, values, default=None):
    """Post the callback ``name`` (or callback-map key) as a browser would, with
    ``values`` by ``id.property`` and ``default`` for the others."""
    from dash._utils import split_callback_id

    key = (
        name
        if name in app.callback_map
        else next(  # the trajectories page's comes first
            k
            for k, cb in app.callback_map.items()
            if getattr(cb.get("callback"), "__name__", 0) == name
        )
    )
    spec = app.callback_map[key]
    outputs = split_callback_id(key)  # a list for several outputs, one dict for one
    ins = [_component(i, values.get(_name(i), default)) for i in spec["inputs"]]
    states = [_component(i, values.get(_name(i), default)) for i in spec["state"]]
    first = ins[0][0] if isinstance(ins[0], list) else ins[0]
    first_id = json.dumps(first["id"]) if isinstance(first["id"], dict) else first["id"]
    body = {
        "output": key,
        "outputs": [_component(o, with_value=False) for o in outputs]
        if isinstance(outputs, list)
        else _component(outputs, with_value=False),
        "inputs": ins,
        "state": states,
        "changedPropIds": [f"{first_id}.{first['property']}"],
    }
    return client.post("/_dash-update-component", json=body)


CLICK = {"points": [{"customdata": [[1]], "curveNumber": 99, "pointNumber": "x"}]}
CRAFTED = {
    "select-bad-point": ("select", {"trajectory-graph.clickData": CLICK}),
    "select-junk": ("select", {"trajectory-graph.clickData": {"points": "nope"}}),
    "refresh-controls": (
        "refresh_controls",
        {
            "epoch-window.value": "all",
            "epoch-window.max": {"x": 1},
            "pending-view.data": {"filters": 5, "epochs": "zz"},
        },
    ),
    "refresh-controls-window": (
        "refresh_controls",
        {"epoch-window.value": [5, "b"], "epoch-window.max": -3},
    ),
    "play": (
        "play",
        {"play.n_clicks": 1, "play-timer.disabled": True, "epoch-window.value": "x"},
    ),
    "play-inverted": (
        "play",
        {"play.n_clicks": 1, "play-timer.disabled": True, "epoch-window.value": [9, 1, 4]},
    ),
    "step": ("step", {"play-timer.n_intervals": 3, "epoch-window.value": [1, "b", 3]}),
    "step-dict": ("step", {"epoch-window.value": {"lo": 1}, "epoch-window.max": "top"}),
    "query": (
        "query",
        {
            "map-method.value": ["tsne"],
            "map-param.value": [{"a": 1}, "x"],
            "map-seed.value": "seed",
            "filter.value": [3, {"x": 1}],
            "epoch-window.value": 7,
            "selected-checkpoint.data": {"x": 1},
            "trajectories-experiment.data": ["exp"],
            "epoch-window.min": "a",
            "pending-view.data": {"filters": 1},
        },
    ),
    "query-pending": (
        "query",
        {"map-method.value": "pca", "map-seed.value": 0, "pending-view.data": {"x": 1}},
    ),
    "poll-seed": (
        "poll",
        {
            "map-method.value": "pca",
            "map-seed.value": 10**30,
            "trajectories-experiment.data": "exp",
        },
    ),
    "poll-path": (
        "poll",
        {"map-method.value": "pca", "trajectories-experiment.data": "../../etc"},
    ),
    "draw": ("draw", {"map-token.data": "TOKEN", "filter.value": 5, "epoch-window.value": "x"}),
    "details": ("details", {"selected-checkpoint.data": {"run": 1}}),
    "close-details": ("close_details", {"close-details.n_clicks": {"n": 1}}),
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_callback_state_never_gets_500(app, client, token, name):
    fn, values = CRAFTED[name]
    values = {"map-token.data": token} | {
        k: token if v == "TOKEN" else v for k, v in values.items()
    }
    response = call(app, client, fn, values)
    body = response.get_data(as_text=True)
    assert response.status_code in (200, 204), body
    assert "Traceback" not in body and 'File "' not in body


JUNK = [None, "../../etc", -(10**30), [[1]], {"a": {"b": []}}, float("1e308"), "x" * 10_000]


@pytest.mark.parametrize(
    "junk", JUNK, ids=["none", "path", "huge", "nested", "dict", "big", "long"]
)
def test_every_callback_takes_junk_without_500(app, client, junk):
    for key, spec in list(app.callback_map.items()):
        if spec.get("callback") is None:  # clientside
            continue
        response = call(app, client, key, {}, default=junk)
        # Dash's own page router refuses a path that is not one (a clean 400)
        allowed = (200, 204, 400) if "_pages_content" in key else (200, 204)
        assert response.status_code in allowed, (key, response.get_data(as_text=True))


def test_malformed_callback_request_is_400(client):
    response = client.post("/_dash-update-component", json={"output": "x.y", "inputs": 5})
    assert response.status_code == 400 and "Traceback" not in response.get_data(as_text=True)


# --- Host check and headers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("bound", "header", "allowed"),
    [
        (("127.0.0.1", 8050), "127.0.0.1:8050", True),
        (("127.0.0.1", 8050), "localhost:8050", True),
        (("127.0.0.1", 8050), "[::1]:8050", True),
        (("127.0.0.1", 8050), "LOCALHOST.:8050", True),
        (("127.0.0.1", 8050), "evil.example:8050", False),
        (("127.0.0.1", 8050), "localhost:9999", False),
        (("127.0.0.1", 8050), "localhost", False),
        (("127.0.0.1", 8050), "", False),
        (("127.0.0.1", 8050), "localhost:8050:1", False),
        (("192.168.1.5", 8050), "192.168.1.5:8050", True),
        (("192.168.1.5", 8050), "localhost:8050", False),
        (("0.0.0.0", 80), "10.1.2.3", True),
        (("0.0.0.0", 80), "rebind.attacker.example", False),
        ((None, None), "localhost:1234", True),
        ((None, None), "attacker.example", False),
    ],
)
def test_host_policy(bound, header, allowed):
    assert host_policy(*bound).allows(header) is allowed


def test_allow_host_extends_the_names():
    policy = host_policy("127.0.0.1", 8050, ["dash.lab.example"])
    assert policy.allows("dash.lab.example:8050") and not policy.allows("other.example:8050")
    assert split_host("[::1]:80") == ("::1", 80) and split_host("a:b") is None


def test_wrong_host_header_gets_400(client):
    assert client.get("/", headers={"Host": "localhost:8050"}).status_code == 200
    for host in ("attacker.example", "attacker.example:8050", "127.0.0.1.attacker.example"):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 400, host
        assert response.headers["X-Frame-Options"] == "DENY"


def test_posts_from_other_web_sites_get_403(client):
    body = {"output": "view-query.data", "inputs": []}
    for origin in ("http://attacker.example", "null", "http://localhost.attacker.example"):
        response = client.post("/_dash-update-component", json=body, headers={"Origin": origin})
        assert response.status_code == 403, origin
    same = client.post("/_dash-update-component", json=body, headers={"Origin": "http://localhost"})
    assert same.status_code != 403


def test_serve_checks_the_bound_host(monkeypatch, root):
    import fspace.app.server
    from fspace.cli import main

    calls = []
    monkeypatch.setattr(fspace.app.server, "_run", lambda *a: calls.append(a))
    args = ["serve", str(root), "--port", "8123", "--allow-host", "lab.example"]
    assert main(args) == 0
    client = calls[0][0].server.test_client()
    assert client.get("/", headers={"Host": "127.0.0.1:8123"}).status_code == 200
    assert client.get("/", headers={"Host": "lab.example:8123"}).status_code == 200
    assert client.get("/", headers={"Host": "127.0.0.1:8050"}).status_code == 400
    assert client.get("/", headers={"Host": "evil.example:8123"}).status_code == 400
    calls[0][1].close()


def test_security_headers_on_every_response(client, token):
    responses = [
        client.get("/"),
        client.get("/trajectories?exp=exp"),
        client.get("/no-such-file.js/_dash-layout"),
        client.get("/assets/style.css"),
        client.get("/_dash-layout"),
        open_page(client, "/trajectories", "?exp=exp"),
        client.get("/", headers={"Host": "attacker.example"}),
    ]
    for response in responses:
        headers = response.headers
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert "script-src 'self' 'sha256-" in csp and "'unsafe-inline'" not in csp.split(";")[1]


def test_csp_allows_every_inline_script_of_the_page(client):
    import base64
    import hashlib
    import re

    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    page = re.sub(r"<!--.*?-->", "", response.get_data(as_text=True), flags=re.S)  # IE notice
    scripts = re.findall(
        r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>", page, re.S
    )
    assert scripts
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


# --- a bad experiment is shown in place -----------------------------------------------


def test_a_bad_experiment_shows_its_error_in_place(root, monkeypatch):
    shutil.copytree(
        root / "exp", root / "bad", ignore=shutil.ignore_patterns("cache", "embeddings")
    )
    (root / "bad" / "runs" / "pretrained-s0" / "run.json").write_text("{not json")
    (root / "bad" / "probes").rename(root / "bad" / "probes-gone")
    app = create_app(root)
    client = app.server.test_client()
    for path, search in (("/", ""), ("/trajectories", "?exp=bad"), ("/results", "?exp=bad")):
        response = open_page(client, path, search)
        body = response.get_data(as_text=True)
        assert response.status_code == 200 and "Traceback" not in body, (path, body[:300])
        assert "bad" in body
    # the other experiment is untouched
    assert "fs-map" in open_page(client, "/trajectories", "?exp=exp").get_data(as_text=True)


def test_one_bad_experiment_is_shown_in_its_row(root, monkeypatch, caplog):
    from fspace.store import Experiment

    shutil.copytree(root / "exp", root / "bad")
    real = Experiment.run_ids

    def run_ids(self):
        if self.path.name == "bad":
            raise OSError(5, "Input/output error")
        return real(self)

    monkeypatch.setattr(Experiment, "run_ids", run_ids)
    body = open_page(create_app(root).server.test_client(), "/").get_data(as_text=True)
    body = body.replace("\\u002f", "/")
    assert "internal error (OSError)" in body and "Traceback" not in body
    assert "/trajectories?exp=exp" in body  # the good experiment's row is there


def test_stopping_the_server_removes_its_exports(monkeypatch, root):
    import waitress

    import fspace.app.server

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(waitress, "serve", stopped)
    app = create_app(root)
    state = app.server.extensions[EXTENSION]
    path, _ = state.exports.table(pd.DataFrame({"a": [1]}), "t")
    fspace.app.server._run(app, state, "127.0.0.1", 8050, 1)
    assert not path.exists() and not path.parent.exists()


def test_a_layout_that_fails_shows_a_notice_not_a_traceback(root, monkeypatch, caplog):
    app = create_app(root)

    def broken():
        raise RuntimeError("secret internals")

    state = app.server.extensions[EXTENSION]
    monkeypatch.setattr(state.registry, "names", broken)
    response = open_page(app.server.test_client(), "/")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "internal error (RuntimeError)" in body
    assert "secret" not in body and "secret internals" in caplog.text
    state.close()
