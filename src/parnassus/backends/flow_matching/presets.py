"""Training presets of the flow-matching backend.

``paper``: the sizes and optimiser settings of PARNASSUS (F), arXiv:2503.19981
Table III (event network H = 128 with 3 residual blocks; particle network H = 96,
6 heads, 8 CA-DiT blocks; batch 128; Lion, weight decay 0.01; learning rate
1.2e-4 down to 1e-5 by cosine annealing; gradient-norm clip 1.0; 70 epochs).
These networks have 470,788 and 4,864,716 trainable parameters, against the
470,532 and 4,864,427 of Table III.
The published model samples the event stage with a PNDM-type solver at 25 steps
and the particle stage with Flow-DPM-Solver; 25 particle steps lose almost no
quality according to the paper, so 25 is the default here.

``small``: a narrower model meant to reach a useful quality within about an hour
of training on a 2-core CPU. The epoch count suits a few thousand training
events; benchmarks/bench_flow_matching.py measures the training rate.

``small`` has 116,356 (event) and 773,484 (particle) parameters. ``tiny`` has
10,596 and 15,884 and is meant for tests: it trains in seconds.
"""

from __future__ import annotations

from typing import Any

from parnassus.exceptions import InvalidInputError

_COMMON: dict[str, Any] = {
    "event_time_factor": 1.0,
    # Event-stage times are drawn with density 3 (1 - t)^2, denser near the data
    # end t = 0, as the authors' event network draws them (3 t^2 with t = 1 data).
    "event_time_power": 3.0,
    "particle_time_factor": 1000.0,
    "mlp_ratio": 4,
    "weight_decay": 0.01,
    "beta1": 0.9,
    "beta2": 0.99,
    "grad_clip": 1.0,
    "cosine_weight": 1.0,
    "warmup_fraction": 0.05,
    "chunk_size": 20000,
    "normalisation": "auto",
    "fit_events": 20000,
    "max_events": None,
    "event_solver": "pndm",
    "event_steps": 25,
    "particle_solver": "dpm-solver++2m",
    "particle_steps": 25,
    # Attention heads of the particle network with the direction-locality bias
    # (see DirectionLocality). 0 keeps the paper's network.
    "locality_heads": 0,
    # Features of the nearest GEN particle in the PFC token inputs (see
    # nearest_gen_features). They need locality_heads >= 1.
    "nearest_features": False,
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        **_COMMON,
        "event_hidden": 128,
        "event_blocks": 3,
        "particle_hidden": 96,
        "particle_heads": 6,
        "particle_layers": 8,
        "batch_size": 128,
        "epochs": 70,
        "lr_max": 1.2e-4,
        "lr_min": 1e-5,
        "ema_decay": 0.999,
    },
    "small": {
        **_COMMON,
        "event_hidden": 64,
        "event_blocks": 2,
        "particle_hidden": 64,
        "particle_heads": 4,
        "particle_layers": 3,
        "locality_heads": 3,
        "nearest_features": True,
        "batch_size": 64,
        "epochs": 15,
        "lr_max": 3e-4,
        "lr_min": 1e-5,
        "ema_decay": 0.999,
    },
    "tiny": {
        **_COMMON,
        "event_hidden": 16,
        "event_blocks": 1,
        "particle_hidden": 16,
        "particle_heads": 2,
        "particle_layers": 1,
        "locality_heads": 1,
        "nearest_features": True,
        "mlp_ratio": 2,
        "batch_size": 16,
        "epochs": 2,
        "lr_max": 1e-3,
        "lr_min": 1e-4,
        "warmup_fraction": 0.1,
        "ema_decay": 0.9,
        "chunk_size": 5000,
    },
}


def make_config(preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the configuration of a preset with ``overrides`` applied.

    Raises:
        InvalidInputError: unknown preset or override key, or an override of the wrong type.
    """
    if preset not in PRESETS:
        raise InvalidInputError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    config = dict(PRESETS[preset])
    for key, value in (overrides or {}).items():
        if key not in config:
            raise InvalidInputError(
                f"unknown flow-matching setting {key!r}; valid settings: {', '.join(sorted(config))}"
            )
        default = config[key]
        if default is not None and value is not None and not isinstance(default, str):
            try:
                value = type(default)(value)
            except (TypeError, ValueError) as error:
                raise InvalidInputError(f"setting {key}={value!r} is not a {type(default).__name__}") from error
        config[key] = value
    if config["particle_hidden"] % config["particle_heads"]:
        raise InvalidInputError(
            f"particle_hidden={config['particle_hidden']} is not divisible by particle_heads={config['particle_heads']}"
        )
    if not 0 <= config["locality_heads"] <= config["particle_heads"]:
        raise InvalidInputError(
            f"locality_heads={config['locality_heads']} must lie between 0 and particle_heads={config['particle_heads']}"
        )
    if config["nearest_features"] and config["locality_heads"] < 1:
        raise InvalidInputError(
            f"nearest_features=true needs locality_heads of at least 1, not {config['locality_heads']}; "
            "raise locality_heads or set nearest_features=false"
        )
    if config["event_steps"] < 1 or config["particle_steps"] < 1:
        raise InvalidInputError("event_steps and particle_steps must be at least 1")
    return config
