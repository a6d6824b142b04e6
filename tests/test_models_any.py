"""Any model, any loop: the examples of docs/recording.md (a BERT classifier through the Trainer
callback, a GPT-2 in a plain loop with token probes and an attention mask, a character
LSTM language model, a regression MLP, a CNN through Lightning, imported checkpoints),
each recorded, evaluated, embedded, exported and opened in the dashboard with no extra
flags; plus GPT-2 through the Trainer and BERT through a plain loop.

Every example runs once, as ``python NAME.py`` would run it, in one folder; nothing is
downloaded (the transformers models are built from tiny configs).
"""

from __future__ import annotations

import os
import re
import runpy
import shlex
import shutil
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fspace import Experiment, ProbeSuite, Recorder, evaluate
from fspace.cli import main
from fspace.importing import import_checkpoints

pytest.importorskip("transformers")
pytest.importorskip("lightning.pytorch")

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::UserWarning")]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# example file -> (experiment, kind, runs, checkpoints per run, its model factory)
CASES = {
    "bert_trainer": ("bert", "classification", 2, 4, "bert_trainer:make_bert"),
    "gpt2_loop": ("gpt2", "sequence", 2, 4, "gpt2_loop:make_gpt2"),
    "char_lstm": ("char-lstm", "sequence", 2, 5, "char_lstm:make_lstm"),
    "regression": ("regression", "regression", 4, 8, "regression:make_regressor"),
    "lightning_cnn": ("cnn", "classification", 2, 4, "lightning_cnn:make_cnn"),
    "import_old_run": ("imported", "classification", 1, 6, "import_old_run:make_net"),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder where every example has run, as a user runs it: ``python NAME.py``."""
    folder = tmp_path_factory.mktemp("examples")
    for name in CASES:
        shutil.copy(EXAMPLES / f"{name}.py", folder)
    sys.path.insert(0, str(folder))  # the recorded factories, "NAME:make_...", import
    cwd = Path.cwd()
    try:
        os.chdir(folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in CASES:
                runpy.run_path(str(folder / f"{name}.py"), run_name="__main__")
    finally:
        os.chdir(cwd)
    yield folder
    sys.path.remove(str(folder))


def experiment(workdir: Path, name: str) -> Path:
    return workdir / "checkpoints" / CASES[name][0]


@pytest.mark.parametrize("name", list(CASES))
def test_example_is_recorded_with_its_kind(workdir, name):
    _, kind, runs, per_run, _ = CASES[name]
    exp = Experiment(experiment(workdir, name))
    assert len(exp.runs()) == runs
    assert len(exp.checkpoints()) == runs * per_run
    vectors = evaluate(exp, progress=False)  # cached while recording (or by the example)
    assert vectors.kind == kind
    assert vectors.matrix.shape[0] == runs * per_run
    assert np.isfinite(vectors.matrix).all()
    assert np.ptp(vectors.matrix, axis=0).max() > 1e-3  # training moved the function


@pytest.mark.parametrize("name", list(CASES))
def test_example_evaluates_embeds_and_exports_with_no_flags(workdir, name, capsys):
    exp = str(experiment(workdir, name))
    assert main(["evaluate", exp, "-q"]) == 0
    assert main(["embed", exp, "-q"]) == 0
    out = workdir / f"{name}.html"
    assert main(["export", exp, "-o", str(out), "-q"]) == 0
    html = out.read_text()
    assert all(r.id in html for r in Experiment(exp).runs())


@pytest.mark.parametrize("name", [n for n in CASES if n != "import_old_run"])
def test_stored_weights_evaluate_to_the_recorded_vectors(workdir, tmp_path, name):
    """Offline evaluation from the stored weights, through the run's factory and the
    kind the experiment remembers, gives the vectors computed while training."""
    _, _, _, _, factory = CASES[name]
    copy = tmp_path / "exp"
    shutil.copytree(experiment(workdir, name), copy)
    exp = Experiment(copy)
    run = exp.runs()[0]
    folder = exp.checkpoints(run.id)[0].path.parent
    import_checkpoints(
        folder, copy, run="offline", model_factory=factory, model_kwargs=run.model_kwargs
    )
    vectors = evaluate(exp, model_factory=factory, progress=False)
    runs = vectors.points["run"].to_numpy()
    np.testing.assert_allclose(
        vectors.matrix[runs == "offline"], vectors.matrix[runs == run.id], atol=2e-3
    )


def test_gpt2_through_the_trainer_callback(workdir, tmp_path):
    from gpt2_loop import make_gpt2
    from transformers import Trainer, TrainingArguments

    from fspace.integrations.transformers import FspaceCallback

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 48, (40, 10), generator=gen)
    mask = torch.ones_like(ids)
    mask[:, 7:] = torch.randint(0, 2, (40, 1), generator=gen)  # some prompts are shorter
    targets = ids.masked_fill(mask == 0, -100)  # no loss on padding
    rows = [dict(input_ids=ids[i], attention_mask=mask[i], labels=targets[i]) for i in range(32)]
    probes = ProbeSuite.from_array({"input_ids": ids[32:], "attention_mask": mask[32:]})
    torch.manual_seed(0)
    model = make_gpt2()
    callback = FspaceCallback(tmp_path / "exp", run="gpt2", probes=probes, kind="sequence")
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=2,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    Trainer(model, args, train_dataset=rows, callbacks=[callback]).train()
    vectors = evaluate(tmp_path / "exp", progress=False)
    assert vectors.kind == "sequence"
    assert [(p.epoch, p.step) for p in vectors.points.itertuples()] == [(0, 0), (1, 4), (2, 8)]
    # one distribution per real position: 8 prompts x 10 positions, less the padding
    assert vectors.layout == (int(mask[32:].sum()), 48)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids[32:], attention_mask=mask[32:]).logits
    expected = torch.softmax(logits, -1)[mask[32:].bool()].reshape(-1).numpy()
    np.testing.assert_allclose(vectors.matrix[-1], expected, atol=2e-3)


def test_bert_in_a_plain_loop_with_dict_probes(workdir, tmp_path):
    from bert_trainer import make_bert

    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 64, (24, 12), generator=gen)
    mask = torch.ones_like(ids)
    mask[::2, 6:] = 0
    labels = (ids[:, 0] > 32).long()
    probes = ProbeSuite.from_array({"input_ids": ids[16:], "attention_mask": mask[16:]})
    torch.manual_seed(0)
    model = make_bert()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with Recorder(tmp_path / "exp", run="bert", probes=probes) as rec:
        for epoch in range(3):
            if epoch:
                out = model(input_ids=ids[:16], attention_mask=mask[:16], labels=labels[:16])
                opt.zero_grad()
                out.loss.backward()
                opt.step()
            rec.record(model, epoch=epoch)
    vectors = evaluate(tmp_path / "exp", progress=False)
    assert vectors.kind == "classification" and vectors.layout == (8, 2)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=ids[16:], attention_mask=mask[16:]).logits
    np.testing.assert_allclose(
        vectors.matrix[-1], torch.softmax(logits, -1).reshape(-1).numpy(), atol=2e-3
    )


# the dashboard ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard(workdir):
    import threading

    from waitress.server import create_server

    from fspace.app.server import create_app
    from fspace.app.state import EXTENSION

    app = create_app(workdir / "checkpoints", poll_ms=500)
    server = create_server(app.server, host="127.0.0.1", port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.effective_port}", app=app)
    server.close()
    app.server.extensions[EXTENSION].close()


@pytest.mark.parametrize("name", list(CASES))
def test_dashboard_details_of_every_example(workdir, dashboard, name):
    from test_app_callbacks import text_of

    from fspace.app.pages import trajectories

    ckpt = Experiment(experiment(workdir, name)).checkpoints()[-1]
    with dashboard.app.server.app_context():
        panel = text_of(trajectories.details(ckpt.key, CASES[name][0]))
    assert f"{ckpt.run} · epoch {ckpt.epoch}" in panel and "Metrics of the run" in panel
    assert not re.search(r"error|traceback|cannot", panel, re.IGNORECASE), panel[:1000]


@pytest.mark.browser
@pytest.mark.filterwarnings("ignore::DeprecationWarning:selenium.*")
def test_dashboard_shows_every_example(workdir, dashboard):
    from test_dashboard_browser import CHROMEDRIVER, CHROMIUM, FLAGS, counts, page_text, wait_for

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Chromium and chromedriver (scripts/install-system.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        for name, (exp, _, runs, per_run, _) in CASES.items():
            driver.get(f"{dashboard.url}/trajectories?exp={exp}")
            expected = [runs * per_run, runs]
            # a map not fitted yet is fitted by the dashboard first (numba compiles once)
            wait_for(driver, lambda d, e=expected: counts(d) == e, 120, f"the map of {name}")
            text = page_text(driver)
            assert not re.search(r"error|traceback|cannot", text, re.IGNORECASE), text[:500]
    finally:
        driver.quit()


# the README's examples, and the recording guide (docs/recording.md) ---------------------


def test_readme_shows_every_example_as_it_is():
    readme = (ROOT / "README.md").read_text()
    for name in CASES:
        text = (EXAMPLES / f"{name}.py").read_text()
        assert f"```python\n{text}```" in readme, f"the README's examples/{name}.py differs"
        assert f"(examples/{name}.py)" in readme, f"the README does not link examples/{name}.py"


def test_readme_import_commands_run_where_the_example_ran(workdir, tmp_path, monkeypatch, capsys):
    guide = (ROOT / "docs" / "recording.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", guide, re.DOTALL)
    block = next(b for b in blocks if "fspace import old_run" in b)
    shutil.copytree(workdir / "old_run", tmp_path / "old_run")
    shutil.copytree(workdir / "checkpoints" / "imported", tmp_path / "checkpoints" / "imported")
    shutil.copy(workdir / "import_old_run.py", tmp_path)
    monkeypatch.chdir(tmp_path)
    for line in block.splitlines():
        argv = shlex.split(line, comments=True)
        assert argv[0] == "fspace"
        assert main(argv[1:]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "imported 0 checkpoints into run 'old-s0'" in out
    assert "imported 1 checkpoints into run 'final'" in out
    vectors = evaluate(tmp_path / "checkpoints" / "imported", progress=False)
    assert sorted(vectors.points["run"].unique()) == ["final", "old-s0"]
    final = vectors.matrix[vectors.points["run"].to_numpy() == "final"]
    last = vectors.matrix[(vectors.points["run"] == "old-s0") & (vectors.points["epoch"] == 5)]
    np.testing.assert_allclose(final, last, atol=1e-6)  # the same weights, the same function
