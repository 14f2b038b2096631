"""``report.html``: one self-contained page a person can look at after ``gmval value``.

Everything is inline (images as base64 PNG, styles in the page, no scripts), so the file
opens offline, can be mailed, and loads nothing from anywhere. It shows the settings, the
stage timings, the distribution of the values, the most and least valuable training
images, and a few generated images each beside its top contributors with their weights.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gmval.images import ImageSet

#: Thumbnails are enlarged (nearest neighbour, in the browser) to at least this many CSS pixels.
THUMB_PX = 72

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { padding: 0.2em 0.7em; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { background: #4a7bd0; height: 0.8em; display: inline-block; }
.grid { display: flex; flex-wrap: wrap; gap: 0.6em; }
figure { margin: 0; text-align: center; font-size: 0.75em; width: PXpx; overflow-wrap: anywhere; }
img.thumb { width: PXpx; height: auto; image-rendering: pixelated; border: 1px solid #ccc; }
.row { display: flex; gap: 0.6em; align-items: flex-start; margin-bottom: 0.8em; }
.row figure.gen img { border: 2px solid #d0784a; }
.arrow { align-self: center; font-size: 1.4em; color: #888; }
code { font-size: 0.85em; }
""".replace("PX", str(THUMB_PX))


def png_data_uri(image: np.ndarray) -> str:
    """uint8 (C, H, W) -> ``data:image/png;base64,...``, shrunk to fit twice :data:`THUMB_PX`."""
    arr = image[0] if image.shape[0] == 1 else np.transpose(image, (1, 2, 0))
    im = Image.fromarray(np.ascontiguousarray(arr))
    # twice the shown size is sharp on high-density screens; more only makes the page heavy
    im.thumbnail((2 * THUMB_PX, 2 * THUMB_PX), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(image: np.ndarray, caption: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return (f'<figure{cls}><img class="thumb" alt="{html.escape(caption)}" src="{png_data_uri(image)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _histogram(values: np.ndarray) -> str:
    """The value distribution as an inline PNG plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 2.6))
    positive = values[values > 0]
    ax.hist(positive if len(positive) else values, bins=min(60, max(5, len(values) // 20)), color="#4a7bd0")
    ax.set_xlabel("value (Eq. 5)")
    ax.set_ylabel("training images")
    zero = int((values == 0).sum())
    ax.set_title(f"{len(values) - zero} training images with value > 0; {zero} with value 0", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="value distribution" src="{uri}">'


def _settings_table(config: dict[str, Any], command: str | None) -> str:
    rows = [("command", f"<code>{html.escape(command)}</code>")] if command else []
    for key in ("encoder", "distance", "quality", "recall", "k", "recall_k", "temperature", "temperature_used",
                "n_train", "n_generated"):
        if key in config:
            value = config[key]
            text = json.dumps(value, default=str) if isinstance(value, dict) else str(value)
            rows.append((key, f"<code>{html.escape(text)}</code>"))
    return "<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _timings_table(timings: dict[str, float]) -> str:
    total = sum(v for k, v in timings.items() if k != "distance_features") or 1.0
    rows = []
    for stage, seconds in timings.items():
        width = 300 * seconds / total
        rows.append(f'<tr><th>{html.escape(stage)}</th><td class="num">{seconds:.3f} s</td>'
                    f'<td><span class="bar" style="width:{width:.0f}px"></span></td></tr>')
    note = ("<p><small>distance_features is the part of rerank spent computing the distance's "
            "features.</small></p>") if "distance_features" in timings else ""
    return "<table>" + "".join(rows) + "</table>" + note


def write_report(path: str | Path, result: Any, train: ImageSet, generated: ImageSet, *,
                 n_generated: int = 6, n_contributors: int = 8, n_extremes: int = 12,
                 command: str | None = None) -> Path:
    """Write ``report.html`` for a valuation.

    Args:
        path: the file to write.
        result: the :class:`~gmval.valuator.ValuationResult`.
        train: the training images it valued (ids and order as in the result).
        generated: the generated images.
        n_generated: generated images shown beside their contributors (the first ones).
        n_contributors: contributors shown per generated image.
        n_extremes: most and least valuable training images shown.
        command: the command line, shown with the settings.

    Returns:
        The path written.
    """
    from gmval.store import atomic_write_text

    values = result.values.sort_values("rank")
    v = values["value"].to_numpy()
    top = values.head(n_extremes)
    bottom = values.tail(min(n_extremes, max(0, len(values) - len(top)))).iloc[::-1]

    def train_figs(rows: Any) -> str:
        idx = rows["train_index"].to_numpy()
        imgs = train.images[idx].numpy() if len(idx) else []
        return '<div class="grid">' + "".join(
            _figure(img, f"#{r.rank} {html.escape(str(r.train_id))}<br>value {r.value:.4g}")
            for img, r in zip(imgs, rows.itertuples(), strict=True)) + "</div>"

    k = result.k
    shown = list(range(min(n_generated, len(generated))))
    topk = result.topk_indices()
    weights = result.contributors["weight"].to_numpy().reshape(-1, k)
    dists = result.contributors["distance"].to_numpy().reshape(-1, k)
    rows_html = []
    for j in shown:
        cols = min(n_contributors, k)
        gen_img = generated.images[j].numpy()
        cand = train.images[topk[j, :cols]].numpy()
        figs = [_figure(gen_img, f"generated<br>{html.escape(str(generated.ids[j]))}", "gen"),
                '<span class="arrow">&rarr;</span>']
        figs += [_figure(img, f"{html.escape(str(train.ids[topk[j, c]]))}<br>"
                              f"w {weights[j, c]:.3f}, d {dists[j, c]:.3g}")
                 for c, img in enumerate(cand)]
        rows_html.append('<div class="row">' + "".join(figs) + "</div>")

    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>gmval report</title><style>{_STYLE}</style></head>
<body>
<h1>gmval valuation report</h1>
<p>{len(train)} training images valued by their contributions to {len(generated)} generated images.
Files beside this page: <code>values.csv</code> (one row per training image), <code>contributors.csv</code>
(top {k} per generated image), <code>config.json</code>.</p>
<h2>Settings</h2>{_settings_table(result.config, command)}
<h2>Stage timings</h2>{_timings_table(result.timings)}
<h2>Value distribution</h2>{_histogram(v)}
<h2>Most valuable training images</h2>{train_figs(top)}
<h2>Least valuable training images</h2>{train_figs(bottom)}
<h2>Generated images and their top contributors</h2>
<p>w: the contribution weight (the normalised exp(-d/T)); d: the re-ranking distance.</p>
{"".join(rows_html)}
</body></html>
"""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, body)
    return out
