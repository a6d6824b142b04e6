"""A tiny BERT classifier (built from a config: nothing is downloaded) trained by a
Hugging Face Trainer and recorded at every epoch with its evaluation metrics."""

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import fspace
from fspace.integrations.transformers import FspaceCallback


def make_bert() -> BertForSequenceClassification:
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    return BertForSequenceClassification(BertConfig(vocab_size=64, **sizes))


def main() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 64, (96, 12), generator=gen)  # token ids: int64, kept exactly
    mask = torch.ones_like(ids)
    mask[::3, 8:] = 0  # every third sequence is padding after 8 tokens
    labels = (ids[:, 0] > 32).long()
    rows = [dict(input_ids=ids[i], attention_mask=mask[i], labels=labels[i]) for i in range(96)]
    probes = fspace.ProbeSuite.from_array(
        {"input_ids": ids[64:], "attention_mask": mask[64:]}, targets=labels[64:], name="heldout"
    )
    for seed in range(2):
        torch.manual_seed(seed)
        args = TrainingArguments(
            output_dir=f"trainer/bert-s{seed}",
            num_train_epochs=3,
            learning_rate=1e-3,
            per_device_train_batch_size=16,
            eval_strategy="epoch",
            logging_strategy="epoch",
            save_strategy="no",
            seed=seed,
        )
        callback = FspaceCallback(
            "checkpoints/bert",
            run=f"bert-s{seed}",
            group="bert",
            seed=seed,
            probes=probes,
            model_factory="bert_trainer:make_bert",
        )
        trainer = Trainer(make_bert(), args, train_dataset=rows[:64], eval_dataset=rows[64:])
        trainer.add_callback(callback)
        trainer.train()


if __name__ == "__main__":
    main()
