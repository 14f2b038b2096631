"""What the gradient baselines (VAE-TracIn, TRAK) share: per-sample gradients, fixed noise, random projection.

* :func:`per_sample_gradients`: one flattened loss gradient per example, through ``torch.func``
  (``functional_call`` + ``vmap`` + ``grad``) instead of one backward pass per image.
* :func:`image_noise`: the fixed ε of each image of a β-VAE loss, one seeded stream per
  (stream, position), so training and query images have independent noise and a rerun, a
  chunk size or a device gives the same gradients.
* :class:`RademacherProjection`: TRAK's random projection, generated block by block from
  seeds and never held as one dense float matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

#: Rows of the (#params × projection_dim) projection matrix generated at once.
PROJECTION_BLOCK = 2**15
#: Largest projection matrix (in int8 entries) kept in memory between chunks.
PROJECTION_CACHE_BYTES = 2**30
#: Noise streams of training and query images.
TRAIN, QUERY = 0, 1


def image_noise(seed: int, stream: int, positions: np.ndarray, draws: int, latent_dim: int) -> torch.Tensor:
    """The fixed ε of each image: (len(positions), draws, latent_dim) float32, one seeded stream per image."""
    return torch.from_numpy(np.stack([
        np.random.default_rng([seed, stream, int(p)]).standard_normal((draws, latent_dim), dtype=np.float32)
        for p in positions]))


class RademacherProjection:
    """x ↦ x·R/√dim with R ∈ {±1}^{#params × dim} drawn from ``seed`` block by block.

    Row block b of R comes from its own generator seeded ``[seed, b]``, so R is the same
    whatever the device or the chunking and is never materialised as one dense float
    matrix. The blocks are kept as int8 between calls when R has at most
    :data:`PROJECTION_CACHE_BYTES` entries (drawing them dominates the cost on a CPU), and
    drawn again for every call otherwise.

    Args:
        dim: output dimension.
        num_params: input dimension (the model's parameter count).
        seed: seeds R.
    """

    def __init__(self, dim: int, num_params: int, seed: int) -> None:
        self.dim, self.num_params, self.seed = dim, num_params, seed
        self._blocks: dict[tuple[int, str], torch.Tensor] = {}

    def params(self) -> dict[str, Any]:
        """What the projection depends on, for cache keys and the result's config."""
        return {"kind": "rademacher", "dim": self.dim, "block": PROJECTION_BLOCK, "seed": self.seed}

    def _block(self, block: int, rows: int, device: torch.device) -> torch.Tensor:
        key = (block, str(device))
        if key in self._blocks:
            return self._blocks[key]
        state = int(np.random.SeedSequence([self.seed, block]).generate_state(1, dtype=np.uint64)[0] >> 1)
        gen = torch.Generator(device=device).manual_seed(state)
        r = torch.randint(0, 2, (rows, self.dim), generator=gen, device=device, dtype=torch.int8).mul_(2).sub_(1)
        if self.num_params * self.dim <= PROJECTION_CACHE_BYTES:
            self._blocks[key] = r
        return r

    def __call__(self, grads: torch.Tensor) -> torch.Tensor:
        """Project (B, num_params) float32 gradients to (B, dim)."""
        out = torch.zeros(grads.shape[0], self.dim, dtype=grads.dtype, device=grads.device)
        for block, start in enumerate(range(0, self.num_params, PROJECTION_BLOCK)):
            stop = min(start + PROJECTION_BLOCK, self.num_params)
            out.addmm_(grads[:, start:stop], self._block(block, stop - start, grads.device).to(grads.dtype))
        return out.div_(self.dim ** 0.5)


def per_sample_gradients(objective: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """Flattened gradient of ``objective`` w.r.t. all its parameters, one per example: (B, #params) float32.

    ``objective(*batch)`` must return one loss per example; it is called on one example at a
    time (a batch of one) inside ``torch.func``'s ``vmap(grad(...))``, with the weights
    swapped in by ``functional_call``, so it must be a pure function of weights and inputs.

    Args:
        objective: the per-example loss as a module (its parameters are differentiated).
        inputs: tensors batched along their first dimension, all of the same length B.

    Raises:
        FloatingPointError: for non-finite gradients.
    """
    weights = {name: p.detach() for name, p in objective.named_parameters()}

    def one(w: dict[str, torch.Tensor], *example: torch.Tensor) -> torch.Tensor:
        return functional_call(objective, w, tuple(a[None] for a in example))[0]

    g = vmap(grad(one), in_dims=(None, *[0] * len(inputs)))(weights, *inputs)
    flat = torch.cat([g[name].reshape(len(inputs[0]), -1) for name in weights], dim=1)
    if not torch.isfinite(flat).all():
        raise FloatingPointError("non-finite per-sample gradients; the weights may have diverged")
    return flat
