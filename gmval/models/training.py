"""The one training loop every model shares: seeded batches, atomic checkpoints, exact resume.

A model plugs in as a :class:`TrainTask`: the modules whose weights are saved, their
optimizers, and a ``step`` that updates them on one batch. :func:`train` owns everything
else: which images form each batch, the random numbers each step may use, checkpoints,
snapshots kept for later analysis (VAE-TracIn needs them), and progress bars.

Randomness is a function of ``(seed, step)`` only: the image order of epoch ``e`` is a
permutation drawn from ``(seed, e)`` and step ``t`` receives a ``torch.Generator`` seeded
from ``(seed, t)``. A run resumed from any checkpoint therefore continues exactly as the
uninterrupted run would have, without saving RNG states.

On disk a run is a folder::

    params.json                      what the run was started with (checked on resume)
    checkpoint.safetensors           latest state: weights, optimizer state, step, history
    snapshots/step-00050000.safetensors   weights kept every ``keep_every`` steps

A finished run may instead hold ``final.safetensors``: the weights of the last step only,
without optimizer state, possibly only of the modules that sample (committed pretrained
weights are installed that way, :mod:`gmval.models.pretrained`). :func:`train` then loads it
and trains nothing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn
from tqdm.auto import tqdm

from gmval.images import ImageSet, to_float
from gmval.precision import forward_precision, resolve_precision
from gmval.store import CacheError, atomic_write_bytes, atomic_write_text, canonical

CHECKPOINT = "checkpoint.safetensors"
FINAL = "final.safetensors"
SNAPSHOTS = "snapshots"
PARAMS = "params.json"


def default_device() -> torch.device:
    """The first CUDA GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_precision(settings: Mapping[str, Any]) -> str:
    """The precision of a profile's training settings (key ``precision``), resolved on
    :func:`default_device`, so that a :class:`TrainConfig` and the run's key hold ``"fp32"`` or ``"bf16"``."""
    return resolve_precision(settings["precision"], default_device())


def weights_digest(module: nn.Module) -> str:
    """A short hash of a module's weights and buffers, for cache keys of what it computes."""
    h = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def seeded_init(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """Build a module with its initial weights drawn from ``seed``, leaving the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def ema_decay_at(decay: float, step: int) -> float:
    """The EMA decay used after step ``step`` (0-based): warmed up as min(decay, (1 + t) / (10 + t)).

    The warm-up lets the average forget its random initial weights within the first few
    hundred steps instead of carrying them for 1 / (1 - decay) steps.
    """
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(average: nn.Module, live: nn.Module, decay: float, step: int) -> None:
    """Move ``average``'s parameters and floating buffers (BatchNorm statistics) towards ``live``'s.

    Integer buffers (BatchNorm's batch counter) are copied: they count, they do not average.
    """
    rate = 1.0 - ema_decay_at(decay, step)
    for avg, cur in zip(average.parameters(), live.parameters(), strict=True):
        avg.lerp_(cur, rate)
    for avg, cur in zip(average.buffers(), live.buffers(), strict=True):
        if avg.is_floating_point():
            avg.lerp_(cur, rate)
        else:
            avg.copy_(cur)


def step_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """The generator step ``step`` of a run seeded ``seed`` draws its noise from."""
    # SeedSequence mixes (seed, step) so that neighbouring steps get unrelated streams.
    state = int(np.random.SeedSequence([seed, step]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator(device=device).manual_seed(state)


@dataclass(frozen=True)
class Batch:
    """One training step's input.

    Attributes:
        x: float images in [0, 1], (B, C, H, W), on the training device.
        y: int64 labels (B,) on the device, or None for an unlabelled set.
        index: positions of the images in the training set (B,), on the CPU.
        step: the 0-based index of this step in the run.
    """

    x: torch.Tensor
    y: torch.Tensor | None
    index: torch.Tensor
    step: int


class TrainTask(Protocol):
    """A model being trained: what :func:`train` needs to checkpoint and update it."""

    def modules(self) -> dict[str, nn.Module]:
        """Every module whose state is checkpointed (an EMA copy included), by name."""
        ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimizers, by name."""
        ...

    def step(self, batch: Batch, generator: torch.Generator) -> dict[str, float]:
        """Update the modules on one batch; all noise must come from ``generator``.

        Returns:
            Scalar metrics of the step (losses), averaged into the run's history.
        """
        ...


@dataclass(frozen=True)
class TrainConfig:
    """How long and how a task is trained.

    Attributes:
        epochs: passes over the training set (each ``len // batch_size`` steps).
        batch_size: images per step (the whole set when it is smaller).
        seed: seeds the image order and every step's noise.
        checkpoint_seconds: save the resumable checkpoint at most this often (and at the end);
            0 saves after every step.
        keep_every: also keep the weights every this many steps under ``snapshots/`` (0: never).
        history_every: average the step metrics over windows of this many steps.
        precision: ``"fp32"``, or ``"bf16"``: each step runs under bf16 autocast (weights and
            optimizer state stay float32) with modules and batches channels-last, the layout
            oneDNN's bf16 convolutions want. Resolve ``"auto"`` first
            (:func:`gmval.precision.resolve_precision`): the run's identity must not depend on
            which machine reads the settings.
    """

    epochs: int
    batch_size: int
    seed: int = 0
    checkpoint_seconds: float = 60.0
    keep_every: int = 0
    history_every: int = 50
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"TrainConfig.precision must be a resolved 'fp32' or 'bf16', got {self.precision!r}")

    def steps_per_epoch(self, n: int) -> int:
        """Steps in one epoch over ``n`` images (a last partial batch is dropped)."""
        return max(1, n // self.batch_size)

    def total_steps(self, n: int) -> int:
        """Steps of the whole run over ``n`` images."""
        return self.epochs * self.steps_per_epoch(n)


@dataclass(frozen=True)
class TrainResult:
    """What a finished run leaves behind.

    Attributes:
        folder: the run's folder.
        steps: steps taken in total.
        history: one entry per window: ``{"step": last step of the window, metric: mean}``.
        snapshots: (step, path) of the kept weight snapshots, in step order.
    """

    folder: Path
    steps: int
    history: list[dict[str, float]]
    snapshots: list[tuple[int, Path]]


@functools.lru_cache(maxsize=1)
def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    # Cached because every step of an epoch slices the same permutation.
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(n: int, config: TrainConfig, step: int) -> np.ndarray:
    """Training-set positions used at ``step``: a slice of the epoch's seeded permutation."""
    epoch, pos = divmod(step, config.steps_per_epoch(n))
    size = min(config.batch_size, n)
    return _epoch_order(n, config.seed, epoch)[pos * size:(pos + 1) * size].copy()


def train(task: TrainTask, data: ImageSet, config: TrainConfig, folder: Path, params: dict[str, Any],
          desc: str = "train", progress: bool = True,
          on_step: Callable[[Batch, dict[str, float]], None] | None = None) -> TrainResult:
    """Train ``task`` on ``data``, resuming from ``folder`` when a checkpoint is there.

    Args:
        task: the model, its optimizers and its update.
        data: the training images (labels are passed on when present).
        config: epochs, batch size, seed, checkpoint cadence.
        folder: the run's folder; created if missing.
        params: what defines the model (architecture, optimizer); stored in ``params.json``
            with ``config`` and the data's fingerprint and compared on resume, so a folder is
            never continued with other settings or other images.
        desc: progress-bar label.
        progress: show a tqdm bar.
        on_step: called after every step with its batch and metrics (e.g. to trace a trajectory).

    Returns:
        The finished run. The task's modules hold the final weights.

    Raises:
        CacheError: if ``folder`` holds a run started with other parameters.
    """
    folder.mkdir(parents=True, exist_ok=True)
    # How often the checkpoint is saved does not change the result, so it is not part of the run's identity.
    settings = {k: v for k, v in asdict(config).items() if k != "checkpoint_seconds"}
    _claim_folder(folder, {**params, "train": settings, "data": data.fingerprint()})
    modules = task.modules()
    device = next(next(iter(modules.values())).parameters()).device
    start = 0
    history: list[dict[str, float]] = []
    window: dict[str, list[float]] = {}
    if not (folder / CHECKPOINT).is_file() and (folder / FINAL).is_file():
        return _load_final(folder, task, config.total_steps(len(data)))
    if (folder / CHECKPOINT).is_file():
        start, history, window = load_checkpoint(folder / CHECKPOINT, task)
    layout = torch.contiguous_format
    if config.precision == "bf16":
        layout = torch.channels_last
        _to_channels_last(task)
    n = len(data)
    total = config.total_steps(n)
    if start > total:
        raise CacheError(f"{folder} holds {start} steps, more than the {total} asked for")
    images = data.images.to(device)
    labels = None if data.labels is None else torch.from_numpy(data.labels).to(device)
    for module in modules.values():
        module.train()
    last_save = time.monotonic()
    with tqdm(total=total, initial=start, desc=desc, disable=not progress, unit="step") as bar:
        for step in range(start, total):
            index = torch.from_numpy(batch_indices(n, config, step))
            dev_index = index.to(device)
            batch = Batch(x=to_float(images[dev_index]).contiguous(memory_format=layout),
                          y=None if labels is None else labels[dev_index], index=index, step=step)
            with forward_precision(config.precision, device):
                metrics = task.step(batch, step_generator(config.seed, step, device))
            for key, value in metrics.items():
                window.setdefault(key, []).append(value)
            done = step + 1
            if done % config.history_every == 0 or done == total:
                history.append({"step": float(done), **{k: float(np.mean(v)) for k, v in window.items()}})
                bar.set_postfix({k: f"{v:.4g}" for k, v in history[-1].items() if k != "step"})
                window = {}
            if config.keep_every and done % config.keep_every == 0:
                save_weights(folder / SNAPSHOTS / f"step-{done:08d}.safetensors", task, done)
            if done == total or time.monotonic() - last_save >= config.checkpoint_seconds:
                save_checkpoint(folder / CHECKPOINT, task, done, history, window)
                last_save = time.monotonic()
            bar.update(1)
            if on_step is not None:
                on_step(batch, metrics)
    for module in modules.values():
        module.to(memory_format=torch.contiguous_format).eval()
    return TrainResult(folder=folder, steps=total, history=history, snapshots=list_snapshots(folder))


def _load_final(folder: Path, task: TrainTask, total: int) -> TrainResult:
    """Load a finished run's weights-only ``final.safetensors`` (see the module docstring)."""
    tensors, metadata = _read(folder / FINAL)
    step = int(metadata["step"])
    if step != total:
        raise CacheError(f"{folder / FINAL} holds the weights of step {step}, not of the run's last step {total}; "
                         "delete the folder to retrain")
    held = {name: module for name, module in task.modules().items()
            if any(key.startswith(f"module.{name}.") for key in tensors)}
    if not held:
        raise CacheError(f"{folder / FINAL} holds none of the modules {sorted(task.modules())}; delete it to retrain")
    _load_modules(folder / FINAL, tensors, held)
    for module in task.modules().values():
        module.eval()
    return TrainResult(folder=folder, steps=step, history=json.loads(metadata.get("history", "[]")),
                       snapshots=list_snapshots(folder))


def finished_weights(folder: Path) -> Path:
    """The file holding a finished run's last weights: its checkpoint, or its weights-only final file."""
    for name in (CHECKPOINT, FINAL):
        if (folder / name).is_file():
            return folder / name
    raise CacheError(f"{folder} holds no finished run (neither {CHECKPOINT} nor {FINAL})")


def _to_channels_last(task: TrainTask) -> None:
    """Modules, and the optimizer state that mirrors their 4-D weights, in channels-last layout."""
    for module in task.modules().values():
        module.to(memory_format=torch.channels_last)
    # State restored from a checkpoint is contiguous; fused optimizers want it laid out like its parameter.
    for opt in task.optimizers().values():
        for state in opt.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.dim() == 4:
                    state[key] = value.contiguous(memory_format=torch.channels_last)


def _claim_folder(folder: Path, params: dict[str, Any]) -> None:
    file = folder / PARAMS
    text = canonical(params)
    if file.is_file():
        if canonical(json.loads(file.read_text())) != text:
            raise CacheError(f"{folder} belongs to a run with other parameters; delete it to start over")
    else:
        atomic_write_text(file, json.dumps(json.loads(text), indent=1, sort_keys=True))


def list_snapshots(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every weight snapshot a run kept, in step order."""
    files = sorted((folder / SNAPSHOTS).glob("step-*.safetensors"))
    return [(int(f.stem.split("-")[1]), f) for f in files]


def _module_tensors(task: TrainTask) -> dict[str, torch.Tensor]:
    return {f"module.{name}.{key}": value.detach().cpu().contiguous().clone()
            for name, module in task.modules().items() for key, value in module.state_dict().items()}


def save_weights(path: Path, task: TrainTask, step: int) -> None:
    """Atomically write the modules' weights (no optimizer state) at ``step``."""
    data = safetensors.torch.save(_module_tensors(task), metadata={"step": str(step)})
    atomic_write_bytes(path, data)


def save_checkpoint(path: Path, task: TrainTask, step: int, history: list[dict[str, float]],
                    window: dict[str, list[float]]) -> None:
    """Atomically write everything a resume needs: weights, optimizer state, step and history.

    ``window`` holds the metrics of the steps since the last history entry, so that a
    resumed run's history equals an uninterrupted one's.

    Optimizer tensors go into the safetensors body; the rest of their state dicts (param
    groups, non-tensor entries) into its string metadata as JSON.
    """
    tensors = _module_tensors(task)
    optim_meta: dict[str, Any] = {}
    for name, opt in task.optimizers().items():
        state = opt.state_dict()
        plain: dict[str, dict[str, Any]] = {}
        for pid, entries in state["state"].items():
            for key, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optim.{name}.{pid}.{key}"] = value.detach().cpu().contiguous().clone()
                else:
                    plain.setdefault(str(pid), {})[key] = value
        optim_meta[name] = {"param_groups": state["param_groups"], "plain": plain}
    metadata = {"step": str(step), "optimizers": json.dumps(optim_meta), "history": json.dumps(history),
                "window": json.dumps(window)}
    atomic_write_bytes(path, safetensors.torch.save(tensors, metadata=metadata))


def _read(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safetensors.safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 - safe_open is not iterable
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CacheError(f"checkpoint {path} is unreadable ({exc}); delete it to retrain") from exc
    return tensors, metadata


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    for key, value in tensors.items():
        if key.startswith(prefix):
            yield key[len(prefix):], value


def _load_modules(path: Path, tensors: dict[str, torch.Tensor], modules: dict[str, nn.Module]) -> None:
    for name, module in modules.items():
        state = dict(_prefixed(tensors, f"module.{name}."))
        if not state:
            held = sorted({key.split(".")[1] for key in tensors if key.startswith("module.")})
            raise CacheError(f"{path} holds no module {name!r} (it holds {', '.join(held) or 'none'}); "
                             "pretrained weights keep only the modules that sample: retrain to get the others")
        device = next(module.parameters()).device
        module.load_state_dict({k: v.to(device) for k, v in state.items()})


def load_weights(path: Path, modules: dict[str, nn.Module]) -> int:
    """Load module weights from a checkpoint or snapshot into ``modules``; returns its step.

    Only the named modules are loaded, so a sampler may take just ``{"ema": model}``.
    """
    tensors, metadata = _read(path)
    _load_modules(path, tensors, modules)
    return int(metadata["step"])


def load_checkpoint(path: Path, task: TrainTask) -> tuple[int, list[dict[str, float]], dict[str, list[float]]]:
    """Restore weights and optimizer state from ``path``; returns (step, history, open window)."""
    tensors, metadata = _read(path)
    _load_modules(path, tensors, task.modules())
    optim_meta = json.loads(metadata["optimizers"])
    for name, opt in task.optimizers().items():
        meta = optim_meta[name]
        state: dict[int, dict[str, Any]] = {}
        for key, value in _prefixed(tensors, f"optim.{name}."):
            pid, entry = key.split(".", 1)
            state.setdefault(int(pid), {})[entry] = value
        for pid, entries in meta["plain"].items():
            state.setdefault(int(pid), {}).update(entries)
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return int(metadata["step"]), json.loads(metadata["history"]), json.loads(metadata["window"])
