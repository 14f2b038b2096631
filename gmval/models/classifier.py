"""A small CNN per labelled dataset: labels unconditional samples and embeds images for FD.

The identical-class test needs a class for every generated image; an unconditional
generator has none, so this classifier (trained on the training split) supplies it, and
its test accuracy bounds how far those labels can be trusted. Its penultimate layer is the
feature space of the Fréchet distance, in the manner of IF4GAN's small MNIST CNN (128-d
features) rather than Inception, which knows nothing about 28x28 grey digits.

Architecture: conv 3x3 ×2 (width w), max-pool, conv 3x3 ×2 (2w), max-pool, adaptive
average pool to 4x4, FC 128 (features), FC classes. No BatchNorm or dropout, so a
prediction never depends on the rest of its batch or on random state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gmval.images import ImageSet, to_float
from gmval.models.generator import check_shape
from gmval.models.training import Batch, TrainConfig, TrainResult, default_device, seeded_init, train


@dataclass(frozen=True)
class ClassifierConfig:
    """Sizes of a :class:`Classifier`.

    Attributes:
        channels: image channels.
        image_size: image side in pixels.
        num_classes: output classes.
        width: channels of the first convolutions (the second pair has twice as many).
        features: size of the feature layer used for the Fréchet distance.
    """

    channels: int
    image_size: int
    num_classes: int
    width: int = 32
    features: int = 128


class Classifier(nn.Module):
    """CNN on images in [0, 1] (see the module docstring).

    Args:
        config: sizes.
    """

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        self.body = nn.Sequential(
            nn.Conv2d(config.channels, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(2 * w * 16, config.features), nn.ReLU(),
        )
        self.head = nn.Linear(config.features, config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (B, features) of images in [0, 1]."""
        # Centring the input speeds up training; the constant is part of the model.
        return self.body(x - 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes) of images in [0, 1]."""
        return self.head(self.features(x))

    @torch.no_grad()
    def embed(self, images: ImageSet | torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """Features (N, features) as float64 of uint8 images (an ImageSet or (N, C, H, W) tensor)."""
        return self._batched(images, batch_size, self.features).astype(np.float64)

    @torch.no_grad()
    def logits(self, images: ImageSet | torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """Class logits (N, num_classes) of uint8 images."""
        return self._batched(images, batch_size, self)

    def predict(self, images: ImageSet | torch.Tensor, batch_size: int = 512) -> np.ndarray:
        """Predicted class (N,) int64 of uint8 images."""
        return self.logits(images, batch_size).argmax(1).astype(np.int64)

    def accuracy(self, data: ImageSet, batch_size: int = 512) -> float:
        """Fraction of ``data`` (which must be labelled) classified correctly."""
        if data.labels is None:
            raise ValueError(f"{data.name}: accuracy needs labels")
        return float(np.mean(self.predict(data, batch_size) == data.labels))

    def _batched(self, images: ImageSet | torch.Tensor, batch_size: int,
                 fn: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        x = images.images if isinstance(images, ImageSet) else images
        self.eval()
        device = next(self.parameters()).device
        out = [fn(to_float(x[i:i + batch_size].to(device))).cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(out).numpy()


class ClassifierTask:
    """Cross-entropy training with Adam.

    Args:
        model: the classifier.
        lr: learning rate.
    """

    def __init__(self, model: Classifier, lr: float) -> None:
        self.model = model
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, fused=True)

    def modules(self) -> dict[str, nn.Module]:
        return {"classifier": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"classifier": self.opt}

    def step(self, batch: Batch, generator: torch.Generator) -> dict[str, float]:
        if batch.y is None:
            raise ValueError("the classifier needs a labelled training set")
        loss = F.cross_entropy(self.model(batch.x), batch.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss.item()}


def train_classifier(data: ImageSet, folder: Path, train_config: TrainConfig, width: int = 32, lr: float = 1e-3,
                     params: dict[str, Any] | None = None, progress: bool = True,
                     device: torch.device | None = None) -> tuple[Classifier, TrainResult]:
    """Train (or resume, or just load) a classifier on labelled ``data`` in ``folder``.

    The number of classes is ``len(data.classes)`` when the set names them, else the
    largest label + 1.

    Returns:
        (the trained classifier in eval mode, the run).
    """
    if data.labels is None:
        raise ValueError(f"{data.name}: a classifier needs labels")
    c, h, _ = data.shape
    num_classes = len(data.classes) if data.classes else int(data.labels.max()) + 1
    config = ClassifierConfig(channels=c, image_size=h, num_classes=num_classes, width=width)
    check_shape(data, c, h)
    model = seeded_init(train_config.seed, lambda: Classifier(config)).to(device or default_device())
    run_params = {"model": "classifier", "config": asdict(config), "lr": lr, **(params or {})}
    result = train(ClassifierTask(model, lr), data, train_config, folder, run_params, desc="classifier",
                   progress=progress)
    return model, result
