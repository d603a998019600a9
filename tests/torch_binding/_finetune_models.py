"""Small real models with the layouts :func:`lrkit.torch.param_groups` knows."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """A pre-norm residual MLP block (a transformer block without attention)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class TinyTransformer(nn.Module):
    """``embed``, ``blocks.N``, ``norm``, ``head``: the ViT/BERT layout."""

    def __init__(self, d: int = 8, depth: int = 3, n_in: int = 4, n_out: int = 5) -> None:
        super().__init__()
        self.embed = nn.Linear(n_in, d)
        self.blocks = nn.ModuleList(Block(d) for _ in range(depth))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h))


class TinyGPT(nn.Module):
    """``wte``, ``wpe``, ``h.N``, ``ln_f``, ``lm_head``: the GPT-2 layout."""

    def __init__(self, vocab: int = 11, d: int = 8, depth: int = 2, ctx: int = 6) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d) for _ in range(depth))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for b in self.h:
            h = b(h)
        return self.lm_head(self.ln_f(h))


def sequential_cnn() -> nn.Sequential:
    """A plain ``nn.Sequential`` CNN: conv, batch norm, conv, linear head."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
