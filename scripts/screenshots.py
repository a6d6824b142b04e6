"""Regenerate the dashboard screenshots of docs/screenshots/ in headless Chromium.

Records three small experiments into a work folder, serves them with the dashboard and
photographs three pages:

- ``trajectories-demo.png``: the trajectories of a small pre-training experiment
  (``fspace experiment pretraining --preset demo``, shrunk to a couple of minutes);
- ``trajectories-baseline-ours.png``: the trajectories of a two-group experiment whose
  groups are named ``baseline`` and ``ours`` (MLPs on digits, plain SGD against SGD
  with momentum);
- ``results-cnn.png``: the results page of a convolutional net experiment
  (``baseline`` and ``ours`` again, at two learning rates).

Usage::

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--work DIR]

``--work`` keeps the recorded experiments (and reuses them on the next run). Needs
Chromium and chromedriver (scripts/install-system.sh installs them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH = 1400
DEMO = [
    "--preset", "demo", "--seeds", "2", "--depths", "1,2", "--width", "100",
    "--n-probe", "300", "--n-valid", "200", "--n-train", "2000",
    "--pretrain-updates", "300", "--finetune-updates", "600", "--finetune-epochs", "6",
    "--lr-grid", "0.3", "--quiet",
]  # fmt: skip
MAP_READY_JS = """
const gd = document.querySelector('#trajectory-graph .js-plotly-plot');
return !!(gd && gd._fullData && gd._fullData.some(t => t.meta && t.meta.role === 'checkpoints'
  && t.x && t.x.length)) && !document.body.innerText.includes('computing');
"""


def digits(n_train: int, n_probe: int, seed: int = 0):
    """Training and probe digits of mnist5k (28x28, shipped with fspace)."""
    from fspace.data.digits import load_mnist5k, split_heldout

    train, probe = split_heldout(load_mnist5k(), n_probe, seed=seed)
    # The file is sorted by class: a random subset, not the first rows.
    pick = np.random.default_rng(seed).permutation(len(train.labels))[:n_train]
    return torch.tensor(train.images[pick]), torch.tensor(train.labels[pick]), probe


def train_and_record(rec, model, opt, x, y, xp, yp, epochs: int, seed: int) -> None:
    """Minibatch SGD, recording the test error and training loss once per epoch."""
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs + 1):
        if epoch:
            for batch in torch.randperm(len(x), generator=gen).split(50):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                opt.step()
        with torch.no_grad():
            error = float((model(xp).argmax(1) != yp).float().mean())
            loss = float(torch.nn.functional.cross_entropy(model(x), y))
        rec.record(model, epoch=epoch, metrics={"test_error": error, "train_loss": loss})


def record_groups(path: Path, kind: str, seeds: int = 3, epochs: int = 6) -> None:
    """``baseline`` and ``ours`` runs: MLPs (plain SGD vs momentum) or convolutional
    nets (two learning rates), on 1,000 digits."""
    from fspace import ProbeSuite, Recorder
    from fspace.models.conv import make_convnet
    from fspace.models.mlp import make_mlp

    x, y, probe = digits(1000, 300)
    suite = ProbeSuite.from_array(probe.images, name="digits", targets=probe.labels)
    xp, yp = torch.tensor(probe.images), torch.tensor(probe.labels)
    for group in ("baseline", "ours"):
        for seed in range(seeds):
            if kind == "cnn":
                kwargs = {"image_shape": [28, 28], "channels": [8, 16], "seed": seed}
                model, factory = make_convnet(**kwargs), "fspace.models.conv:make_convnet"
                lr = 0.03 if group == "baseline" else 0.1
                opt, config = torch.optim.SGD(model.parameters(), lr=lr), {"lr": lr}
            else:
                kwargs = {"n_in": 784, "hidden": [64], "activation": "relu", "seed": seed}
                model, factory = make_mlp(**kwargs), "fspace.models.mlp:make_mlp"
                momentum = 0.0 if group == "baseline" else 0.9
                opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=momentum)
                config = {"momentum": momentum}
            with Recorder(
                path,
                run=f"{group}-s{seed}",
                group=group,
                seed=seed,
                config=config,
                probes=suite,
                model_factory=factory,
                model_kwargs=kwargs,
            ) as rec:
                train_and_record(rec, model, opt, x, y, xp, yp, epochs, seed)


def record(work: Path) -> None:
    """Record the three experiments into ``work`` (those already there are kept)."""
    if not (work / "demo").exists():
        cmd = [sys.executable, "-m", "fspace", "experiment", "pretraining", "-o"]
        subprocess.run([*cmd, str(work / "demo"), *DEMO], check=True)
    for name, kind in (("baseline-ours", "mlp"), ("cnn", "cnn")):
        if not (work / name).exists():
            record_groups(work / name, kind)


def serve(root: Path):
    """A dashboard over ``root`` in a thread; returns its URL and a function to stop it."""
    from waitress.server import create_server

    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION

    app = create_app(root, poll_ms=500)
    server = create_server(app.server, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()

    def stop() -> None:
        server.close()
        app.server.extensions[EXTENSION].close()

    return f"http://127.0.0.1:{server.effective_port}", stop


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--enable-unsafe-swiftshader", f"--window-size={WIDTH},1000"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait(driver, script: str, what: str, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if driver.execute_script(script):
            time.sleep(1.5)  # let the last transitions settle
            return
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def shoot(driver, url: str, ready_js: str, path: Path, height: int | None = None) -> None:
    """Open ``url``, wait for ``ready_js``, and save the page (its full height by
    default) as ``path``."""
    driver.set_window_size(WIDTH, 1000)
    driver.get(url)
    wait(driver, ready_js, url)
    if height is None:
        for _ in range(3):  # plotly redraws at the new size, which may change the height
            height = driver.execute_script(HEIGHT_JS)
            metrics = {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            time.sleep(1.5)
    else:
        driver.set_window_size(WIDTH, height)
        time.sleep(1.5)
    driver.save_screenshot(str(path))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print(f"wrote {path}")


HEIGHT_JS = "return document.documentElement.scrollHeight"
RESULTS_READY_JS = """
const text = document.body.innerText;
const plots = [...document.querySelectorAll('.dash-graph')];
return text.includes('up to date') && !text.includes('computing') && plots.length > 0
  && plots.every(g => { const p = g.querySelector('.js-plotly-plot');
                        return p && p._fullData && p._fullData.length; });
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--work", type=Path, help="keep the recorded experiments here")
    args = parser.parse_args(argv)
    np.seterr(all="ignore")
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        record(work)
        args.out.mkdir(parents=True, exist_ok=True)
        url, stop = serve(work)
        driver = browser()
        try:
            for exp in ("demo", "baseline-ours"):
                page = f"{url}/trajectories?exp={exp}"
                shoot(driver, page, MAP_READY_JS, args.out / f"trajectories-{exp}.png", 1000)
            shoot(driver, f"{url}/results?exp=cnn", RESULTS_READY_JS, args.out / "results-cnn.png")
        finally:
            driver.quit()
            stop()


if __name__ == "__main__":
    main()
