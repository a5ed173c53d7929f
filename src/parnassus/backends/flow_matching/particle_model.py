"""Particle stage: CA-DiT, a cross-attention transformer for the velocity of the PFC set.

Architecture after the PFC-level CFM network of arXiv:2503.19981 (its Fig. 4):

1. GEN tokens y = MLP(GEN features), PFC tokens x = MLP(noisy PFC features x_t),
   both ``(batch, slots, H)``;
2. context c = [masked mean of y, MLP(globals), MLP(sinusoid(1000 t))], ``(batch, 3H)``;
3. blocks, each: x <- CrossAttentionLayer(x attends to y), then
   y <- CrossAttentionLayer(y attends to x) (the last block updates x only);
   there is no self-attention, so PFC tokens exchange information through the GEN tokens;
4. v = MLP([x, c]) per PFC token, ``(batch, pfc slots, 12)``, zero in padded slots.

Each cross-attention layer is a DiT block with adaLN-zero from c
(arXiv:2212.09748): RMSNorm, shift/scale/gate modulation, multi-head attention
with per-head qk-norm and no biases, and a GLU feed-forward network.

Padding: padded tokens are never keys (boolean key mask in
``scaled_dot_product_attention``), never pooled and never in the loss, so the
velocity at real slots does not depend on the padded length.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from parnassus.backends.flow_matching import features as ft
from parnassus.backends.flow_matching.layers import RMSNorm, TimestepEmbedding, masked_mean, mlp, modulate, zero_linear


class GLU(nn.Module):
    """Gated feed-forward network: W_out (SiLU(W_a x) * W_b x), hidden size ratio * H, no biases."""

    def __init__(self, hidden: int, ratio: int = 4):
        super().__init__()
        self.inner = nn.Linear(hidden, 2 * ratio * hidden, bias=False)
        self.outer = nn.Linear(ratio * hidden, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.inner(x).chunk(2, dim=-1)
        return self.outer(F.silu(a) * b)


class KeyMask(NamedTuple):
    """Attention mask of one query set against one key set, built once per network pass."""

    #: Boolean ``(batch, 1, 1, k slots)``, or the float logit bias
    #: ``(batch, heads, q slots, k slots)`` with -inf at padded keys.
    attn_mask: torch.Tensor
    #: Boolean ``(batch,)``: whether the event has any real key.
    has_key: torch.Tensor


def key_mask_for(key_mask: torch.Tensor, bias: torch.Tensor | None = None) -> KeyMask:
    """Build the attention mask for the real keys ``key_mask`` ``(batch, k slots)``, with an optional logit bias.

    scaled_dot_product_attention returns NaN for a query row whose keys are all
    masked. An event without a real key therefore attends to all its slots, and
    :class:`CrossAttention` zeroes its output through ``has_key``.
    """
    has_key = key_mask.any(dim=1)
    safe_mask = (key_mask | ~has_key[:, None])[:, None, None, :]
    if bias is None:
        return KeyMask(safe_mask, has_key)
    return KeyMask(bias.masked_fill(~safe_mask, float("-inf")), has_key)


class CrossAttention(nn.Module):
    """Multi-head cross-attention with per-head RMS qk-norm and a key padding mask."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = hidden // heads
        self.q = nn.Linear(hidden, hidden, bias=False)
        self.k = nn.Linear(hidden, hidden, bias=False)
        self.v = nn.Linear(hidden, hidden, bias=False)
        self.q_norm = RMSNorm(self.head_dim)
        self.k_norm = RMSNorm(self.head_dim)
        self.out = nn.Linear(hidden, hidden, bias=False)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, slots, _ = x.shape
        return x.view(batch, slots, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: KeyMask) -> torch.Tensor:
        """Attend from ``query`` ``(batch, q slots, H)`` to ``keys`` ``(batch, k slots, H)``.

        Padded keys are ignored and the logit bias in ``mask`` (if any) is added.
        A query row whose event has no real key gets 0.
        """
        q = self.q_norm(self._split(self.q(query)))
        k = self.k_norm(self._split(self.k(keys)))
        v = self._split(self.v(keys))
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.attn_mask)

        batch, _, slots, _ = attended.shape
        attended = attended.transpose(1, 2).reshape(batch, slots, -1)
        return self.out(attended) * mask.has_key[:, None, None].to(attended.dtype)


class CrossAttentionLayer(nn.Module):
    """DiT-style layer: q <- q + gate1 Attn(mod(norm1(q)), norm_kv(kv)); q <- q + gate2 GLU(mod(norm2(q)))."""

    def __init__(self, hidden: int, heads: int, context_dim: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = RMSNorm(hidden)
        self.norm2 = RMSNorm(hidden)
        self.norm_kv = RMSNorm(hidden)
        self.attention = CrossAttention(hidden, heads)
        self.mlp = GLU(hidden, mlp_ratio)
        self.ada_ln = nn.Sequential(nn.SiLU(), zero_linear(context_dim, 6 * hidden))

    def forward(self, query, keys, mask: KeyMask, context):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada_ln(context).chunk(6, dim=-1)
        attended = self.attention(modulate(self.norm1(query), shift1, scale1), self.norm_kv(keys), mask)
        query = query + gate1.unsqueeze(1) * attended
        return query + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(query), shift2, scale2))


class DirectionLocality(nn.Module):
    """Attention bias that favours GEN-PFC pairs close in direction (not in the paper).

    A PFC mostly comes from the GEN particles near it in (eta, phi). At flow time
    t the noisy PFC direction is x_t = (1 - t) x + t n with n ~ N(0, 1), so the
    log-likelihood that it came from the direction g of a GEN particle is, up to a
    constant, -|x_t - (1 - t) g|^2 / (2 (w^2 + t^2)) over the direction features
    (T(eta), sin phi, cos phi); w widens the Gaussian, since a PFC is not exactly
    at its GEN particle. Head h of the first ``len(widths)`` heads adds this
    log-likelihood with its own width w_h to its attention logits; the other heads
    get no bias. With it the network attends to the nearby GEN particles from the
    first step instead of learning that locality from the data, which a small
    model on a CPU budget does not manage (it then ignores GEN altogether).

    Args:
        heads: attention heads of the network.
        biased_heads: heads that get a bias (0 turns the bias off).
        min_width, max_width: widths of the biased heads, spaced geometrically,
            in normalised feature units.
    """

    COLUMNS = (ft.ETA, ft.SIN_PHI, ft.COS_PHI)

    def __init__(self, heads: int, biased_heads: int, min_width: float = 0.01, max_width: float = 0.3):
        super().__init__()
        if not 0 <= biased_heads <= heads:
            raise ValueError(f"biased_heads must be in 0..{heads}, not {biased_heads}")
        self.heads = heads
        self.biased_heads = biased_heads
        # With one biased head, logspace returns the narrowest width only.
        widths = torch.logspace(math.log10(min_width), math.log10(max_width), biased_heads)
        self.register_buffer("widths", widths, persistent=False)
        self.register_buffer("columns", torch.tensor(self.COLUMNS), persistent=False)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, gen: torch.Tensor) -> torch.Tensor | None:
        """Return the bias ``(batch, heads, pfc slots, gen slots)``, or None when off.

        Args:
            x_t: noisy PFC features ``(batch, pfc slots, 12)``.
            t: flow time ``(batch,)``.
            gen: GEN features ``(batch, gen slots, 12)``.
        """
        if self.biased_heads == 0:
            return None
        pfc_direction = x_t.index_select(-1, self.columns)
        gen_direction = (1 - t).view(-1, 1, 1) * gen.index_select(-1, self.columns)
        squared = torch.cdist(pfc_direction, gen_direction).square()
        variance = self.widths.square()[None, :] + t.square()[:, None]
        bias = -squared[:, None] / (2 * variance[:, :, None, None])
        free = bias.new_zeros(bias.shape[0], self.heads - self.biased_heads, *bias.shape[2:])
        return torch.cat([bias, free], dim=1).to(x_t.dtype)


#: Largest |feature| of the scaled displacement from the nearest GEN particle.
DISPLACEMENT_CLIP = 5.0
#: Smallest flow time the displacement is divided by.
DISPLACEMENT_MIN_TIME = 0.01
#: Inputs the nearest-GEN features add to a PFC token: the GEN features and the displacement.
N_NEAREST_FEATURES = ft.N_PARTICLE_FEATURES + len(DirectionLocality.COLUMNS)


def nearest_gen_features(mask: KeyMask, x_t: torch.Tensor, t: torch.Tensor, gen: torch.Tensor) -> torch.Tensor:
    """Return the nearest GEN particle's features and the displacement from it, ``(batch, pfc slots, 15)``.

    ``mask`` is the PFC-to-GEN attention mask with the :class:`DirectionLocality`
    bias. The narrowest biased head's weights (the softmax of its bias over real
    GEN particles) average the GEN features into g (12): close to the features of
    the GEN particle a PFC sits on. The displacement (x_t - (1 - t) g) / t over the
    direction columns (3) is then, for a PFC that is its GEN particle (a track),
    the noise that the velocity n - x needs. The network could find both on its
    own, but a small network on a short training budget does not reach the
    precision that low t needs. The displacement divides by at least
    ``DISPLACEMENT_MIN_TIME`` and is clipped to +-``DISPLACEMENT_CLIP``, so that it
    stays finite for PFCs far from any GEN particle. Events without GEN get zeros.
    """
    has_gen = mask.has_key[:, None, None].to(x_t.dtype)
    weights = torch.softmax(mask.attn_mask[:, 0], dim=-1) * has_gen
    nearest = weights @ gen
    columns = list(DirectionLocality.COLUMNS)
    time = t.clamp_min(DISPLACEMENT_MIN_TIME).view(-1, 1, 1)
    displacement = (x_t[..., columns] - (1 - t).view(-1, 1, 1) * nearest[..., columns]) / time
    return torch.cat([nearest, displacement.clamp(-DISPLACEMENT_CLIP, DISPLACEMENT_CLIP)], dim=-1)


class ParticleNet(nn.Module):
    """Velocity field of the particle stage.

    Args:
        hidden: width H (divisible by ``heads``).
        heads: attention heads.
        layers: CA-DiT blocks.
        mlp_ratio: GLU hidden size / H.
        time_factor: tau = time_factor * t in the time embedding.
        locality_heads: heads with the :class:`DirectionLocality` bias (0: none,
            as in the paper).
        nearest_features: add :func:`nearest_gen_features` to the PFC token
            inputs and to the head (needs ``locality_heads >= 1``).
    """

    def __init__(
        self,
        hidden: int = 96,
        heads: int = 6,
        layers: int = 8,
        mlp_ratio: int = 4,
        time_factor: float = 1000.0,
        locality_heads: int = 0,
        nearest_features: bool = False,
    ):
        super().__init__()
        if nearest_features and locality_heads < 1:
            raise ValueError(f"nearest_features needs locality_heads of at least 1, not {locality_heads}")
        self.locality = DirectionLocality(heads, locality_heads)
        self.nearest_features = nearest_features
        extra = N_NEAREST_FEATURES if nearest_features else 0
        context_dim = 3 * hidden
        self.gen_embedding = mlp(ft.N_PARTICLE_FEATURES, [hidden, hidden], hidden)
        self.pfc_embedding = mlp(ft.N_PARTICLE_FEATURES + extra, [hidden, hidden], hidden)
        self.global_embedding = mlp(ft.PARTICLE_GLOBAL_DIM, [hidden, hidden], hidden)
        self.time_embedding = TimestepEmbedding(hidden, time_factor)
        self.pfc_layers = nn.ModuleList(CrossAttentionLayer(hidden, heads, context_dim, mlp_ratio) for _ in range(layers))
        self.gen_layers = nn.ModuleList(CrossAttentionLayer(hidden, heads, context_dim, mlp_ratio) for _ in range(layers - 1))
        self.head = mlp(hidden + context_dim + extra, [hidden, hidden, hidden], ft.N_PARTICLE_FEATURES)

    def condition(self, gen, gen_mask, globals_):
        """Embed what does not change during sampling.

        Args:
            gen: ``(batch, gen slots, 12)``; gen_mask: ``(batch, gen slots)`` bool; globals_: ``(batch, 20)``.

        Returns:
            ``(gen tokens (batch, gen slots, H), (batch, 2H) pooled GEN and global
            embedding, the GEN features themselves for the locality bias)``.
        """
        tokens = self.gen_embedding(gen) * gen_mask.unsqueeze(-1).to(gen.dtype)
        pooled = masked_mean(tokens, gen_mask)
        return tokens, torch.cat([pooled, self.global_embedding(globals_)], dim=-1), gen

    def velocity(self, x, t, pfc_mask, gen_mask, condition):
        """Return v(x_t, t), ``(batch, pfc slots, 12)``, zero at padded slots.

        Args:
            x: noisy PFC features ``(batch, pfc slots, 12)``.
            t: flow time ``(batch,)``.
            pfc_mask: ``(batch, pfc slots)`` bool.
            gen_mask: ``(batch, gen slots)`` bool.
            condition: output of :meth:`condition`.
        """
        gen, fixed_context, gen_features = condition
        context = torch.cat([fixed_context, self.time_embedding(t)], dim=-1)
        pfc_weight = pfc_mask.unsqueeze(-1).to(x.dtype)

        # The masks and the locality bias do not change between layers, so they are built once.
        pfc_bias = self.locality(x, t, gen_features)
        gen_bias = None if pfc_bias is None else pfc_bias.transpose(2, 3)
        pfc_to_gen = key_mask_for(gen_mask, pfc_bias)
        gen_to_pfc = key_mask_for(pfc_mask, gen_bias)

        nearest = None
        pfc_inputs = x
        if self.nearest_features:
            nearest = nearest_gen_features(pfc_to_gen, x, t, gen_features)
            pfc_inputs = torch.cat([x, nearest], dim=-1)
        pfc = self.pfc_embedding(pfc_inputs) * pfc_weight

        for index, pfc_layer in enumerate(self.pfc_layers):
            pfc = pfc_layer(pfc, gen, pfc_to_gen, context)
            if index < len(self.gen_layers):
                gen = self.gen_layers[index](gen, pfc, gen_to_pfc, context)

        broadcast_context = context.unsqueeze(1).expand(-1, pfc.shape[1], -1)
        head_inputs = [pfc, broadcast_context]
        if nearest is not None:
            head_inputs.append(nearest)
        return self.head(torch.cat(head_inputs, dim=-1)) * pfc_weight

    def forward(self, x, t, pfc_mask, gen, gen_mask, globals_):
        return self.velocity(x, t, pfc_mask, gen_mask, self.condition(gen, gen_mask, globals_))
