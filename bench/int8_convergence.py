"""Training with 8-bit optimizer state against float32 state on a harder task than the
digits: a small transformer (2 encoder layers, d_model 64, 4 heads) learning to reverse
sequences of 10 tokens over a vocabulary of 10, with fastopt.torch's AdamW and Lion, every
tensor's state in 8 bits (min_8bit_size=0). Prints the final training loss and the token
accuracy on 2,048 held-out sequences.

    python bench/int8_convergence.py          # needs torch
"""
import torch

import fastopt.torch as ft

VOCAB, LENGTH, STEPS, BATCH = 10, 10, 600, 64


class Reverser(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, 64)
        self.position = torch.nn.Parameter(torch.randn(LENGTH, 64) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(64, VOCAB)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x) + self.position))


def batch(gen, n):
    x = torch.randint(0, VOCAB, (n, LENGTH), generator=gen)
    return x, x.flip(1)


def run(cls, state_dtype, **options):
    torch.manual_seed(0)
    model = Reverser()
    opt = cls(model.parameters(), state_dtype=state_dtype, min_8bit_size=0, **options)
    gen = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        x, y = batch(gen, BATCH)
        loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = batch(torch.Generator().manual_seed(2), 2048)
    with torch.no_grad():
        accuracy = (model(x).argmax(-1) == y).float().mean().item()
    return loss.item(), accuracy


if __name__ == "__main__":
    torch.set_num_threads(2)
    print(f"reverse {LENGTH} tokens over {VOCAB}, {STEPS} steps of {BATCH}")
    print("| optimizer | state | final training loss | held-out token accuracy |")
    print("|---|---|---|---|")
    for cls, options in ((ft.AdamW, dict(lr=3e-3, weight_decay=1e-2)), (ft.Lion, dict(lr=2e-3, weight_decay=0.0))):
        for state_dtype in ("float32", "int8"):
            loss, accuracy = run(cls, state_dtype, **options)
            print(f"| {cls.__name__} {options} | {state_dtype} | {loss:.4f} | {accuracy:.4f} |", flush=True)
