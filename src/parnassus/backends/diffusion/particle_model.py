"""Particle-stage network: v-prediction of PFC kinematics and vertices given GEN.

Following the diffusion model of arXiv:2503.19981 (inspired by OmniLearn,
arXiv:2404.16091):

1. context c = MLP([time embedding, embedding of the GEN and PFC event vectors]);
2. PFC tokens (noisy 7 features and the one-hot class of the slot) and GEN tokens
   (12 features) are embedded and passed through two EdgeConv blocks (DGCNN) each,
   with the k = 3 nearest real neighbours in (eta, phi) of their own set;
3. four DiT blocks (arXiv:2212.09748) with adaLN-zero from c, in one of two modes
   for how PFC tokens see GEN tokens (``attention`` option):

   - ``cross``: PFC self-attention, then PFC -> GEN cross-attention, then an MLP;
     GEN tokens are a fixed memory;
   - ``union``: self-attention over the union of PFC and GEN tokens, each marked
     with a learned type embedding; GEN tokens are updated too;

4. head: LN -> adaLN(shift, scale) from c -> Dense(7), initialised to zero.

Padded particles are excluded from the neighbour search, the EdgeConv
aggregation and every attention (key-padding masks), and all per-token
normalisations are per token, so the output for real PFCs does not depend on
the padding length. Outputs at padded slots are 0.

Imports TensorFlow: import this module only inside functions of the backend.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from parnassus.backends.diffusion import features as ft
from parnassus.backends.diffusion.layers import (
    MLP,
    EdgeConv,
    LazyBuild,
    MaskedAttention,
    TimeEmbedding,
    modulate,
    nearest_neighbours,
    zero_dense,
)

ATTENTION_MODES = ("cross", "union")


def _layer_norm(name):
    return keras.layers.LayerNormalization(epsilon=1e-6, center=False, scale=False, name=name)


class LocalEncoder(LazyBuild, keras.layers.Layer):
    """Embedding plus two EdgeConv blocks on the (eta, phi) kNN graph of one particle set.

    h = Dense(x) + e2 with e1 = EdgeConv(x), e2 = e1 + EdgeConv(e1); input
    ``(batch, particles, F)``, output ``(batch, particles, hidden)``, 0 at padding.
    """

    def __init__(self, hidden: int, neighbours: int, **kwargs):
        super().__init__(**kwargs)
        self.neighbours = neighbours
        self.embedding = MLP(hidden, hidden, name="embedding")
        self.edge1 = EdgeConv(hidden, name="edge1")
        self.edge2 = EdgeConv(hidden, name="edge2")

    def call(self, x, eta, phi, mask, training=False):
        indices, valid = nearest_neighbours(eta, phi, mask, self.neighbours)
        first = self.edge1(x, indices, valid, mask)
        second = first + self.edge2(first, indices, valid, mask)
        return (self.embedding(x, training=training) + second) * mask[:, :, None]


class CrossDiTBlock(LazyBuild, keras.layers.Layer):
    """DiT block with cross-attention: self-attention, cross-attention to GEN, MLP; each adaLN-zero."""

    def __init__(self, hidden: int, heads: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.norm1 = _layer_norm("norm1")
        self.norm2 = _layer_norm("norm2")
        self.norm3 = _layer_norm("norm3")
        self.memory_norm = _layer_norm("memory_norm")
        self.self_attention = MaskedAttention(hidden, heads, name="self_attention")
        self.cross_attention = MaskedAttention(hidden, heads, name="cross_attention")
        self.mlp = MLP(4 * hidden, hidden, activation="gelu", dropout=dropout, name="mlp")
        self.modulation = zero_dense(9 * hidden, name="modulation")

    def call(self, x, mask, memory, memory_mask, context, training=False):
        (s1, c1, g1, s2, c2, g2, s3, c3, g3) = tf.split(self.modulation(tf.nn.silu(context)), 9, axis=-1)
        h = modulate(self.norm1(x), s1, c1)
        x = x + g1[:, None, :] * self.self_attention(h, h, mask)
        h = modulate(self.norm2(x), s2, c2)
        x = x + g2[:, None, :] * self.cross_attention(h, self.memory_norm(memory), memory_mask)
        h = modulate(self.norm3(x), s3, c3)
        x = x + g3[:, None, :] * self.mlp(h, training=training)
        return x * mask[:, :, None]


class DiTBlock(LazyBuild, keras.layers.Layer):
    """DiT block: masked self-attention and MLP, each adaLN-zero modulated by the context."""

    def __init__(self, hidden: int, heads: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.norm1 = _layer_norm("norm1")
        self.norm2 = _layer_norm("norm2")
        self.attention = MaskedAttention(hidden, heads, name="attention")
        self.mlp = MLP(4 * hidden, hidden, activation="gelu", dropout=dropout, name="mlp")
        self.modulation = zero_dense(6 * hidden, name="modulation")

    def call(self, x, mask, context, training=False):
        (s1, c1, g1, s2, c2, g2) = tf.split(self.modulation(tf.nn.silu(context)), 6, axis=-1)
        h = modulate(self.norm1(x), s1, c1)
        x = x + g1[:, None, :] * self.attention(h, h, mask)
        h = modulate(self.norm2(x), s2, c2)
        x = x + g2[:, None, :] * self.mlp(h, training=training)
        return x * mask[:, :, None]


def _eta_phi(features, eta_std: float, eta_mean: float):
    """(eta, phi) of particles from their normalised features [., T(eta), sin phi, cos phi, ...]."""
    eta = features[:, :, 1] * eta_std + eta_mean
    phi = tf.atan2(features[:, :, 2], features[:, :, 3])
    return eta, phi


class ParticleNet(LazyBuild, keras.Model):
    """v_theta(x_t, t | class, GEN, event) for the PFC features.

    Inputs (a dict):
        x: ``(batch, pfc, 7)`` noisy PFC features, padded with 0;
        pfc_class: ``(batch, pfc, 5)`` one-hot class of each PFC slot;
        pfc_mask: ``(batch, pfc)``;
        t: ``(batch,)`` diffusion time in [0, 1];
        gen: ``(batch, gen, 12)``; gen_mask: ``(batch, gen)``;
        particle_globals: ``(batch, 17)`` GEN and PFC event vectors.

    Returns:
        ``(batch, pfc, 7)``: the predicted v, 0 at padded slots.
    """

    def __init__(
        self,
        hidden: int = 128,
        heads: int = 4,
        blocks: int = 4,
        neighbours: int = 3,
        attention: str = "cross",
        dropout: float = 0.0,
        eta_mean: float = 0.0,
        eta_std: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, not {attention!r}")
        self.attention_mode = attention
        self.eta_mean = float(eta_mean)
        self.eta_std = float(eta_std)

        self.time_embedding = TimeEmbedding(hidden, name="time_embedding")
        self.global_embedding = MLP(hidden, hidden, name="global_embedding")
        self.context = MLP(2 * hidden, hidden, name="context")
        self.pfc_encoder = LocalEncoder(hidden, neighbours, name="pfc_encoder")
        self.gen_encoder = LocalEncoder(hidden, neighbours, name="gen_encoder")
        if attention == "cross":
            self.blocks = [CrossDiTBlock(hidden, heads, dropout, name=f"block{i}") for i in range(blocks)]
        else:
            # A learned embedding of the type flag (PFC or GEN) is added to every token.
            self.type_embedding = keras.layers.Embedding(2, hidden, name="type_embedding")
            self.blocks = [DiTBlock(hidden, heads, dropout, name=f"block{i}") for i in range(blocks)]
        self.head_norm = _layer_norm("head_norm")
        self.head_modulation = zero_dense(2 * hidden, name="head_modulation")
        self.head = zero_dense(ft.F_KIN, name="head")

    def call(self, inputs, training=False):
        x, pfc_mask = inputs["x"], inputs["pfc_mask"]
        gen, gen_mask = inputs["gen"], inputs["gen_mask"]

        context = self.context(
            tf.concat(
                [self.time_embedding(inputs["t"]), self.global_embedding(inputs["particle_globals"], training=training)],
                axis=-1,
            ),
            training=training,
        )

        pfc_eta, pfc_phi = _eta_phi(x, self.eta_std, self.eta_mean)
        gen_eta, gen_phi = _eta_phi(gen, self.eta_std, self.eta_mean)
        pfc_tokens = self.pfc_encoder(tf.concat([x, inputs["pfc_class"]], axis=-1), pfc_eta, pfc_phi, pfc_mask, training=training)
        gen_tokens = self.gen_encoder(gen, gen_eta, gen_phi, gen_mask, training=training)

        if self.attention_mode == "cross":
            for block in self.blocks:
                pfc_tokens = block(pfc_tokens, pfc_mask, gen_tokens, gen_mask, context, training=training)
        else:
            n_pfc = tf.shape(pfc_tokens)[1]
            tokens = tf.concat(
                [pfc_tokens + self.type_embedding(tf.zeros([1, 1], "int32")), gen_tokens + self.type_embedding(tf.ones([1, 1], "int32"))],
                axis=1,
            )
            mask = tf.concat([pfc_mask, gen_mask], axis=1)
            for block in self.blocks:
                tokens = block(tokens, mask, context, training=training)
            pfc_tokens = tokens[:, :n_pfc]

        shift, scale = tf.split(self.head_modulation(tf.nn.silu(context)), 2, axis=-1)
        return self.head(modulate(self.head_norm(pfc_tokens), shift, scale)) * pfc_mask[:, :, None]


def dummy_inputs(batch: int = 2, pfc: int = 4, gen: int = 5) -> dict:
    """Inputs of the right shapes, to build the network's weights before loading or copying them."""
    return {
        "x": tf.zeros([batch, pfc, ft.F_KIN]),
        "pfc_class": tf.zeros([batch, pfc, ft.N_CLASSES]),
        "pfc_mask": tf.ones([batch, pfc]),
        "t": tf.fill([batch], 0.5),
        "gen": tf.zeros([batch, gen, ft.F_GEN]),
        "gen_mask": tf.ones([batch, gen]),
        "particle_globals": tf.zeros([batch, ft.G_PARTICLE]),
    }
