"""Keras layers shared by the event and particle networks of the diffusion backend.

Imports TensorFlow: import this module only inside functions of the backend.
Every layer that processes a set of particles takes a mask (1.0 real, 0.0 padding)
and gives the same result for the real particles whatever the padding length.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

#: Added to the attention logits of padded keys; exp(-1e9) is exactly 0 in float32.
_MASKED_LOGIT = -1e9

#: Squared Delta R given to excluded neighbour pairs (padding, the particle itself).
_EXCLUDED_DISTANCE = 1e9


class LazyBuild:
    """Mixin for layers and models whose sublayers build themselves on the first call.

    Keras 3 builds a layer without its own ``build`` by tracing ``call`` symbolically,
    and then traces nested custom layers once per level of nesting. Defining
    ``build`` skips that, which makes creating the networks several times faster.
    """

    def build(self, *args, **kwargs):
        self.built = True


def modulate(x, shift, scale):
    """Apply adaLN: ``x * (1 + scale) + shift``; shift, scale ``(batch, hidden)`` broadcast over tokens."""
    if len(x.shape) == 3:
        shift = shift[:, None, :]
        scale = scale[:, None, :]
    return x * (1.0 + scale) + shift


def masked_mean(x, mask):
    """Mean of ``x`` ``(batch, particles, hidden)`` over real particles; 0 for an event without any."""
    mask = mask[:, :, None]
    total = tf.reduce_sum(x * mask, axis=1)
    count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
    return total / count


def zero_dense(units, name):
    """Create a Dense layer with zero kernel and bias, the adaLN-zero initialisation of DiT (arXiv:2212.09748)."""
    return keras.layers.Dense(units, kernel_initializer="zeros", bias_initializer="zeros", name=name)


class TimeEmbedding(LazyBuild, keras.layers.Layer):
    """Sinusoidal embedding of the diffusion time t in [0, 1], then an MLP.

    emb = MLP([sin(1000 t f_i), cos(1000 t f_i)]) with f_i = 10000^(-i / (frequencies - 1)),
    input ``(batch,)``, output ``(batch, hidden)``.
    """

    def __init__(self, hidden: int, frequencies: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden
        exponent = tf.range(frequencies, dtype=tf.float32) / max(frequencies - 1, 1)
        self.frequencies = tf.exp(-math.log(10000.0) * exponent)
        self.dense1 = keras.layers.Dense(hidden, activation="silu", name="dense1")
        self.dense2 = keras.layers.Dense(hidden, name="dense2")

    def call(self, t):
        angle = 1000.0 * t[:, None] * self.frequencies[None, :]
        return self.dense2(self.dense1(tf.concat([tf.sin(angle), tf.cos(angle)], axis=-1)))


class MLP(LazyBuild, keras.layers.Layer):
    """Dense(hidden, activation) -> Dropout -> Dense(out)."""

    def __init__(self, hidden: int, out: int, activation: str = "gelu", dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.dense1 = keras.layers.Dense(hidden, activation=activation, name="dense1")
        self.dropout = keras.layers.Dropout(dropout)
        self.dense2 = keras.layers.Dense(out, name="dense2")

    def call(self, x, training=False):
        return self.dense2(self.dropout(self.dense1(x), training=training))


class MaskedAttention(LazyBuild, keras.layers.Layer):
    """Multi-head attention with a key-padding mask.

    softmax(Q K^T / sqrt(d) + log(mask)) V, with queries ``(batch, Tq, hidden)``
    and keys ``(batch, Tk, hidden)``. Padded keys get weight exactly 0, and a query
    without any real key gets output 0, so real tokens never see padding.
    """

    def __init__(self, hidden: int, heads: int, **kwargs):
        super().__init__(**kwargs)
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not divisible by the number of heads {heads}")
        self.heads = heads
        self.head_dim = hidden // heads
        self.query = keras.layers.Dense(hidden, use_bias=False, name="query")
        self.key = keras.layers.Dense(hidden, use_bias=False, name="key")
        self.value = keras.layers.Dense(hidden, use_bias=False, name="value")
        self.out = keras.layers.Dense(hidden, name="out")

    def _split(self, x):
        shape = tf.shape(x)
        return tf.reshape(x, [shape[0], shape[1], self.heads, self.head_dim])

    def call(self, queries, keys, key_mask):
        q = self._split(self.query(queries))
        k = self._split(self.key(keys))
        v = self._split(self.value(keys))

        logits = tf.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.head_dim)
        key_mask = key_mask[:, None, None, :]
        weights = tf.nn.softmax(logits + (1.0 - key_mask) * _MASKED_LOGIT, axis=-1) * key_mask

        attended = tf.einsum("bhqk,bkhd->bqhd", weights, v)
        shape = tf.shape(queries)
        attended = tf.reshape(attended, [shape[0], shape[1], self.heads * self.head_dim])
        has_key = tf.cast(tf.reduce_any(key_mask > 0, axis=-1), attended.dtype)[:, 0, :, None]
        return self.out(attended) * has_key


def nearest_neighbours(eta, phi, mask, k: int):
    """Find the k nearest real neighbours of every particle in (eta, phi).

    Delta R^2 = (eta_i - eta_j)^2 + (phi_i - phi_j)^2 with the phi difference
    wrapped into [-pi, pi]. Padded particles and the particle itself are excluded.

    Args:
        eta, phi: ``(batch, particles)``.
        mask: ``(batch, particles)``, 1.0 for real particles.
        k: neighbours per particle.

    Returns:
        ``(indices, valid)``, both ``(batch, particles, min(k, particles))``:
        neighbour indices and a float mask of the real ones (an event with n real
        particles has at most n - 1 real neighbours per particle).
    """
    d_eta = eta[:, :, None] - eta[:, None, :]
    d_phi = phi[:, :, None] - phi[:, None, :]
    d_phi = d_phi - 2.0 * math.pi * tf.round(d_phi / (2.0 * math.pi))
    distance = d_eta * d_eta + d_phi * d_phi

    length = tf.shape(eta)[1]
    excluded = tf.maximum(1.0 - mask[:, None, :], tf.eye(length, dtype=mask.dtype)[None, :, :])
    distance = tf.where(excluded > 0, _EXCLUDED_DISTANCE, distance)

    negative, indices = tf.math.top_k(-distance, k=tf.minimum(k, length))
    valid = tf.cast(-negative < 0.5 * _EXCLUDED_DISTANCE, mask.dtype) * mask[:, :, None]
    return indices, valid


class EdgeConv(LazyBuild, keras.layers.Layer):
    """EdgeConv (DGCNN, arXiv:1801.07829) with mean aggregation over real neighbours.

    h_i = mean_{j in kNN(i)} MLP([x_j - x_i, x_i]), input ``(batch, particles, F)``,
    output ``(batch, particles, hidden)``, 0 for padded particles and for a particle
    without real neighbours.
    """

    def __init__(self, hidden: int, **kwargs):
        super().__init__(**kwargs)
        self.dense1 = keras.layers.Dense(hidden, activation="gelu", name="dense1")
        self.dense2 = keras.layers.Dense(hidden, activation="gelu", name="dense2")

    def call(self, x, indices, valid, mask):
        neighbours = tf.gather(x, indices, batch_dims=1)
        centre = tf.broadcast_to(x[:, :, None, :], tf.shape(neighbours))
        edges = self.dense2(self.dense1(tf.concat([neighbours - centre, centre], axis=-1)))
        count = tf.maximum(tf.reduce_sum(valid, axis=-1, keepdims=True), 1.0)
        aggregated = tf.reduce_sum(edges * valid[:, :, :, None], axis=2) / count
        return aggregated * mask[:, :, None]
