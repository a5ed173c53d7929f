"""TensorFlow set-up of the diffusion backend: import, thread counts and device choice.

Nothing here imports TensorFlow at module import; :func:`import_tensorflow` does,
once, when training or sampling starts.
"""

from __future__ import annotations

import contextlib
import logging
import os

from parnassus.exceptions import InvalidInputError, MissingDependencyError

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "parnassus[tensorflow]"'

_configured = False


def import_tensorflow():
    """Import TensorFlow and Keras 3 for the diffusion backend and set the thread counts.

    Intra-op threads are set to the CPU count available to this process and
    inter-op threads to 2, before TensorFlow starts its runtime; when the runtime
    is already running (another part of the program used TensorFlow first) its
    settings are kept.

    Returns:
        The ``tensorflow`` module.

    Raises:
        MissingDependencyError: TensorFlow or Keras is not installed, or Keras is
            configured for another backend.
    """
    global _configured
    # Keras 3 picks its backend from this variable at first import; the layers of
    # this backend use TensorFlow operations directly.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import tensorflow as tf
        import keras
    except ImportError as error:
        raise MissingDependencyError(
            f"the diffusion backend needs TensorFlow and Keras 3, which failed to import ({error}); "
            f"install them with `{INSTALL_HINT}`"
        ) from error
    if keras.backend.backend() != "tensorflow":
        raise MissingDependencyError(
            f"the diffusion backend needs Keras with the TensorFlow backend, but KERAS_BACKEND is "
            f"{keras.backend.backend()!r}; unset KERAS_BACKEND or set it to 'tensorflow'"
        )
    if not _configured:
        _configured = True
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        try:
            tf.config.threading.set_intra_op_parallelism_threads(cpus)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, cpus))
            log.debug("TensorFlow uses %d intra-op threads", cpus)
        except RuntimeError:
            log.debug("TensorFlow runtime already initialised; keeping its thread settings")
    return tf


def device_name(device: str | None) -> str:
    """Return the TensorFlow device for a user's choice: ``None``/``"auto"`` (GPU when present), ``"cpu"``, ``"gpu"``/``"cuda"``.

    Raises:
        InvalidInputError: an unknown device, or a GPU requested where none is visible.
    """
    tf = import_tensorflow()
    choice = (device or "auto").lower()
    gpus = tf.config.list_logical_devices("GPU")
    if choice == "auto":
        return gpus[0].name if gpus else "/CPU:0"
    if choice == "cpu":
        return "/CPU:0"
    if choice in ("gpu", "cuda") or choice.startswith(("gpu:", "cuda:")):
        if not gpus:
            raise InvalidInputError(f"device {device!r} requested, but TensorFlow sees no GPU; use --device cpu")
        index = int(choice.split(":")[1]) if ":" in choice else 0
        if index >= len(gpus):
            raise InvalidInputError(f"device {device!r} requested, but TensorFlow sees only {len(gpus)} GPU(s)")
        return gpus[index].name
    raise InvalidInputError(f"unknown device {device!r}; use auto, cpu, gpu or gpu:N")


@contextlib.contextmanager
def on_device(device: str | None):
    """Run the block on the chosen TensorFlow device (see :func:`device_name`)."""
    tf = import_tensorflow()
    name = device_name(device)
    with tf.device(name):
        yield name
