"""BRISQUE (Mittal, Moorthy and Bovik, IEEE TIP 2012), offline and batched in torch.

BRISQUE regresses a quality score from 36 natural-scene-statistics features (AGGD
fits of the MSCN coefficients and of their four neighbour products, at full and half
scale) with an RBF support-vector regressor; lower is better, roughly 0..100.

The regressor is the ``brisque`` PyPI package's ``brisque/models/svm.txt`` (libsvm
epsilon-SVR, 770 support vectors, gamma 0.05) with its feature ranges
``normalize.pickle``; nothing is downloaded. pyiqa's BRISQUE is not used because its
regressor (``brisque_svm_weights.pth``) comes from a hub and because the ``brisque``
package's SVR was fitted on that package's own feature definition, which differs from
pyiqa's: BT.709 grey (``skimage.color.rgb2gray``), zero-padded local statistics,
neighbour products of the *cropped* map (no wrap-around), an AGGD (not GGD) fit for
the MSCN map itself, a continuous root for the shape parameter, and a half-scale
image made by OpenCV's non-antialiased ``INTER_CUBIC`` resize. Evaluating the SVR at
features it was not trained on would bias every score, so this module re-implements
the package's features exactly (batched, float64); ``tests/test_quality_nriqa.py``
checks it against the package itself (its numpy-2-incompatible ``scale_features``
patched in the test only).

Images smaller than ``resolution`` are first upsampled as for NIQE
(:func:`gmval.quality.niqe.working_images`: PIL bicubic, re-quantised to 8 bits),
then converted to grey exactly as the package does (BT.709 weights on [0, 1]).
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gmval.quality.base import QualityModel
from gmval.quality.niqe import AlphaTable, aggd_moments, check_images, mscn, package_file, working_images

#: ``skimage.color.rgb2gray`` weights (BT.709 luma), which the ``brisque`` package uses.
SKIMAGE_LUMA = (0.2125, 0.7154, 0.0721)
#: Smallest working short side: the half-scale image must exceed the 7x7 window several times.
MIN_SIDE = 32


@lru_cache(maxsize=1)
def brisque_model() -> dict[str, Any]:
    """The ``brisque`` package's SVR and feature ranges as float64 arrays.

    Returns:
        ``sv`` (n_sv, 36), ``coef`` (n_sv,), ``gamma``, ``rho``, ``lo`` and ``hi`` (36,)
        feature ranges mapped to [-1, 1].

    Raises:
        ValueError: if the model file is not the RBF epsilon-SVR on 36 features expected.
    """
    text = package_file("brisque", "models/svm.txt").read_text()
    header, _, body = text.partition("\nSV\n")
    meta = dict(line.split(None, 1) for line in header.splitlines() if line.strip())
    if meta.get("svm_type") != "epsilon_svr" or meta.get("kernel_type") != "rbf":
        raise ValueError(f"brisque: expected an RBF epsilon-SVR in svm.txt, got {meta}")
    rows = [line.split() for line in body.splitlines() if line.strip()]
    sv = np.zeros((len(rows), 36))
    coef = np.empty(len(rows))
    for i, row in enumerate(rows):
        coef[i] = float(row[0])
        for item in row[1:]:  # libsvm's sparse "index:value", 1-based; absent entries are 0
            k, v = item.split(":")
            sv[i, int(k) - 1] = float(v)
    if len(rows) != int(meta["total_sv"]):
        raise ValueError(f"brisque: svm.txt declares {meta['total_sv']} support vectors, holds {len(rows)}")
    with open(package_file("brisque", "models/normalize.pickle"), "rb") as f:
        ranges = pickle.load(f)
    lo = np.asarray(ranges["min_"], dtype=np.float64)
    hi = np.asarray(ranges["max_"], dtype=np.float64)
    if lo.shape != (36,) or hi.shape != (36,):
        raise ValueError(f"brisque: expected 36 feature ranges, got {lo.shape}, {hi.shape}")
    return {"sv": sv, "coef": coef, "gamma": float(meta["gamma"]), "rho": float(meta["rho"]), "lo": lo, "hi": hi}


def gaussian_taps(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """1-D factor of the package's normalised ``gaussian_kernel2d(7, 7/6)`` (which is separable)."""
    k = np.exp(-((np.arange(size) - size // 2) ** 2) / (2.0 * sigma**2))
    return k / k.sum()


def brisque_scale_features(grey: torch.Tensor, window: torch.Tensor, table: AlphaTable) -> torch.Tensor:
    """The package's ``calculate_brisque_features`` on (B, 1, H, W) grey in [0, 1] -> (B, 18) float64."""
    m = mscn(grey, window, 1.0 / 255.0)[:, 0]
    fields = [m,
              m[:, :, :-1] * m[:, :, 1:],          # horizontal neighbours
              m[:, :-1, :] * m[:, 1:, :],          # vertical
              m[:, :-1, :-1] * m[:, 1:, 1:],       # main diagonal
              m[:, 1:, :-1] * m[:, :-1, 1:]]       # anti-diagonal
    feats = []
    for k, field in enumerate(fields):
        left, right, r_norm = aggd_moments([field.reshape(field.shape[0], -1)])
        # The package solves phi(alpha) = r with scipy's root finder; interpolating the
        # tabulated phi gives the same root to ~1e-7 without a per-image solver.
        alpha = table.interpolate(r_norm)
        if k == 0:
            feats += [alpha, (left**2 + right**2) / 2]
            continue
        mean = (right - left) * torch.exp(0.5 * (torch.lgamma(1.0 / alpha) - torch.lgamma(3.0 / alpha))
                                          + torch.lgamma(2.0 / alpha) - torch.lgamma(1.0 / alpha))
        feats += [alpha, mean, left**2, right**2]
    return torch.stack(feats, dim=1)


def brisque_features(grey: torch.Tensor, window: torch.Tensor, table: AlphaTable) -> torch.Tensor:
    """36 BRISQUE features of (B, 1, H, W) grey in [0, 1]: full scale, then half scale.

    The half scale is ``cv2.resize(fx=0.5, fy=0.5, INTER_CUBIC)``, which torch's bicubic
    (a = -0.75, half-pixel centres, clamped borders, no antialiasing) reproduces. OpenCV
    rounds an odd side's half to even (451 -> 226) where torch floors (225); a replicated
    last row/column gives torch the extra output sample at OpenCV's exact positions.
    """
    h, w = grey.shape[-2:]
    grey_pad = F.pad(grey, (0, round(w / 2) - w // 2, 0, round(h / 2) - h // 2), mode="replicate")
    half = F.interpolate(grey_pad, scale_factor=0.5, mode="bicubic", align_corners=False,
                         recompute_scale_factor=False)
    return torch.cat([brisque_scale_features(grey, window, table),
                      brisque_scale_features(half, window, table)], dim=1)


class BRISQUEQuality(QualityModel):
    """BRISQUE with the ``brisque`` package's SVR; q = clip(1 - BRISQUE / 100, 0, 1).

    BRISQUE regresses the differential mean opinion scores (DMOS) of the LIVE
    database, which span about 0 (pristine) to 100 (worst), and the package documents
    its scores as "typically 0-100"; the fixed linear map therefore puts pristine
    images near q = 1 and the worst rated ones near 0. The regressor extrapolates
    beyond that range (slightly negative for very clean photographs, > 100 for
    distortions stronger than LIVE's, e.g. a uniform image ~107); such scores are
    clipped to q = 1 or 0, while the raw score keeps their order.

    Known limits, inherent to BRISQUE rather than to this port: it is trained on
    photographs, penalises blur strongly and reads added texture as less blur. On
    images with large flat areas (MNIST-like digits) it therefore scores Gaussian noise
    as an *improvement*, and the more an image is upsampled (which blurs it) the more
    that holds for photographs too; an all-black image scores NaN.

    Args:
        resolution: images whose short side is smaller are first upsampled (PIL
            bicubic, re-quantised to 8 bits) to this short side; larger images are
            scored as they are. Must be >= 32. BRISQUE has no patch size, so the default
            64 is the least upsampling that leaves the half-scale image (32 px) several
            times the 7x7 window. Measured on 200 crops of photographs resized to 32 px:
            at 64 BRISQUE ranks blur, JPEG and strong noise (sigma 30) as worse (AUC
            0.85, 0.71, 0.68) and is indifferent to light noise, whereas at 192 (NIQE's
            size) the upsampling blur dominates and noise reads as better (AUC 0.09).
        batch_size: images per batch.
        **kw: :class:`~gmval.component.Component` arguments (device).
    """

    name = "brisque"

    def __init__(self, resolution: int = 64, batch_size: int = 64, **kw: Any) -> None:
        super().__init__(batch_size=batch_size, **kw)
        if not isinstance(resolution, int) or resolution < MIN_SIDE:
            raise ValueError(f"brisque: resolution must be an int >= {MIN_SIDE}, got {resolution!r}")
        self.resolution = resolution
        model = brisque_model()
        to = {"device": self.device, "dtype": torch.float64}
        self._sv = torch.as_tensor(model["sv"], **to)
        self._coef = torch.as_tensor(model["coef"], **to)
        self._gamma, self._rho = model["gamma"], model["rho"]
        self._lo = torch.as_tensor(model["lo"], **to)
        self._hi = torch.as_tensor(model["hi"], **to)
        self._window = torch.as_tensor(gaussian_taps(), **to)
        self._table = AlphaTable(self.device)

    def params(self) -> dict[str, Any]:
        """Base parameters plus ``resolution`` (it changes the score)."""
        return {**super().params(), "resolution": self.resolution}

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> the 36 unscaled BRISQUE features (B, 36) float64."""
        x = working_images(check_images(images, "brisque").to(self.device), self.resolution) / 255.0
        if x.shape[1] == 3:
            x = sum(wt * x[:, i:i + 1] for i, wt in enumerate(SKIMAGE_LUMA))
        return brisque_features(x, self._window, self._table)

    @torch.inference_mode()
    def raw(self, images: torch.Tensor, embeddings: torch.Tensor | None = None) -> np.ndarray:
        """uint8 (B, C, H, W) -> BRISQUE (B,) float64, lower is better (NaN for an all-black image)."""
        f = self.features(images)
        scaled = -1.0 + 2.0 * (f - self._lo) / (self._hi - self._lo)
        d2 = (scaled[:, None, :] - self._sv[None]).square().sum(-1)
        return (torch.exp(-self._gamma * d2) @ self._coef - self._rho).cpu().numpy()

    def normalise(self, raw: np.ndarray) -> np.ndarray:
        """BRISQUE -> q = clip(1 - BRISQUE / 100, 0, 1), higher is better; NaN stays NaN."""
        s = np.asarray(raw, dtype=np.float64)
        return np.clip(1.0 - s / 100.0, 0.0, 1.0)

