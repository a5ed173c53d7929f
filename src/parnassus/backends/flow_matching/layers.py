"""Building blocks shared by the event and particle networks (PyTorch).

Imported only by the network modules, never at parnassus import time.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(in_dim: int, hidden: list[int], out_dim: int, activation: type[nn.Module] = nn.SiLU) -> nn.Sequential:
    """Return Linear -> act for each hidden size, then a final Linear without activation."""
    layers: list[nn.Module] = []
    previous = in_dim
    for size in hidden:
        layers += [nn.Linear(previous, size), activation()]
        previous = size
    layers.append(nn.Linear(previous, out_dim))
    return nn.Sequential(*layers)


class TimestepEmbedding(nn.Module):
    """Sinusoidal embedding of the flow time t, then an MLP.

    emb(t) = [cos(tau f_i), sin(tau f_i)], f_i = 10000^(-i / F), i = 0..F-1,
    tau = time_factor * t (the embedding of DiT, arXiv:2212.09748); F = 128.
    Input ``(batch,)``, output ``(batch, hidden)``.
    """

    def __init__(self, hidden: int, time_factor: float = 1.0, frequencies: int = 128):
        super().__init__()
        self.time_factor = time_factor
        self.register_buffer(
            "freqs", torch.exp(-math.log(10000.0) * torch.arange(frequencies, dtype=torch.float32) / frequencies), persistent=False
        )
        self.net = nn.Sequential(nn.Linear(2 * frequencies, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = self.time_factor * t.float()[:, None] * self.freqs[None, :]
        return self.net(torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1))


class RMSNorm(nn.Module):
    """RMSNorm (arXiv:1910.07467): x / sqrt(mean(x^2) + eps) * weight, over the last axis, in float32."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (x * self.weight).to(dtype)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real slots: ``(batch, slots, features)``, mask ``(batch, slots)`` -> ``(batch, features)``.

    Events without a real slot get 0 rather than 0/0.
    """
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation x (1 + scale) + shift; shift and scale ``(batch, hidden)`` broadcast over slots."""
    if x.dim() == 3:
        shift, scale = shift.unsqueeze(1), scale.unsqueeze(1)
    return x * (1 + scale) + shift


def zero_linear(in_dim: int, out_dim: int) -> nn.Linear:
    """Return a Linear layer with zero weight and bias (the "zero" of adaLN-zero, arXiv:2212.09748)."""
    layer = nn.Linear(in_dim, out_dim)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer
