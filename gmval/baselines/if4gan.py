"""IF4GAN (Terashita et al., ICLR 2021): influence of each training image on a GAN's metric.

For training image j, IF4GAN estimates Δ_j = V(θ_T^{−j}) − V(θ_T): how an evaluation
metric V of the generator would change had x_j been dropped from its minibatches during
the *traced* SGD steps t₀ … T−1 (same minibatches, latents and learning rates; the
minibatch loss is still divided by B). θ = (φ, ψ) = (discriminator, generator).

The traced steps are simultaneous plain SGD on the non-saturating losses, both gradients
taken at θ_t (the reference's ``GANBase.build``)::

    L_D = (1/B) [Σ_{i∈S_t} w_i softplus(−D(x_i)) + Σ_{z∈Z_t} softplus(D(G(z)))]
    L_G = (1/B) Σ_{z∈Z_t} softplus(−D(G(z)))
    φ_{t+1} = φ_t − η ∇_φ L_D(θ_t),   ψ_{t+1} = ψ_t − η ∇_ψ L_G(θ_t)

(w_i = 1; dropping x_j sets w_j = 0.) Linearised, dropping x_j at step t moves φ_{t+1} by
+(η/B)∇_φ ℓ_j(φ_t), ℓ_j = softplus(−D(x_j)), and a perturbation then evolves as
δ_{t+1} = (I − ηJ_t)δ_t with J_t the Jacobian of (∇_φ L_D, ∇_ψ L_G) in (φ, ψ). All instances
are scored by one adjoint recursion (the reference's ``cal_asgd_influence``)::

    u_D, u_G ← ∇_φ V(θ_T), ∇_ψ V(θ_T)          (u_D = 0: V depends on G only)
    for t = T−1 … t₀:
        s ← ⟨∇_φ L_D(θ_t), u_D⟩ + ⟨∇_ψ L_G(θ_t), u_G⟩
        (h_D, h_G, ∂s/∂w) ← ∇_(φ, ψ, w) s       one double-backward
        Δ_j += η ∂s/∂w_j = (η/B)⟨u_D, ∇_φ ℓ_j(φ_t)⟩   for j ∈ S_t
        u_D ← u_D − η h_D;  u_G ← u_G − η h_G

h_D = H_φφ(L_D)u_D + ∇_φ⟨∇_ψ L_G, u_G⟩ and h_G = ∇_ψ⟨∇_φ L_D, u_D⟩ + H_ψψ(L_G)u_G keep
the cross (D↔G) terms; without them u_D stays 0 and every score is 0. Differentiating s
with respect to the per-image weights w yields every per-sample dot product of the step
in the same double-backward, so no per-sample gradients are formed. Harmfulness is
h_j = Δ_j for a larger-is-better metric (log-IS) and −Δ_j otherwise; the value is −h_j.

The θ_t are not all stored (the MNIST DCGAN has 9.5M parameters, 38 MB per state): the
forward pass keeps every ⌈√steps⌉-th state, and the backward pass recomputes one segment
at a time, so at most about 2√steps states are held (≈ 2.3 GB for a full MNIST epoch,
≈ 0.7 GB for the default window). :func:`replay_metric` replays the window without
chosen images, the counterfactual retraining the estimate approximates.

Deviations from the reference, and why:

* **Traced window after Adam training.** The zoo GAN (:mod:`gmval.models.gan`) is trained
  with Adam, whose update the linearisation above does not describe. IF4GAN's SGD phase
  is therefore run *after* the trained checkpoint: the traced steps continue the run's
  own seeded schedule (minibatches from :func:`~gmval.models.training.batch_indices`,
  latents from :func:`~gmval.models.training.step_generator`, at the steps following
  the checkpoint's), with η_D = η_G = ``lr``; V is measured after the window.
* **BatchNorm on running statistics.** Our DCGAN has BatchNorm where the reference has
  LayerNorm. With batch statistics a real image's loss would depend on the rest of its
  minibatch and "drop x_j" would not be a per-sample term, so the traced steps evaluate
  both networks with their running statistics (frozen, as in sampling). Real and fake
  images then share one discriminator pass.
* **No L2 term.** The reference adds (λ/2)‖W‖² with λ = 1e-3; our GAN is trained without
  one, so the traced losses have none.
* **Metric.** V = log-IS (mean KL(p(y|G(z_k)) ‖ p̄), the exponent of IS) of the zoo's MNIST
  classifier (:func:`gmval.models.zoo.get_classifier`, the CNN standing in for the
  reference's small MNIST CNN) on fixed evaluation latents, G on running statistics.
* **Window.** ``paper`` traces one full epoch, as the reference's cleansing experiment
  does; ``default`` traces the first ``steps`` minibatches of that epoch to stay within
  CPU minutes, so only the images those minibatches hold are scored (``n_traced`` > 0 in
  :attr:`IF4GANResult.values`); the rest get Δ = 0 exactly, which is their true effect.

:class:`IF4GAN` is the method behind :mod:`gmval.attribution`'s interface. Its Δ_j is the
influence on the generator's metric over fixed evaluation latents, not on one generated
sample, so every generated image gets the same scores: the training images' values.

Profile keys (``profile["baselines"]["if4gan"]``):

* ``steps``: traced SGD steps; ``None`` for one epoch over the training set.
* ``lr``: η_D = η_G of the traced steps (the reference uses 1e-3; the profile says why ours differs).
* ``eval_latents`` / ``eval_seed``: number and seed of the fixed latents V is measured on.
* ``metric``: ``"log-is"`` (the only one implemented).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from gmval import paths
from gmval.attribution import Attribution
from gmval.images import ImageSet, as_imageset, to_float
from gmval.models import zoo
from gmval.models.classifier import Classifier
from gmval.models.gan import DCGANDiscriminator, DCGANGenerator, GANConfig
from gmval.models.training import (
    PARAMS,
    TrainConfig,
    batch_indices,
    finished_weights,
    load_weights,
    step_generator,
    weights_digest,
)
from gmval.profiles import Profile, profile_settings
from gmval.store import ArtifactStore

METRICS = ("log-is",)
STAGE = "if4gan"

Params = list[torch.Tensor]


@dataclass(frozen=True)
class TraceWindow:
    """The traced SGD steps: which training images and latents each one uses.

    Step k of the window is step ``start_step + k`` of a run seeded ``seed`` with batches
    of ``batch_size``: its images are :func:`~gmval.models.training.batch_indices` of that
    step and its latents are drawn from :func:`~gmval.models.training.step_generator`, as
    :class:`~gmval.models.gan.GANTask` draws them, so the window replays exactly.

    Attributes:
        batch_size: B, images (and latents) per step.
        seed: the run's seed.
        start_step: the run's step the window starts at (the checkpoint's step count).
        steps: traced steps.
    """

    batch_size: int
    seed: int
    start_step: int
    steps: int

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.steps < 1 or self.start_step < 0:
            raise ValueError(f"a trace window needs batch_size >= 1, steps >= 1 and start_step >= 0, got {self}")

    def indices(self, n: int, k: int) -> np.ndarray:
        """Training-set positions of the minibatch of traced step ``k`` over ``n`` images."""
        return batch_indices(n, TrainConfig(epochs=1, batch_size=self.batch_size, seed=self.seed), self.start_step + k)

    def latents(self, k: int, count: int, z_dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The ``count`` latents of traced step ``k``."""
        gen = step_generator(self.seed, self.start_step + k, device)
        return torch.randn(count, z_dim, generator=gen, device=device).to(dtype)


@dataclass(frozen=True)
class EvalMetric:
    """V(ψ) = ``fn(G_ψ(latents))``, the generator metric whose change is estimated.

    Attributes:
        name: recorded in results and cache keys.
        fn: differentiable scalar of generated images in [-1, 1], (N, C, H, W).
        latents: the fixed evaluation latents (N, z_dim).
        larger_is_better: True for IS-like metrics (harmfulness = Δ), False for FID-like
            ones (harmfulness = −Δ).
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    latents: torch.Tensor
    larger_is_better: bool = True


def log_inception_score(classifier: Classifier | Callable[[torch.Tensor], torch.Tensor]
                        ) -> Callable[[torch.Tensor], torch.Tensor]:
    """log-IS = mean_k KL(p(y|x_k) ‖ p̄) of images in [-1, 1].

    Args:
        classifier: class logits (N, classes) of images in [0, 1], e.g. a zoo :class:`Classifier`.
    """

    def fn(fake: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(classifier(fake * 0.5 + 0.5), dim=1)
        # log p̄ via logsumexp keeps rare classes finite where log(mean(p)) would underflow.
        log_mean = torch.logsumexp(log_p, dim=0) - math.log(len(log_p))
        return (log_p.exp() * (log_p - log_mean)).sum(1).mean()

    return fn


@dataclass(frozen=True)
class Influence:
    """What :func:`if4gan_influence` computes.

    Attributes:
        delta: Δ_j per training image (n,), float64; 0 for images outside the window.
        n_traced: how many traced minibatches held each image (n,).
        metric_start: V at the window's start (the trained checkpoint).
        metric_end: V(θ_T) after the traced steps.
        timings: seconds per stage: ``trace`` (forward pass), ``metric_gradient``,
            ``adjoint`` (backward pass with segment recomputation) and ``total``.
    """

    delta: np.ndarray
    n_traced: np.ndarray
    metric_start: float
    metric_end: float
    timings: dict[str, float]


class _Pair:
    """G and D evaluated functionally at given parameter lists."""

    def __init__(self, generator: DCGANGenerator, discriminator: DCGANDiscriminator) -> None:
        self.g, self.d = generator, discriminator
        self.g_names = [name for name, _ in generator.named_parameters()]
        self.d_names = [name for name, _ in discriminator.named_parameters()]
        self.z_dim = generator.config.z_dim
        first = next(generator.parameters())
        self.device, self.dtype = first.device, first.dtype

    def params(self) -> tuple[Params, Params]:
        return ([p.detach().clone() for p in self.d.parameters()], [p.detach().clone() for p in self.g.parameters()])

    def fake(self, psi: Params, z: torch.Tensor) -> torch.Tensor:
        return functional_call(self.g, dict(zip(self.g_names, psi, strict=True)), (z,))

    def losses(self, phi: Params, psi: Params, real: torch.Tensor, z: torch.Tensor,
               weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_D, L_G) of one step; ``weights`` scale the real images' terms (denominator stays B)."""
        fake = self.fake(psi, z)
        logits = functional_call(self.d, dict(zip(self.d_names, phi, strict=True)), (torch.cat([real, fake]),))
        real_logits, fake_logits = logits[:len(real)], logits[len(real):]
        b = len(real)
        loss_d = ((weights * F.softplus(-real_logits)).sum() + F.softplus(fake_logits).sum()) / b
        loss_g = F.softplus(-fake_logits).sum() / b
        return loss_d, loss_g


@contextlib.contextmanager
def _running_statistics(*modules: nn.Module) -> Iterator[None]:
    # Eval mode makes each image's loss its own (see the module docstring); the callers' modes are restored.
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def _leaves(params: Params) -> Params:
    return [p.detach().requires_grad_() for p in params]


def _dot(a: Iterable[torch.Tensor], b: Iterable[torch.Tensor]) -> torch.Tensor:
    return torch.stack([(x * y).sum() for x, y in zip(a, b, strict=True)]).sum()


class _Replay:
    """One window's steps over one training set: the shared machinery of tracing and replaying."""

    def __init__(self, pair: _Pair, data: ImageSet, window: TraceWindow, lr: float) -> None:
        self.pair, self.window, self.lr = pair, window, lr
        self.n = len(data)
        self.images = data.images.to(pair.device)

    def batch(self, k: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
        """(positions, real images in [-1, 1], latents) of traced step ``k``."""
        index = self.window.indices(self.n, k)
        real = (to_float(self.images[torch.from_numpy(index).to(self.pair.device)]) * 2.0 - 1.0).to(self.pair.dtype)
        z = self.window.latents(k, len(index), self.pair.z_dim, self.pair.device, self.pair.dtype)
        return index, real, z

    def step(self, k: int, phi: Params, psi: Params, keep: np.ndarray | None = None) -> tuple[Params, Params]:
        """θ_{k+1} from θ_k; ``keep`` (bool per training image) drops the others from the minibatch."""
        index, real, z = self.batch(k)
        weights = torch.ones(len(index), dtype=self.pair.dtype, device=self.pair.device)
        if keep is not None:
            weights = torch.from_numpy(keep[index]).to(weights)
        phi_l, psi_l = _leaves(phi), _leaves(psi)
        loss_d, loss_g = self.pair.losses(phi_l, psi_l, real, z, weights)
        grad_d = torch.autograd.grad(loss_d, phi_l, retain_graph=True)
        grad_g = torch.autograd.grad(loss_g, psi_l)
        return ([p - self.lr * g for p, g in zip(phi, grad_d, strict=True)],
                [p - self.lr * g for p, g in zip(psi, grad_g, strict=True)])

    def adjoint(self, k: int, phi: Params, psi: Params, u_d: Params, u_g: Params
                ) -> tuple[np.ndarray, np.ndarray, Params, Params]:
        """One backward step at θ_k: (positions, their Δ increments, u_D and u_G before step k)."""
        index, real, z = self.batch(k)
        weights = torch.ones(len(index), dtype=self.pair.dtype, device=self.pair.device, requires_grad=True)
        phi_l, psi_l = _leaves(phi), _leaves(psi)
        loss_d, loss_g = self.pair.losses(phi_l, psi_l, real, z, weights)
        grad_d = torch.autograd.grad(loss_d, phi_l, create_graph=True)
        grad_g = torch.autograd.grad(loss_g, psi_l, create_graph=True)
        s = _dot(grad_d, u_d) + _dot(grad_g, u_g)
        grads = torch.autograd.grad(s, [*phi_l, *psi_l, weights])
        h_d, h_g, ds_dw = grads[:len(phi)], grads[len(phi):-1], grads[-1]
        increments = self.lr * ds_dw.detach().double().cpu().numpy()
        return (index, increments, [u - self.lr * h for u, h in zip(u_d, h_d, strict=True)],
                [u - self.lr * h for u, h in zip(u_g, h_g, strict=True)])


def _check_inputs(generator: DCGANGenerator, discriminator: DCGANDiscriminator, data: ImageSet,
                  metric: EvalMetric, lr: float) -> None:
    if not isinstance(generator, DCGANGenerator) or not isinstance(discriminator, DCGANDiscriminator):
        raise TypeError("IF4GAN needs a DCGANGenerator and a DCGANDiscriminator")
    config = generator.config
    if discriminator.canvas != config.canvas:
        raise ValueError(f"discriminator works on a {discriminator.canvas}px canvas, generator on {config.canvas}px")
    if data.shape != (config.channels, config.image_size, config.image_size):
        raise ValueError(f"{data.name}: images of shape {data.shape} do not fit a GAN for "
                         f"{(config.channels, config.image_size, config.image_size)}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if metric.latents.ndim != 2 or metric.latents.shape[1] != config.z_dim or len(metric.latents) < 2:
        raise ValueError(f"evaluation latents must be (N >= 2, {config.z_dim}), got {tuple(metric.latents.shape)}")


def _metric_value(pair: _Pair, metric: EvalMetric, psi: Params) -> torch.Tensor:
    return metric.fn(pair.fake(psi, metric.latents.to(pair.device, pair.dtype)))


def if4gan_influence(generator: DCGANGenerator, discriminator: DCGANDiscriminator, data: ImageSet,
                     window: TraceWindow, metric: EvalMetric, lr: float, progress: bool = False) -> Influence:
    """Δ_j of every training image over the traced window (see the module docstring).

    Runs ``window.steps`` simultaneous SGD steps from the modules' current weights, then
    the adjoint recursion back over them. The modules are not changed. Computations run
    on the modules' device in their dtype (float64 modules give exact-arithmetic checks).

    Args:
        generator: G at the window's start.
        discriminator: D at the window's start.
        data: the training set the window's minibatches index.
        window: the traced steps.
        metric: V and its evaluation latents.
        lr: η_D = η_G.
        progress: show tqdm bars.

    Returns:
        Δ, how often each image was traced, V before and after the window, and timings.

    Raises:
        TypeError / ValueError: for networks that are not the DCGAN pair, mismatched shapes,
            a non-positive ``lr`` or malformed evaluation latents.
    """
    _check_inputs(generator, discriminator, data, metric, lr)
    start = time.perf_counter()
    pair = _Pair(generator, discriminator)
    replay = _Replay(pair, data, window, lr)
    steps = window.steps
    segment = math.ceil(math.sqrt(steps))
    timings: dict[str, float] = {}
    with _running_statistics(generator, discriminator):
        phi, psi = pair.params()
        with torch.no_grad():
            metric_start = float(_metric_value(pair, metric, psi))
        # Forward: keep the state at the start of every segment.
        starts: list[tuple[Params, Params] | None] = []
        for k in tqdm(range(steps), desc="if4gan trace", disable=not progress):
            if k % segment == 0:
                starts.append((phi, psi))
            phi, psi = replay.step(k, phi, psi)
        timings["trace"] = time.perf_counter() - start

        mark = time.perf_counter()
        psi_l = _leaves(psi)
        value = _metric_value(pair, metric, psi_l)
        u_g = [g.detach() for g in torch.autograd.grad(value, psi_l)]
        u_d = [torch.zeros_like(p) for p in phi]
        metric_end = float(value.detach())
        if not math.isfinite(metric_end):
            raise FloatingPointError(f"IF4GAN: the {steps} traced SGD steps at lr={lr:g} diverged (V after them is "
                                     f"{metric_end}, {metric_start:.4g} before); lower baselines.if4gan.lr")
        timings["metric_gradient"] = time.perf_counter() - mark

        mark = time.perf_counter()
        delta = np.zeros(replay.n, dtype=np.float64)
        n_traced = np.zeros(replay.n, dtype=np.int64)
        with tqdm(total=steps, desc="if4gan adjoint", disable=not progress) as bar:
            for s in reversed(range(len(starts))):
                first = s * segment
                state = starts[s]
                assert state is not None
                starts[s] = None  # the segment's states are rebuilt below; free its start
                states = [state]
                for k in range(first, min(first + segment, steps) - 1):
                    states.append(replay.step(k, *states[-1]))
                for k in reversed(range(first, first + len(states))):
                    phi, psi = states.pop()
                    index, increments, u_d, u_g = replay.adjoint(k, phi, psi, u_d, u_g)
                    np.add.at(delta, index, increments)
                    np.add.at(n_traced, index, 1)
                    bar.update(1)
        timings["adjoint"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - start
    return Influence(delta=delta, n_traced=n_traced, metric_start=metric_start, metric_end=metric_end,
                     timings=timings)


def replay_metric(generator: DCGANGenerator, discriminator: DCGANDiscriminator, data: ImageSet,
                  window: TraceWindow, metric: EvalMetric, lr: float, exclude: Iterable[int] = ()) -> float:
    """V after replaying the window without the images at positions ``exclude``: the actual counterfactual.

    The same minibatches (minus the excluded images, the denominator staying B), latents
    and learning rate as :func:`if4gan_influence`, so ``replay_metric(..., [j]) −
    replay_metric(...)`` is the Δ_j it estimates. The modules are not changed.

    Raises:
        ValueError: for bad inputs as in :func:`if4gan_influence`, or an ``exclude`` position
            outside the training set.
    """
    _check_inputs(generator, discriminator, data, metric, lr)
    drop = np.asarray(list(exclude), dtype=np.int64)
    if drop.size and (drop.min() < 0 or drop.max() >= len(data)):
        raise ValueError(f"exclude positions must lie in 0..{len(data) - 1}")
    keep = np.ones(len(data), dtype=bool)
    keep[drop] = False
    pair = _Pair(generator, discriminator)
    replay = _Replay(pair, data, window, lr)
    with _running_statistics(generator, discriminator):
        phi, psi = pair.params()
        for k in range(window.steps):
            phi, psi = replay.step(k, phi, psi, keep)
        with torch.no_grad():
            return float(_metric_value(pair, metric, psi))


# ---------------------------------------------------------------- the zoo's noisy-MNIST GAN


@dataclass(frozen=True)
class IF4GANResult:
    """IF4GAN's valuation of a zoo GAN's training set.

    Attributes:
        values: one row per training image: ``train_index``, ``train_id``, [``train_label``],
            ``delta`` (Δ_j), ``n_traced`` (traced minibatches holding it; 0: not scored),
            ``value`` (−harmfulness) and ``rank`` (1 = most valuable).
        delta: Δ_j (n,), the raw estimate.
        timings: seconds per stage of the computation (as recorded when it ran, so a cached
            result still reports its cost): ``load``, ``trace``, ``metric_gradient``,
            ``adjoint``, ``total``.
        config: the settings and identities that produced the result.
    """

    values: pd.DataFrame
    delta: np.ndarray
    timings: dict[str, float]
    config: dict[str, Any] = field(default_factory=dict)


def _settings(profile: Profile) -> dict[str, Any]:
    return _checked(profile_settings(profile)["baselines"]["if4gan"])


def _checked(settings: Mapping[str, Any]) -> dict[str, Any]:
    settings = {key: settings[key] for key in ("steps", "lr", "eval_latents", "eval_seed", "metric")}
    if settings["metric"] not in METRICS:
        raise ValueError(f"unknown IF4GAN metric {settings['metric']!r}; available: {', '.join(METRICS)}")
    if settings["steps"] is not None and settings["steps"] < 1:
        raise ValueError(f"steps must be >= 1 or None (one epoch), got {settings['steps']}")
    if settings["eval_latents"] < 2:
        raise ValueError(f"eval_latents must be >= 2, got {settings['eval_latents']}")
    return settings


def _values_table(data: ImageSet, delta: np.ndarray, n_traced: np.ndarray, larger_is_better: bool = True
                 ) -> pd.DataFrame:
    """The per-image table of :attr:`IF4GANResult.values` from Δ (value = −harmfulness)."""
    value = -delta if larger_is_better else delta
    table: dict[str, Any] = {"train_index": np.arange(len(data)), "train_id": data.ids}
    if data.labels is not None:
        table["train_label"] = data.labels
    ranks = np.empty(len(data), dtype=np.int64)
    ranks[np.argsort(-value, kind="stable")] = np.arange(1, len(data) + 1)
    return pd.DataFrame(table | {"delta": delta, "n_traced": n_traced, "value": value, "rank": ranks})


def _check_gan(name: str) -> None:
    if name not in zoo.GENERATORS:
        raise KeyError(f"unknown generator {name!r}; available: {', '.join(sorted(zoo.GENERATORS))}")
    if zoo.GENERATORS[name].kind != "gan":
        raise ValueError(f"IF4GAN values GAN training sets; {name!r} is a {zoo.GENERATORS[name].kind}")


def _values(name: str, settings: Mapping[str, Any], profile: Profile, root: Path | None,
            progress: bool) -> IF4GANResult:
    """IF4GAN values of zoo GAN ``name``'s training images with checked ``settings``, cached by every parameter.

    Loads (training first if needed) the GAN's final checkpoint, traces ``settings["steps"]``
    SGD steps continuing its seeded schedule, and measures V as log-IS of the dataset's zoo
    classifier on ``eval_latents`` latents drawn from ``eval_seed``. The result is stored
    under ``<cache>/baselines`` keyed by the checkpoint (folder and step), the classifier's
    weights, the training set's fingerprint and the settings.
    """
    start = time.perf_counter()
    sampler = zoo.get_generator(name, profile, root, progress)
    folder = zoo.generator_folder(name, profile, root)
    run = json.loads((folder / PARAMS).read_text())
    # The training dynamics are those of the live pair, not of the weight average that samples.
    config = GANConfig(**run["config"])
    device = next(sampler.parameters()).device
    generator, discriminator = DCGANGenerator(config).to(device), DCGANDiscriminator(config).to(device)
    step = load_weights(finished_weights(folder), {"generator": generator, "discriminator": discriminator})
    generator.eval()
    classifier, _ = zoo.get_classifier(zoo.dataset_of(name, profile), profile, root, progress)
    classifier.requires_grad_(False)
    data = zoo.training_data(name, profile).train
    train = TrainConfig(epochs=1, batch_size=run["train"]["batch_size"], seed=run["train"]["seed"])
    steps = settings["steps"] or train.steps_per_epoch(len(data))
    window = TraceWindow(train.batch_size, train.seed, start_step=step, steps=steps)
    params = {"generator": folder.name, "checkpoint_step": step, "data": data.fingerprint(),
              "classifier": weights_digest(classifier), "window": {"batch_size": window.batch_size,
              "seed": window.seed, "start_step": window.start_step, "steps": steps},
              "lr": settings["lr"], "metric": settings["metric"], "eval_latents": settings["eval_latents"],
              "eval_seed": settings["eval_seed"]}
    store = ArtifactStore((paths.CACHE if root is None else Path(root) / "cache") / "baselines")
    load_seconds = time.perf_counter() - start
    art = store.load(STAGE, params)
    if art is None:
        gen = torch.Generator().manual_seed(settings["eval_seed"])
        latents = torch.randn(settings["eval_latents"], generator.config.z_dim, generator=gen)
        metric = EvalMetric(settings["metric"], log_inception_score(classifier), latents)
        influence = if4gan_influence(generator, discriminator, data, window, metric, settings["lr"], progress)
        timings = {"load": load_seconds, **influence.timings}
        timings["total"] += load_seconds
        summary = {"timings": timings, "metric_start": influence.metric_start, "metric_end": influence.metric_end}
        art = store.save(STAGE, params, arrays={"delta": influence.delta, "n_traced": influence.n_traced},
                         extra=lambda d: (d / "summary.json").write_text(json.dumps(summary, indent=1)))
    summary = json.loads(art.file("summary.json").read_text())
    delta = art.array("delta", mmap=False)
    n_traced = art.array("n_traced", mmap=False)
    config = {"method": "IF4GAN (S1: traced SGD window, adjoint recursion)", "name": name, **params,
              "traced_images": int((n_traced > 0).sum()), "train_images": len(data),
              "metric_start": summary["metric_start"], "metric_end": summary["metric_end"],
              "batchnorm": "running statistics", "harmfulness": "delta (log-IS: larger is better)"}
    return IF4GANResult(values=_values_table(data, delta, n_traced), delta=delta, timings=summary["timings"],
                        config=config)


class IF4GAN:
    """IF4GAN as an :class:`~gmval.attribution.Attributor`: the values of a zoo GAN's training images.

    Args:
        steps / lr / eval_latents / eval_seed / metric: the profile keys (module docstring).
        profile: the zoo profile of the GAN given to :meth:`fit`.
        root: data folder holding ``models/`` and ``cache/`` (default :data:`gmval.paths.DATA`).
        progress: show tqdm bars.

    Raises:
        ValueError: for bad settings.
    """

    method = "if4gan"

    def __init__(self, *, steps: int | None, lr: float, eval_latents: int, eval_seed: int, metric: str = "log-is",
                 profile: Profile = "default", root: Path | None = None, progress: bool = True) -> None:
        self.settings = _checked({"steps": steps, "lr": lr, "eval_latents": eval_latents, "eval_seed": eval_seed,
                                  "metric": metric})
        self.profile, self.root, self.progress = profile, root, progress
        self.name: str | None = None

    @classmethod
    def from_profile(cls, profile: Profile = "default", **overrides: Any) -> IF4GAN:
        """The settings of ``profile["baselines"]["if4gan"]`` with ``overrides`` on top.

        ``profile`` is also the zoo profile of the GAN given to :meth:`fit`.
        """
        return cls(profile=profile, **{**_settings(profile), **overrides})

    def fit(self, train: ImageSet | torch.Tensor | np.ndarray, model: str | None = None) -> IF4GAN:
        """Take the GAN's training set and the zoo GAN whose SGD steps are traced.

        Raises:
            KeyError: for an unknown generator name.
            ValueError: for no name, a generator that is not a GAN, or a training set other than
                the one the GAN was trained on (the traced minibatches index it).
        """
        if model is None:
            raise ValueError("IF4GAN needs the zoo GAN it values, e.g. 'noisy-mnist-gan'")
        _check_gan(model)
        if as_imageset(train, "train").fingerprint() != zoo.training_data(model, self.profile).train.fingerprint():
            raise ValueError(f"IF4GAN replays {model}'s own training steps: "
                             f"fit it on zoo.training_data({model!r}).train")
        self.name = model
        return self

    def score(self, generated: ImageSet | torch.Tensor | np.ndarray) -> Attribution:
        """Every generated image's scores: the traced training images' values (−harmfulness), cached by every parameter.

        IF4GAN's value is one per training image, the same for every generated image; the
        result is sparse over the images its window traced (the others count 0).

        Raises:
            RuntimeError: before :meth:`fit`.
        """
        if self.name is None:
            raise RuntimeError("call fit(train, model) before scoring generated images")
        result = _values(self.name, self.settings, self.profile, self.root, self.progress)
        value = result.values["value"].to_numpy(dtype=np.float64)
        traced = np.flatnonzero(result.values["n_traced"].to_numpy() > 0)
        m = len(as_imageset(generated, "generated"))
        return Attribution(self.method, len(value), np.broadcast_to(value[traced], (m, len(traced))),
                           index=np.broadcast_to(traced, (m, len(traced))), values=value, timings=result.timings,
                           config=result.config, detail=result)
