"""Compare the two ways PFC tokens see GEN tokens in the diffusion backend's particle network.

``cross``: PFC self-attention plus PFC -> GEN cross-attention in every DiT block;
``union``: self-attention over the union of PFC and GEN tokens with a type embedding.

Both are trained for the same number of Lion steps on the same synthetic (GEN, PFC)
events (GEN smeared into PFC with dropped and added particles), from the same seed,
and compared by the particle-stage validation loss (v-prediction MSE over real PFCs,
fixed validation times and noise) of the raw and the EMA weights, and by the time
per step.

Usage:
    python benchmarks/diffusion_attention.py [--steps 400] [--seeds 0 1] [--train-events 2000]
"""

from __future__ import annotations

import argparse
import time

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.core.detector import DetectorCard


def synthetic_events(n_events: int, seed: int, mean_gen: float = 25.0) -> ak.Array:
    """GEN events and their PFCs: GEN smeared, 10 % dropped, one to three soft PFCs added."""
    rng = np.random.default_rng(seed)
    gen_counts = rng.poisson(mean_gen, n_events) + 2
    total = int(gen_counts.sum())
    pt = 0.3 + rng.exponential(4.0, total)
    eta = rng.uniform(-2.5, 2.5, total)
    phi = rng.uniform(-np.pi, np.pi, total)
    cls = rng.choice(5, size=total, p=[0.6, 0.03, 0.03, 0.14, 0.2])
    vx, vy, vz = rng.normal(0, 0.01, total), rng.normal(0, 0.01, total), rng.normal(0, 3.0, total)
    gen = ev.make_particles(*(ak.unflatten(c, gen_counts) for c in (pt, eta, phi, vx, vy, vz, cls)))

    keep = rng.uniform(size=total) > 0.1
    kept = ak.to_numpy(ak.sum(ak.unflatten(keep, gen_counts), axis=1))
    extra = rng.integers(1, 4, n_events)
    n_extra = int(extra.sum())
    neutral = cls >= 3
    extra_class = rng.choice([0, 3, 4], size=n_extra)
    pairs = [
        (pt * (1 + 0.1 * rng.standard_normal(total)), 1.0 + rng.exponential(1.0, n_extra)),
        (eta + 0.01 * rng.standard_normal(total), rng.uniform(-2.5, 2.5, n_extra)),
        (ev.wrap_phi(phi + 0.01 * rng.standard_normal(total)), rng.uniform(-np.pi, np.pi, n_extra)),
        (np.where(neutral, 0.0, vx), np.zeros(n_extra)),
        (np.where(neutral, 0.0, vy), np.zeros(n_extra)),
        (np.where(neutral, 0.0, vz), np.where(extra_class == 0, rng.normal(0, 3, n_extra), 0.0)),
        (cls, extra_class),
    ]
    columns = [ak.concatenate([ak.unflatten(a[keep], kept), ak.unflatten(b, extra)], axis=1) for a, b in pairs]
    return ev.make_events(gen, ev.make_particles(*columns))


def run(attention: str, seed: int, steps: int, train, validation, table, batch_size: int) -> dict:
    import keras

    from parnassus.backends.diffusion import data as dt
    from parnassus.backends.diffusion import training as tr
    from parnassus.backends.diffusion.presets import make_config

    config = make_config("small", {"particle.attention": attention, "training.batch_size": batch_size})
    keras.utils.set_random_seed(seed)
    trainer = tr.Trainer(config, table, total_steps=steps)
    train_chunk = dt.make_chunk(train, table)
    validation_chunk = dt.make_chunk(validation, table)

    def validation_loss(use_ema: bool) -> float:
        rng = np.random.default_rng(12345)
        total = count = 0.0
        for index in dt.grouped_batches(validation_chunk.pfc_n, 64, None):
            inputs = tr.diffusion_inputs(dt.batch_from_chunk(validation_chunk, index), table, rng)
            tensors = {key: trainer.tf.constant(value) for key, value in inputs.items()}
            nets = trainer.ema if use_ema else trainer.networks
            _, particle_loss, real = tr.stage_losses(trainer.tf, nets["event"], nets["particle"], tensors, training=False)
            total += float(particle_loss) * float(real)
            count += float(real)
        return total / count

    rng = np.random.default_rng([seed, 1])
    done = 0
    started = None
    while done < steps:
        for index in dt.grouped_batches(train_chunk.pfc_n, batch_size, rng):
            inputs = tr.diffusion_inputs(dt.batch_from_chunk(train_chunk, index), table, rng)
            trainer.run_batch(inputs, train=True)
            done += 1
            if done == 1:
                started = time.perf_counter()  # the first step includes tracing
            if done >= steps:
                break
    seconds_per_step = (time.perf_counter() - started) / max(steps - 1, 1)
    parameters = sum(int(np.prod(w.shape)) for w in trainer.networks["particle"].trainable_weights)
    return {
        "attention": attention,
        "seed": seed,
        "validation_loss": validation_loss(False),
        "validation_loss_ema": validation_loss(True),
        "seconds_per_step": seconds_per_step,
        "parameters": parameters,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="Lion steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    parser.add_argument("--train-events", type=int, default=2000, help="synthetic training events")
    parser.add_argument("--validation-events", type=int, default=400, help="synthetic validation events")
    parser.add_argument("--batch-size", type=int, default=32, help="events per step")
    args = parser.parse_args()

    from parnassus.backends.diffusion import features as ft
    from parnassus.backends.diffusion.runtime import import_tensorflow

    import_tensorflow()
    card = DetectorCard(name="synthetic", description="synthetic")
    train, _ = card.preprocess(synthetic_events(args.train_events, 1))
    validation, _ = card.preprocess(synthetic_events(args.validation_events, 2))
    table = ft.fit_backend_normalisation(train, card.normalisation)

    results = []
    for seed in args.seeds:
        for attention in ("cross", "union"):
            result = run(attention, seed, args.steps, train, validation, table, args.batch_size)
            results.append(result)
            print(
                f"{attention:5s} seed {seed}: validation loss {result['validation_loss']:.4f} "
                f"(EMA {result['validation_loss_ema']:.4f}), {result['seconds_per_step'] * 1000:.0f} ms/step, "
                f"{result['parameters']} parameters",
                flush=True,
            )
    for attention in ("cross", "union"):
        losses = [r["validation_loss"] for r in results if r["attention"] == attention]
        ema = [r["validation_loss_ema"] for r in results if r["attention"] == attention]
        print(f"{attention}: mean validation loss {np.mean(losses):.4f} (EMA {np.mean(ema):.4f}) over {len(losses)} seeds")


if __name__ == "__main__":
    main()
