"""The Lion optimiser (Chen et al., "Symbolic Discovery of Optimization Algorithms", arXiv:2302.06675).

Per parameter, with momentum m, gradient g, learning rate lr and decoupled weight decay wd:

    p <- p (1 - lr wd)
    p <- p - lr sign(beta1 m + (1 - beta1) g)
    m <- beta2 m + (1 - beta2) g

PyTorch (2.13) ships no Lion, hence this implementation.
"""

from __future__ import annotations

import torch


class Lion(torch.optim.Optimizer):
    """Lion: sign of an interpolated momentum as the update; state ``exp_avg`` per parameter."""

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0):
        if lr <= 0:
            raise ValueError(f"invalid learning rate {lr}")
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"invalid betas {betas}")
        super().__init__(params, {"lr": lr, "betas": betas, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["exp_avg"] = torch.zeros_like(param)
                momentum = state["exp_avg"]

                param.mul_(1 - group["lr"] * group["weight_decay"])
                update = momentum.mul(beta1).add_(param.grad, alpha=1 - beta1).sign_()
                param.add_(update, alpha=-group["lr"])
                momentum.mul_(beta2).add_(param.grad, alpha=1 - beta2)
        return loss
