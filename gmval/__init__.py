"""gmval: GMValuator, similarity-based data valuation for generative models (ICLR 2025).

Two-line use::

    import gmval
    result = gmval.value(train_images, generated_images, encoder="efficientnet-lite0", rerank="l2", k=30)

``result.values`` holds one value per training image (Eq. 5), ``result.contributors`` the
top-k contributors of every generated image with their distances and contributions (Eq. 6).
"""

__version__ = "0.1.0"

from gmval import hub as _hub  # noqa: F401 - filters bitsandbytes' hub-kernel notice before any import of it
from gmval.distances import list_distances  # noqa: E402
from gmval.encoders import list_encoders  # noqa: E402
from gmval.images import ImageSet  # noqa: E402
from gmval.quality import list_quality_models  # noqa: E402
from gmval.valuator import ValuationResult, Valuator, value  # noqa: E402

__all__ = ["ImageSet", "ValuationResult", "Valuator", "list_distances", "list_encoders",
           "list_quality_models", "value", "__version__"]
