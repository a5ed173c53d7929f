"""Event-stage network: v-prediction of the PFC event vector given the GEN event.

The PFC event vector is [N_c for the 5 classes, HT, MET_x, MET_y] (normalised,
see :mod:`~parnassus.backends.diffusion.features`); the total PFC multiplicity is
the sum of the class multiplicities, as in the diffusion model of arXiv:2503.19981.

Architecture (the residual family of the paper's event-level network):

- context c = MLP([time embedding, masked mean of the GEN particle embeddings,
  GEN global embedding]);
- the noisy event vector is embedded, normalised and modulated by c (adaLN-zero);
- residual blocks, each LN -> adaLN(shift, scale) -> MLP -> gate, modulated by c;
- head: LN -> adaLN(shift, scale) from c -> Dense, initialised to zero.

Imports TensorFlow: import this module only inside functions of the backend.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from parnassus.backends.diffusion import features as ft
from parnassus.backends.diffusion.layers import MLP, LazyBuild, TimeEmbedding, masked_mean, modulate, zero_dense


class ResidualBlock(LazyBuild, keras.layers.Layer):
    """x + gate * MLP(adaLN(LN(x))), with (shift, scale, gate) = Dense(SiLU(c)), zero-initialised."""

    def __init__(self, hidden: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, center=False, scale=False, name="norm")
        self.mlp = MLP(2 * hidden, hidden, activation="silu", dropout=dropout, name="mlp")
        self.modulation = zero_dense(3 * hidden, name="modulation")

    def call(self, x, context, training=False):
        shift, scale, gate = tf.split(self.modulation(tf.nn.silu(context)), 3, axis=-1)
        return x + gate * self.mlp(modulate(self.norm(x), shift, scale), training=training)


class EventNet(LazyBuild, keras.Model):
    """v_theta(x_t, t | GEN) for the PFC event vector.

    Inputs (a dict):
        x: ``(batch, 8)`` noisy PFC event vector;
        t: ``(batch,)`` diffusion time in [0, 1];
        gen: ``(batch, particles, 12)`` GEN features, padded;
        gen_mask: ``(batch, particles)``;
        gen_globals: ``(batch, 9)``.

    Returns:
        ``(batch, 8)``: the predicted v = alpha_t * noise - sigma_t * x_data.
    """

    def __init__(self, hidden: int = 128, blocks: int = 3, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.settings = {"hidden": hidden, "blocks": blocks, "dropout": dropout}
        self.time_embedding = TimeEmbedding(hidden, name="time_embedding")
        self.gen_embedding = MLP(hidden, hidden, name="gen_embedding")
        self.global_embedding = MLP(hidden, hidden, name="global_embedding")
        self.context = MLP(2 * hidden, hidden, name="context")
        self.input_embedding = keras.layers.Dense(hidden, name="input_embedding")
        self.input_norm = keras.layers.LayerNormalization(epsilon=1e-6, center=False, scale=False, name="input_norm")
        self.input_modulation = zero_dense(2 * hidden, name="input_modulation")
        self.blocks = [ResidualBlock(hidden, dropout, name=f"block{i}") for i in range(blocks)]
        self.head_norm = keras.layers.LayerNormalization(epsilon=1e-6, center=False, scale=False, name="head_norm")
        self.head_modulation = zero_dense(2 * hidden, name="head_modulation")
        self.head = zero_dense(ft.E_PFC, name="head")

    def call(self, inputs, training=False):
        gen = self.gen_embedding(inputs["gen"], training=training)
        pooled = masked_mean(gen, inputs["gen_mask"])
        context = self.context(
            tf.concat(
                [
                    self.time_embedding(inputs["t"]),
                    pooled,
                    self.global_embedding(inputs["gen_globals"], training=training),
                ],
                axis=-1,
            ),
            training=training,
        )
        context_act = tf.nn.silu(context)

        shift, scale = tf.split(self.input_modulation(context_act), 2, axis=-1)
        x = modulate(self.input_norm(self.input_embedding(inputs["x"])), shift, scale)
        for block in self.blocks:
            x = block(x, context, training=training)

        shift, scale = tf.split(self.head_modulation(context_act), 2, axis=-1)
        return self.head(modulate(self.head_norm(x), shift, scale))


def dummy_inputs(batch: int = 2, particles: int = 3) -> dict:
    """Inputs of the right shapes, to build the network's weights before loading or copying them."""
    return {
        "x": tf.zeros([batch, ft.E_PFC]),
        "t": tf.fill([batch], 0.5),
        "gen": tf.zeros([batch, particles, ft.F_GEN]),
        "gen_mask": tf.ones([batch, particles]),
        "gen_globals": tf.zeros([batch, ft.G_GEN]),
    }
