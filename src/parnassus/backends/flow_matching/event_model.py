"""Event stage: a residual network for the velocity of the PFC event quantities.

Generates x = [T(HT), T(N), T(MET_x), T(MET_y)] of the PFCs (normalised, N treated
as continuous) given the GEN particles and the event-stage conditioning vector
(GEN scale info and GEN event quantities). Architecture after the event-level CFM
network of arXiv:2503.19981 (its Fig. 3):

1. context c = [masked mean of MLP(GEN particle), MLP(globals), MLP(sinusoid(t))], ``(batch, 3H)``;
2. h = MLP(x_t), modulated by adaLN-zero from c: h (1 + scale) + shift;
3. residual blocks h <- h + LayerScale(FFN(LayerNorm(h)));
4. v = MLP([LayerNorm(h), c]), ``(batch, 4)``.
"""

from __future__ import annotations

import torch
from torch import nn

from parnassus.backends.flow_matching import features as ft
from parnassus.backends.flow_matching.layers import TimestepEmbedding, masked_mean, mlp, modulate, zero_linear


class ResidualBlock(nn.Module):
    """Pre-norm residual block: h + gamma * FFN(LayerNorm(h)), gamma a per-channel gain starting at 1e-5."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden)
        )
        self.gamma = nn.Parameter(torch.full((hidden,), 1e-5))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.gamma * self.ffn(self.norm(h))


class EventNet(nn.Module):
    """Velocity field of the event stage.

    Args:
        hidden: width H.
        blocks: number of residual blocks.
        time_factor: tau = time_factor * t in the time embedding.
    """

    def __init__(self, hidden: int = 128, blocks: int = 3, time_factor: float = 1.0):
        super().__init__()
        self.gen_embedding = mlp(ft.N_PARTICLE_FEATURES, [2 * hidden], hidden, nn.GELU)
        self.global_embedding = mlp(ft.EVENT_GLOBAL_DIM, [2 * hidden], hidden, nn.GELU)
        self.time_embedding = TimestepEmbedding(hidden, time_factor)
        self.noisy_embedding = mlp(ft.N_EVENT_FEATURES, [2 * hidden], hidden, nn.GELU)
        self.ada_ln = nn.Sequential(nn.SiLU(), zero_linear(3 * hidden, 2 * hidden))
        self.blocks = nn.ModuleList(ResidualBlock(hidden) for _ in range(blocks))
        self.final_norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.head = mlp(4 * hidden, [hidden], ft.N_EVENT_FEATURES, nn.GELU)

    def condition(self, gen: torch.Tensor, gen_mask: torch.Tensor, globals_: torch.Tensor) -> torch.Tensor:
        """Embed what does not change during sampling.

        Args:
            gen: ``(batch, gen slots, 12)``, padded slots arbitrary.
            gen_mask: ``(batch, gen slots)`` bool.
            globals_: ``(batch, 16)``.

        Returns:
            ``(batch, 2H)``: pooled GEN embedding and global embedding.
        """
        pooled = masked_mean(self.gen_embedding(gen), gen_mask)
        return torch.cat([pooled, self.global_embedding(globals_)], dim=-1)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Return v(x_t, t): x ``(batch, 4)``, t ``(batch,)``, condition from :meth:`condition`."""
        context = torch.cat([condition, self.time_embedding(t)], dim=-1)
        shift, scale = self.ada_ln(context).chunk(2, dim=-1)
        h = modulate(self.noisy_embedding(x), shift, scale)
        for block in self.blocks:
            h = block(h)
        return self.head(torch.cat([self.final_norm(h), context], dim=-1))

    def forward(self, x, t, gen, gen_mask, globals_):
        return self.velocity(x, t, self.condition(gen, gen_mask, globals_))
