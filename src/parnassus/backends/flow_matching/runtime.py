"""PyTorch at run time: the import check, device and thread choice, network construction."""

from __future__ import annotations

import logging
import os
from typing import Any

from parnassus.exceptions import InvalidInputError, MissingDependencyError

log = logging.getLogger(__name__)


def import_torch():
    """Import PyTorch, or raise :class:`MissingDependencyError` with the install command."""
    try:
        import torch
    except ImportError as error:
        raise MissingDependencyError(
            'the flow-matching backend needs PyTorch, which is not installed: pip install "parnassus[torch]"'
        ) from error
    return torch


def select_device(device: str | None):
    """Return the torch device: ``device`` when given, else CUDA when available, else the CPU."""
    torch = import_torch()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        selected = torch.device(device)
    except RuntimeError as error:
        raise InvalidInputError(f"invalid device {device!r}: {error}; use cpu, cuda or cuda:N") from error
    if selected.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} requested but PyTorch sees no CUDA device; use --device cpu")
    return selected


def use_all_cpus() -> int:
    """Set PyTorch's intra-op thread count to the CPUs this process may use; return it.

    A positive ``OMP_NUM_THREADS`` in the environment (the standard OpenMP limit)
    takes precedence, so that jobs sharing a machine can ask for fewer threads.
    """
    torch = import_torch()
    requested = os.environ.get("OMP_NUM_THREADS", "")
    if requested.isdigit() and int(requested) > 0:
        threads = int(requested)
    else:
        try:
            threads = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            threads = os.cpu_count() or 1
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def build_networks(config: dict[str, Any]):
    """Construct the event and particle networks described by ``config`` (on the CPU)."""
    from parnassus.backends.flow_matching.event_model import EventNet
    from parnassus.backends.flow_matching.particle_model import ParticleNet

    event_net = EventNet(
        hidden=config["event_hidden"], blocks=config["event_blocks"], time_factor=config["event_time_factor"]
    )
    particle_net = ParticleNet(
        hidden=config["particle_hidden"],
        heads=config["particle_heads"],
        layers=config["particle_layers"],
        mlp_ratio=config["mlp_ratio"],
        time_factor=config["particle_time_factor"],
        # Checkpoints written before these settings existed have neither the bias nor the nearest-GEN features.
        locality_heads=int(config.get("locality_heads", 0)),
        nearest_features=bool(config.get("nearest_features", False)),
    )
    return event_net, particle_net


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
