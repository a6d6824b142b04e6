"""Regenerate docs/screenshots/linked-views.png: the compare page in headless Chromium.

Records a small experiment (MLPs on 1,000 digits: plain SGD as ``baseline``, SGD with
momentum as ``ours``, four seeds each, eight epochs), serves it, opens the compare page
with a t-SNE map beside an InPCA map of Bhattacharyya distances and two runs selected,
and photographs the whole page.

Usage::

    .venv/bin/python scripts/screenshot_linked.py [--out docs/screenshots] [--work DIR]

``--work`` keeps the recorded experiment (and reuses it). Needs Chromium and
chromedriver (scripts/install-system.sh installs them).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
QUERY = "exp=digits&a=tsne&b=inpca&b.distance=bhattacharyya&runs=baseline-s0,ours-s0"
READY_JS = """
const graphs = ['compare-a-graph', 'compare-b-graph', 'compare-distance'];
return graphs.every(id => {
  const gd = document.querySelector('#' + id + ' .js-plotly-plot');
  return gd && gd._fullData && gd._fullData.some(t => t.meta && t.x && t.x.length
    && ['linked', 'pair-distance'].includes(t.meta.role));
}) && !document.body.innerText.includes('computed');
"""


def record(path: Path, seeds: int = 4, epochs: int = 8) -> None:
    """``baseline`` (SGD) and ``ours`` (momentum 0.9) MLP runs on 1,000 digits."""
    from fspace import ProbeSuite, Recorder
    from fspace.data.digits import load_mnist5k, split_heldout
    from fspace.models.mlp import make_mlp

    train, probe = split_heldout(load_mnist5k(), 300, seed=0)
    pick = np.random.default_rng(0).permutation(len(train.labels))[:1000]
    x, y = torch.tensor(train.images[pick]), torch.tensor(train.labels[pick])
    xp, yp = torch.tensor(probe.images), torch.tensor(probe.labels)
    suite = ProbeSuite.from_array(probe.images, name="digits", targets=probe.labels)
    for group, momentum in (("baseline", 0.0), ("ours", 0.9)):
        for seed in range(seeds):
            kwargs = {"n_in": 784, "hidden": [64], "activation": "relu", "seed": seed}
            model = make_mlp(**kwargs)
            opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=momentum)
            gen = torch.Generator().manual_seed(seed)
            with Recorder(
                path,
                run=f"{group}-s{seed}",
                group=group,
                seed=seed,
                config={"momentum": momentum},
                probes=suite,
                model_factory="fspace.models.mlp:make_mlp",
                model_kwargs=kwargs,
            ) as rec:
                for epoch in range(epochs + 1):
                    for batch in torch.randperm(len(x), generator=gen).split(50) if epoch else ():
                        opt.zero_grad()
                        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                        opt.step()
                    with torch.no_grad():
                        error = float((model(xp).argmax(1) != yp).float().mean())
                    rec.record(model, epoch=epoch, metrics={"test_error": error})


def photograph(root: Path, out: Path) -> None:
    """Serve ``root`` and save the compare page as ``out``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from waitress.server import create_server

    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION

    app = create_app(root, poll_ms=500)
    server = create_server(app.server, host="127.0.0.1", port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--enable-unsafe-swiftshader"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"http://127.0.0.1:{server.effective_port}/compare?{QUERY}")
        end = time.monotonic() + 300
        while not driver.execute_script(READY_JS):
            if time.monotonic() > end:
                raise TimeoutError("the compare page did not finish drawing in 5 minutes")
            time.sleep(0.5)
        time.sleep(1.0)  # the last resize
        height = driver.execute_script("return document.documentElement.scrollHeight")
        metrics = {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        time.sleep(1.0)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        server.close()
        app.server.extensions[EXTENSION].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fspace-linked-"))
    if not (work / "digits").exists():
        record(work / "digits")
    args.out.mkdir(parents=True, exist_ok=True)
    photograph(work, args.out / "linked-views.png")
    print(f"wrote {args.out / 'linked-views.png'}")


if __name__ == "__main__":
    main()
