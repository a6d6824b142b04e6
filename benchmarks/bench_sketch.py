"""The Hellinger sketch of a language model's outputs: distortion, size and record() time.

    python benchmarks/bench_sketch.py                      # GPT-2 vocabulary, 256 x 64
    python benchmarks/bench_sketch.py --vocab 2000 --prompts 64 --tokens 32   # quick

A tiny GPT-2 (``GPT2Config(n_layer=2, n_embd=32, n_head=2)``, random weights, nothing
downloaded) is evaluated on ``--prompts`` random prompts of ``--tokens`` tokens; its
full function vector holds prompts x tokens x vocab probabilities. Checkpoints are the
model after 0, 1, 2, ... SGD steps on random text (so distances range from small to
large). Printed:

- the relative error of sketch distances against the exact Hellinger distances
  ``sqrt(sum over positions of H^2)``, over all pairs of checkpoints, for each ``k``
  (the issue's target: at most 5% at k = 4,096);
- the bytes per checkpoint of the sketch against the full probability vector;
- the time of ``Recorder.record()`` on the training thread with the sketch form
  (vectors computed on the recorder's background thread, and inline), with
  ``token_logprob`` and without probes (weights only): the first call (which computes
  its vector inline, to fail at once on a model that does not fit), the later ones,
  and ``close()``, which waits for the background thread.

The exact distances never hold a full vector: they are accumulated over batches of
prompts, with every checkpoint's probabilities for one batch in memory at a time.
Needs ``pip install 'fspace[transformers]'``. Runs on the GPU when there is one.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fspace import ProbeSuite, Recorder
from fspace.outputs import Rows
from fspace.outputs.sketch import sketch_rows


def build(vocab: int, tokens: int, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)  # transformers initialises from the global generator
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=tokens,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config).eval()


def checkpoints(model, n: int, vocab: int, tokens: int, device) -> list:
    """The model after 0, 1, 3, 6, ... SGD steps on random token sequences."""
    gen = torch.Generator().manual_seed(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    out, steps = [], 0
    for i in range(n):
        for _ in range(i):
            ids = torch.randint(0, vocab, (8, tokens), generator=gen).to(device)
            loss = model(input_ids=ids, labels=ids).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
        out.append((steps, copy.deepcopy(model).eval()))
    return out


@torch.no_grad()
def exact_and_sketches(models, suite, ks, batch, device):
    """Exact pairwise squared Hellinger distances and each model's sketch for each k."""
    n = len(models)
    d2 = torch.zeros(n, n, dtype=torch.float64)
    sketches = {k: [0.0] * n for k in ks}
    start = 0
    for _, _, inputs in suite.batches(batch, device):
        mask = inputs["attention_mask"].bool()
        roots = []
        for i, m in enumerate(models):
            logits = m(**inputs).logits[mask]  # (rows, vocab)
            roots.append(torch.softmax(logits.float(), -1).sqrt())
            for k in ks:
                rows = Rows(logits.unsqueeze(0), start=start)
                sketches[k][i] = sketches[k][i] + sketch_rows(rows, k, seed=0)[0].double()
        for i, j in itertools.combinations(range(n), 2):
            d2[i, j] += 0.5 * ((roots[i] - roots[j]) ** 2).sum(dtype=torch.float64).item()
        start += int(mask.sum())
    return d2 + d2.T, sketches


def record_times(models, suite, rounds: int) -> dict[str, tuple[float, float, float]]:
    """Seconds on the training thread per variant: the first record() call, the median
    of the later ones, and close() (which waits for the background thread)."""
    sketch = {"probes": suite, "output": "sketch", "output_params": {"k": 4096}}
    variants = {
        "weights only": {},
        "token_logprob": {"probes": suite, "output": "token_logprob"},
        "sketch k=4096": sketch,
        "sketch k=4096, background=False": {**sketch, "background": False},
    }
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, kwargs) in enumerate(variants.items()):
            calls = []
            rec = Recorder(Path(tmp) / "exp", run=f"v{i}", **kwargs)
            for epoch, model in enumerate(models[:rounds]):
                t = time.perf_counter()
                rec.record(model, epoch=epoch)
                calls.append(time.perf_counter() - t)
            t = time.perf_counter()
            rec.close()
            later = statistics.median(calls[1:]) if len(calls) > 1 else float("nan")
            out[name] = (calls[0], later, time.perf_counter() - t)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--prompts", type=int, default=256)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--checkpoints", type=int, default=6)
    p.add_argument("--k", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--batch", type=int, default=8, help="prompts per batch")
    p.add_argument("--rounds", type=int, default=3, help="record() calls timed per variant")
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, args.vocab, (args.prompts, args.tokens), generator=gen)
    mask = torch.ones_like(ids)
    suite = ProbeSuite({"input_ids": ids, "attention_mask": mask}, name="prompts")
    model = build(args.vocab, args.tokens).to(device)
    models = [m for _, m in checkpoints(model, args.checkpoints, args.vocab, args.tokens, device)]
    print(
        f"device {device}; GPT-2 n_layer=2 n_embd=32 vocab {args.vocab}; "
        f"{args.prompts} prompts x {args.tokens} tokens; {len(models)} checkpoints"
    )
    t = time.perf_counter()
    d2, sketches = exact_and_sketches(models, suite, args.k, args.batch, device)
    print(f"exact distances and sketches in {time.perf_counter() - t:.1f} s")
    pairs = list(itertools.combinations(range(len(models)), 2))
    exact = torch.tensor([d2[i, j].sqrt().item() for i, j in pairs])
    print(f"exact Hellinger distances: {exact.min():.3f} .. {exact.max():.3f}")
    for k in args.k:
        s = sketches[k]
        approx = torch.tensor([(s[i] - s[j]).norm().item() for i, j in pairs])
        rel = (approx / exact - 1).abs()
        print(f"k={k:6d}: relative error mean {rel.mean():.2%}, max {rel.max():.2%}")
    full = args.prompts * args.tokens * args.vocab * 4
    for k in args.k:
        print(
            f"bytes per checkpoint: sketch k={k} {k * 4:,} vs full vector {full:,} "
            f"({full / (k * 4):,.0f}x smaller)"
        )
    print(f"record() on the training thread ({device.type}): first call, later calls, close()")
    for name, (first, later, close) in record_times(models, suite, args.rounds).items():
        print(f"  {name}: {first:.2f} s, {later:.2f} s, {close:.2f} s")


if __name__ == "__main__":
    main()
