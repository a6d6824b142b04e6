"""A character-level LSTM language model, recorded as a sequence model: its function
vector holds one next-character distribution per position of every probe text."""

import torch
from torch import nn

import fspace

TEXT = "the quick brown fox jumps over the lazy dog. " * 12
VOCAB = sorted(set(TEXT))


class CharLSTM(nn.Module):
    def __init__(self, vocab: int = len(VOCAB), hidden: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.lstm = nn.LSTM(16, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (n, positions) -> (n, positions, vocab)
        return self.head(self.lstm(self.embed(ids))[0])


def make_lstm(hidden: int = 32) -> CharLSTM:
    return CharLSTM(hidden=hidden)


def main() -> None:
    codes = torch.tensor([VOCAB.index(c) for c in TEXT])  # int64 character ids
    windows = codes.unfold(0, 21, 5)  # (n, 21) overlapping windows of 21 characters
    probes = fspace.ProbeSuite.from_array(windows[:12, :-1], name="texts")
    train_x, train_y = windows[12:, :-1], windows[12:, 1:]
    for hidden in (16, 32):
        torch.manual_seed(0)
        model = make_lstm(hidden)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        with fspace.Recorder(
            "checkpoints/char-lstm",
            run=f"lstm-h{hidden}",
            group=f"hidden-{hidden}",
            probes=probes,
            kind="sequence",
            model_factory="char_lstm:make_lstm",
            model_kwargs={"hidden": hidden},
        ) as rec:
            for epoch in range(5):
                for batch in torch.randperm(len(train_x)).split(32) if epoch else []:
                    logits = model(train_x[batch])
                    loss = nn.functional.cross_entropy(logits.transpose(1, 2), train_y[batch])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                rec.record(model, epoch=epoch)


if __name__ == "__main__":
    main()
