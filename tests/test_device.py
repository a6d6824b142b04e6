"""The device option: "auto" resolution, one-line errors, and the GPU code paths run on
the CPU against the CPU reference (the same paths on CUDA when there is one)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from test_distances import as_vectors, distributions

import fspace.device as device_mod
from fspace.cli import main
from fspace.device import DeviceError, check_device, resolve_device
from fspace.distances import DISTANCES, _device, base, pairwise
from fspace.distances._device import block_rows
from fspace.embedding import embed, ivf, principal, rerank
from fspace.embedding import neighbors as nb
from fspace.embedding import pca as pca_mod
from fspace.vectors import FunctionVectors

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
NAMES = DISTANCES.names()


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


@pytest.fixture
def cpu_as_gpu(monkeypatch):
    """The GPU code paths (blocks on a torch device, budgets) taken on the CPU, with a
    small budget so that every matrix is cut into several blocks."""
    budget = lambda device, share=0.5: 60_000  # noqa: E731
    monkeypatch.setattr(device_mod, "on_gpu", lambda device: True)
    monkeypatch.setattr(device_mod, "memory_budget", budget)
    for module in (nb, ivf, rerank, pca_mod, principal):
        monkeypatch.setattr(module, "on_gpu", lambda device: True)
    for module in (nb, ivf, rerank, principal):
        monkeypatch.setattr(module, "memory_budget", budget)


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


# --- resolution and errors ---------------------------------------------------------


@pytest.mark.parametrize("name", ["auto", None, " AUTO "], ids=["auto", "none", "spaced"])
def test_auto_is_the_cpu_without_a_gpu(no_gpu, name):
    assert resolve_device(name) == torch.device("cpu")


@pytest.mark.parametrize("name", ["auto", None], ids=["auto", "none"])
def test_auto_is_the_gpu_when_torch_sees_one(one_gpu, name):
    assert resolve_device(name) == torch.device("cuda")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("cpu", "cpu"), (torch.device("cpu"), "cpu"), ("cuda", "cuda"), ("cuda:0", "cuda:0")],
    ids=["cpu", "torch-cpu", "cuda", "cuda0"],
)
def test_explicit_devices(one_gpu, name, expected):
    assert resolve_device(name) == torch.device(expected)


@pytest.mark.parametrize("name", ["cuda", "cuda:1"])
def test_a_missing_gpu_is_a_one_line_error_naming_the_option(no_gpu, name):
    with pytest.raises(DeviceError) as err:
        resolve_device(name, option="--device")
    text = _one_line(err)
    assert f"--device={name!r}" in text and "no CUDA GPU" in text and "cpu" in text


def test_a_gpu_index_beyond_the_count_is_refused(one_gpu):
    with pytest.raises(DeviceError, match=r"sees 1 CUDA GPU\(s\) \(cuda:0 to cuda:0\)"):
        resolve_device("cuda:1")


@pytest.mark.parametrize(
    ("name", "match"),
    [("gpu0", "is not a device"), ("mps", "only cpu and cuda"), (3.5, "is not a device")],
    ids=["garbage", "mps", "number"],
)
def test_names_that_are_not_devices(name, match):
    with pytest.raises(DeviceError, match=match) as err:
        resolve_device(name)
    _one_line(err)


def test_check_device_wants_a_name():
    assert check_device("cpu") == "cpu"
    with pytest.raises(DeviceError, match="must be a device name"):
        check_device(torch.device("cpu"))


def test_pairwise_on_a_missing_gpu(no_gpu):
    v = as_vectors(distributions(5, 3, 4))
    with pytest.raises(DeviceError, match="device='cuda'") as err:
        pairwise(v, "hellinger", device="cuda")
    _one_line(err)


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_methods_refuse_a_missing_gpu_before_fitting(no_gpu, method):
    v = as_vectors(distributions(8, 3, 4))
    with pytest.raises(DeviceError, match="device='cuda'") as err:
        embed(v, method, device="cuda")
    _one_line(err)


@pytest.mark.parametrize("command", ["stats", "evaluate"])
def test_cli_device_error_is_one_line(no_gpu, tmp_path, capsys, command):
    assert main([command, str(tmp_path / "none"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device='cuda'" in err[0] and "no CUDA GPU" in err[0]


def test_cli_evaluate_refuses_a_device_with_ray(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "none"), "--device", "cpu", "--ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device='cpu' does not apply with --ray" in err[0]


def test_cli_embed_and_stats_on_the_cpu(recorded, capsys):
    from fspace.pipeline import embed_experiment

    assert main(["embed", str(recorded), "--method", "pca", "--device", "cpu", "-q"]) == 0
    assert "'device': 'cpu'" in capsys.readouterr().out
    # the device is no part of the cached map's key: the same map, read back
    cached = embed_experiment(recorded, method="pca", params={"device": "auto"}, progress=False)
    assert cached.params["device"] == "cpu"
    assert main(["stats", str(recorded), "--device", "cpu", "--n-boot", "9", "--n-perm", "9"]) == 0
    assert main(["embed", str(recorded), "--method", "mds", "--device", "cpu", "-q"]) == 2
    assert "--device applies to --method pca or tsne only" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["embed", "stats", "evaluate"])
def test_cli_help_shows_the_device_option(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--device" in out and "auto (the GPU if torch sees one, else the CPU)" in out


def test_import_fspace_does_not_import_torch():
    code = "import sys, fspace, fspace.device, fspace.distances; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- distances through the device code, on the CPU -------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_device_blocks_equal_the_cpu_matrix(cpu_as_gpu, monkeypatch, name):
    v = as_vectors(distributions(70, 9, 5, seed=1))
    other = as_vectors(distributions(23, 9, 5, seed=2))
    with monkeypatch.context() as m:
        m.setattr(device_mod, "on_gpu", lambda device: False)
        ref, ref_other = pairwise(v, name), pairwise(other, name, other=v)
    calls = []
    fill = _device.fill_on_device
    monkeypatch.setattr(_device, "fill_on_device", lambda *a, **k: calls.append(1) or fill(*a, **k))
    got = pairwise(v, name, device="cpu")
    assert calls  # the blocks went through the device code
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    assert np.array_equal(got, got.T) and not np.diag(got).any()
    np.testing.assert_allclose(
        pairwise(other, name, other=v, device="cpu"), ref_other, rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("name", ["euclidean", "hellinger", "bhattacharyya", "symmetric_kl"])
def test_device_blocks_in_float32(cpu_as_gpu, name):
    v = as_vectors(distributions(40, 9, 5, seed=3))
    got = pairwise(v, name, device="cpu", precision="float32")
    ref = pairwise(v, name)  # float64
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_bhattacharyya_floor_below_float32_on_the_device(cpu_as_gpu):
    v = as_vectors(distributions(20, 6, 4, seed=5))
    got = pairwise(v, "bhattacharyya", device="cpu", precision="float32", floor=1e-90)
    ref = pairwise(v, "bhattacharyya", floor=1e-90)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    assert got.max() > 20  # the disjoint probe of rows 0 and 1 counts -log(1e-90) / 6


def test_block_rows_fit_the_budget():
    a = (np.zeros((1000, 50)), np.zeros(1000))
    rows = block_rows(a, a, 1_000_000)
    assert 8 * 4 * rows * rows <= 1_000_000 and 4 * rows * 2 * (50 * 8 + 8) <= 1_000_000
    assert block_rows(a, a, 10**15) == 8192


def test_a_distance_without_device_blocks_runs_on_the_cpu_or_says_so():
    class Plain(base.Distance):
        def prepare(self, vectors, params):
            return (vectors.matrix,)

        def block(self, a, b, params):
            return np.zeros((len(a[0]), len(b[0])))

    gpu = torch.device("cuda")
    assert not base.runs_on_device(Plain())
    assert base._use_device("plain", Plain(), gpu, "auto") is False
    with pytest.raises(DeviceError, match="distance 'plain' has no GPU blocks"):
        base._use_device("plain", Plain(), gpu, "cuda")
    assert all(base.runs_on_device(DISTANCES.get(n).obj()) for n in NAMES)


# --- neighbours and principal components through the device code, on the CPU -----


def _clusters(n: int = 240, d: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, d)) * 3
    return (centres[rng.integers(0, 6, n)] + rng.normal(size=(n, d))).astype(np.float32)


def test_exact_and_queried_neighbours_on_the_device_path(cpu_as_gpu):
    x = _clusters()
    found = nb.exact_neighbors(x, 9, n_components=2, device="cpu")
    dist, idx = NearestNeighbors(n_neighbors=9).fit(x.astype(np.float64)).kneighbors()
    np.testing.assert_allclose(found.distances, dist, rtol=1e-4, atol=1e-4)
    assert np.mean(found.indices == idx) > 0.99
    assert found.components.shape == (len(x), 2) and found.mean.device.type == "cpu"
    queries = x[:15] + np.random.default_rng(1).normal(0, 0.3, (15, x.shape[1]))
    qi, qd = nb.query_neighbors(x, found, queries, 4, chunk_bytes=5000, device="cpu")
    dist, idx = NearestNeighbors(n_neighbors=4).fit(x).kneighbors(queries)
    np.testing.assert_allclose(qd, dist, rtol=1e-4, atol=1e-3)  # float32 inner products
    np.testing.assert_array_equal(qi, idx)


def test_ivf_blocks_with_their_temporaries_fit_the_device_budget(monkeypatch):
    # A block of squared distances is made from a product of its size (and is masked by
    # a boolean array of its size): both at once must stay within the device's budget.
    budget, sizes, squared = 40_000, [], ivf._squared
    reference = ivf.ivf_neighbors(_clusters(400, 5, seed=3), 8, device="cpu")

    def spy(*args):
        out = squared(*args)
        sizes.append(out.nbytes)
        return out

    monkeypatch.setattr(ivf, "on_gpu", lambda device: True)
    monkeypatch.setattr(ivf, "memory_budget", lambda device, share=0.5: budget)
    monkeypatch.setattr(ivf, "_squared", spy)
    found = ivf.ivf_neighbors(_clusters(400, 5, seed=3), 8, device="cpu")
    assert 2.25 * max(sizes) <= budget
    np.testing.assert_array_equal(found.indices, reference.indices)
    np.testing.assert_allclose(found.distances, reference.distances, rtol=1e-6)


@pytest.mark.parametrize("budget", [60_000, 10**9], ids=["streamed", "kept-on-device"])
def test_principal_coordinates_ivf_and_rerank_equal_on_both_paths(monkeypatch, budget):
    x = _clusters(300, 80, seed=1)

    def run():
        pc = nb.principal_coordinates(x, 6, random_state=3, device="cpu", chunk_bytes=9000)
        coarse = ivf.ivf_neighbors(pc.coords.numpy(), 12, random_state=1, device="cpu")
        fine = rerank.rerank_neighbors(x, coarse.indices, 6, mean=pc.mean, device="cpu")
        exact = nb.exact_neighbors(x, 7, n_components=2, device="cpu", chunk_bytes=9000)
        return pc, coarse, fine, pc.project(x[:10], device="cpu"), exact

    pc, coarse, fine, proj, exact = run()
    with monkeypatch.context() as m:
        for module in (nb, ivf, rerank, principal):
            m.setattr(module, "on_gpu", lambda device: True)
            m.setattr(module, "memory_budget", lambda device, share=0.5: budget)
        pc2, coarse2, fine2, proj2, exact2 = run()
    np.testing.assert_allclose(exact2.distances, exact.distances, rtol=1e-4, atol=1e-4)
    assert np.mean(exact2.indices == exact.indices) > 0.99
    pca = PCA(n_components=2, svd_solver="full").fit_transform(x)  # the Gram's, exactly
    signs = np.sign((exact2.components.numpy() * pca).sum(0))
    np.testing.assert_allclose(exact2.components.numpy(), pca * signs, atol=1e-3)
    torch.testing.assert_close(pc2.coords, pc.coords, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(proj2, proj)
    np.testing.assert_array_equal(coarse2.indices, coarse.indices)
    np.testing.assert_array_equal(fine2.indices, fine.indices)
    np.testing.assert_allclose(fine2.distances, fine.distances, rtol=1e-6)


@pytest.mark.parametrize("shape", [(200, 30), (30, 200), (2, 5), (6, 1)], ids=str)
def test_pca_axes_on_the_device_path_equal_scikit_learn(shape):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * np.linspace(3, 0.1, shape[1])).astype(np.float32)
    k = min(2, *shape)
    ref = PCA(n_components=k, svd_solver="full").fit(x)
    axes = pca_mod.principal_axes(x, k, torch.device("cpu"))
    np.testing.assert_allclose(axes.transform(x), ref.transform(x), atol=1e-4)
    np.testing.assert_allclose(axes.mean_, ref.mean_, atol=1e-6)
    if min(shape) > 2:  # the axes themselves, with scikit-learn's signs
        np.testing.assert_allclose(axes.components_, ref.components_, atol=1e-4)


def test_pca_axes_of_large_matrices_are_randomised_and_close(monkeypatch):
    x = _clusters(300, 80, seed=2)
    monkeypatch.setattr(pca_mod, "EXACT_UP_TO", 50)
    monkeypatch.setattr(pca_mod, "BLOCK_BYTES", 8 * 80 * 7)  # transform in blocks of 7 rows
    axes = pca_mod.principal_axes(x, 2, torch.device("cpu"), random_state=1)
    ref = PCA(n_components=2, svd_solver="full").fit(x)
    np.testing.assert_allclose(axes.components_, ref.components_, atol=1e-3)
    np.testing.assert_allclose(axes.transform(x), ref.transform(x), atol=1e-2)


def test_pca_method_on_the_device_path(cpu_as_gpu):
    x = _clusters(50, 20)
    points = pd.DataFrame({"run": "r", "checkpoint": [f"r/{i}" for i in range(len(x))]})
    emb = embed(FunctionVectors(x[:40], points[:40], "fp"), "pca", device="cpu")
    assert isinstance(emb._state, pca_mod.Axes)  # the axes found on the device path
    ref = PCA(n_components=2, svd_solver="full").fit(x[:40])
    np.testing.assert_allclose(emb.coords, ref.transform(x[:40]), atol=1e-4)
    more = emb.transform(FunctionVectors(x[40:], points[40:], "fp"))
    np.testing.assert_allclose(more.coords[40:], ref.transform(x[40:]), atol=1e-4)
    assert emb.params["device"] == "cpu"


# --- on a GPU ---------------------------------------------------------------------


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize("name", NAMES)
def test_gpu_distances_equal_cpu(name):
    v = as_vectors(distributions(300, 20, 6, seed=7))
    other = as_vectors(distributions(50, 20, 6, seed=8))
    for rows, kwargs in ((v, {}), (other, {"other": v})):  # (300, 300) and (50, 300)
        np.testing.assert_allclose(
            pairwise(rows, name, device="cuda", **kwargs),
            pairwise(rows, name, device="cpu", **kwargs),
            rtol=1e-9,
            atol=1e-9,
        )


@pytest.mark.gpu
@CUDA
def test_gpu_neighbours_and_components_equal_cpu():
    x = _clusters(500, 120)
    cpu = nb.exact_neighbors(x, 10, n_components=2, device="cpu")
    gpu = nb.exact_neighbors(x, 10, n_components=2, device="cuda")
    np.testing.assert_allclose(gpu.distances, cpu.distances, rtol=1e-4, atol=1e-4)
    assert np.mean(gpu.indices == cpu.indices) > 0.99
    torch.testing.assert_close(gpu.components.abs(), cpu.components.abs(), rtol=1e-3, atol=1e-3)
    pc_cpu = nb.principal_coordinates(x, 5, device="cpu")
    pc_gpu = nb.principal_coordinates(x, 5, device="cuda")
    torch.testing.assert_close(pc_gpu.coords, pc_cpu.coords, rtol=1e-3, atol=1e-3)
    coords = pc_cpu.coords.numpy()
    a = ivf.ivf_neighbors(coords, 8, device="cpu")
    b = ivf.ivf_neighbors(coords, 8, device="cuda")
    assert np.mean(b.indices == a.indices) > 0.95  # k-means may round a point elsewhere
    r_cpu = rerank.rerank_neighbors(x, a.indices, 5, device="cpu")
    r_gpu = rerank.rerank_neighbors(x, a.indices, 5, device="cuda")
    np.testing.assert_allclose(r_gpu.distances, r_cpu.distances, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_gpu_maps_match_cpu(method):
    x = _clusters(300, 40)
    points = pd.DataFrame({"run": "r", "checkpoint": [f"r/{i}" for i in range(len(x))]})
    v = FunctionVectors(x, points, "fp")
    extra = {"neighbors": "gram", "n_iter": 50} if method == "tsne" else {}
    cpu = embed(v, method, device="cpu", **extra)
    gpu = embed(v, method, device="cuda", **extra)
    if method == "pca":
        np.testing.assert_allclose(gpu.coords, cpu.coords, atol=1e-3)
    else:
        assert abs(gpu.quality["trustworthiness"] - cpu.quality["trustworthiness"]) < 0.02
