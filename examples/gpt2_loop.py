"""A tiny GPT-2 (built from a config: nothing is downloaded) trained in a plain PyTorch
loop, recorded with prompts of different lengths: a dict probe suite of token ids and
an attention mask, one next-token distribution per real (unpadded) position."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel

import fspace


def make_gpt2() -> GPT2LMHeadModel:
    sizes = dict(n_positions=16, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=48, **sizes))


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    base = torch.arange(16).repeat(80, 1) * torch.randint(1, 4, (80, 1), generator=gen)
    ids = (base + torch.randint(0, 48, (80, 1), generator=gen)) % 48  # arithmetic sequences
    mask = (torch.arange(16) < torch.randint(6, 17, (80, 1), generator=gen)).long()
    probes = fspace.ProbeSuite.from_array(
        {"input_ids": ids[64:], "attention_mask": mask[64:]}, name="prompts"
    )
    for seed in range(2):
        torch.manual_seed(seed)
        model = make_gpt2()
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
        with fspace.Recorder(
            "checkpoints/gpt2",
            run=f"gpt2-s{seed}",
            group="gpt2",
            seed=seed,
            probes=probes,
            kind="sequence",  # (prompts, positions, vocabulary) next-token distributions
            model_factory="gpt2_loop:make_gpt2",
        ) as rec:
            for epoch in range(4):
                for batch in torch.randperm(64).split(16) if epoch else []:
                    x, m = ids[batch], mask[batch]
                    out = model(input_ids=x, attention_mask=m, labels=x.masked_fill(m == 0, -100))
                    opt.zero_grad()
                    out.loss.backward()
                    opt.step()
                rec.record(model, epoch=epoch)


if __name__ == "__main__":
    main()
