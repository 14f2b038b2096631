"""The verdict rules of gmval.verdicts, on small hand-made result tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gmval import paths, reproduction, verdicts
from gmval.attribution import Attribution
from gmval.evaluation import c1_table, c3_metrics
from gmval.generator_quality import confident_share
from gmval.models.fid import blur, confident_mask
from gmval.verdicts import BELOW_GATE, CONTRADICTS, PARTLY, SUPPORTS, Tables


def _quality(**over: object) -> dict[str, object]:
    row: dict[str, object] = {"generator": "mnist-gan", "dataset": "mnist", "fd": 16.0, "fd_real": 4.0,
                              "class_accuracy": np.nan, "confident_share": 0.95,
                              "class_histogram": "[50, 50, 50, 50, 50, 50, 50, 50, 50, 30]"}
    row.update(over)
    return row


@pytest.mark.parametrize(("over", "reason"), [
    ({}, None),
    ({"fd": 20.1}, "FD 5.0x"),
    ({"confident_share": 0.89}, "confident share 0.890"),
    ({"confident_share": np.nan}, "confident share not measured"),
    ({"class_histogram": "[61, 50, 50, 50, 50, 50, 50, 50, 50, 30]"}, "class counts 2.0x"),
    ({"class_histogram": "[0, 50, 50, 50, 50, 50, 50, 50, 50, 30]"}, "class counts infx"),
    ({"generator": "mnist-vae", "fd": 79.0}, None),
    ({"generator": "mnist-vae", "fd": 81.0}, "FD 20.2x"),
    ({"generator": "mnist-diffusion", "class_accuracy": 0.95, "confident_share": 0.1,
      "class_histogram": "[1, 100]"}, None),
    ({"generator": "mnist-diffusion", "class_accuracy": 0.94}, "class accuracy 0.940"),
    ({"generator": "fashion-mnist-diffusion", "dataset": "fashion-mnist", "class_accuracy": 0.80}, None),
    ({"generator": "fashion-mnist-diffusion", "dataset": "fashion-mnist", "class_accuracy": 0.79}, "class accuracy"),
    # One class (the motivation pair): its share against the real class images', no balance or confidence.
    ({"generator": "motivation-gan", "class": 0, "class_accuracy": 0.73, "class_accuracy_real": 0.8,
      "confident_share": 0.1, "class_histogram": "[500, 0, 0, 0, 0, 0, 0, 0, 0, 0]"}, None),
    ({"generator": "motivation-diffusion", "class": 0, "class_accuracy": 0.71, "class_accuracy_real": 0.8},
     "class 0 share 0.710 (needs 0.720, 90% of the real images' 0.800)"),
])
def test_gate_thresholds(over: dict[str, object], reason: str | None) -> None:
    why = verdicts.gate_failures(_quality(**over))
    if reason is None:
        assert why == []
    else:
        assert len(why) == 1 and why[0].startswith(reason), why


def test_gate_table_columns() -> None:
    g = verdicts.gate_table(pd.DataFrame([_quality(), _quality(generator="mnist-vae", fd=100.0)]))
    assert g["gate"].tolist() == ["pass", "fail"]
    assert g["fd_ratio"].tolist() == [4.0, 25.0]
    assert g["class_count_ratio"].iloc[0] == pytest.approx(50 / 30)
    assert g["gate_reasons"].iloc[0] == "" and "FD 25.0x" in g["gate_reasons"].iloc[1]


def test_confident_share_and_blur() -> None:
    logits = np.log(np.array([[0.95, 0.05], [0.6, 0.4], [0.05, 0.95], [0.91, 0.09]]))
    assert confident_share(logits) == pytest.approx(0.75)
    assert confident_mask(logits, verdicts.GATE.confident_softmax).tolist() == [True, False, True, True]
    img = torch.zeros(1, 1, 9, 9, dtype=torch.uint8)
    img[0, 0, 4, 4] = 255
    out = blur(img, 1.0)
    assert out.dtype == torch.uint8 and out[0, 0, 4, 4] < 255 and out[0, 0, 4, 5] > 0
    assert abs(int(out.sum()) - 255) <= 10  # mass kept up to rounding


def _write(folder: Path, stem: str, rows: list[dict[str, object]]) -> None:
    pd.DataFrame(rows).to_csv(folder / f"{stem}.csv", index=False)


def _c1_row(gen: str, ours: float, paper: float, distance: str = "l2", **extra: object) -> dict[str, object]:
    return {"generator": gen, "distance": distance, "k": 30, "ours": ours, "paper": paper,
            "paper_dataset": "MNIST", "model": "GAN", "encoder": "enc", **extra}


@pytest.mark.parametrize(("ours", "verdict"), [(88.0, SUPPORTS), (87.0, PARTLY), (20.0, PARTLY), (19.9, CONTRADICTS)])
def test_c1_rule(tmp_path: Path, ours: float, verdict: str) -> None:
    _write(tmp_path, "c1_identical_class", [_c1_row("mnist-gan", ours, 97.99, ceiling=89.0, ours_confident=91.0)])
    _write(tmp_path, "generators_quality", [_quality()])
    t = Tables(tmp_path)
    (claim,) = verdicts.c1_claims(t, t.gates())
    assert claim.verdict == verdict
    assert "89.0 %" in claim.evidence and "91.0 %" in claim.evidence


def test_below_gate_comes_first(tmp_path: Path) -> None:
    _write(tmp_path, "c1_identical_class", [_c1_row("mnist-gan", 97.0, 97.0)])
    _write(tmp_path, "generators_quality", [_quality(fd=40.0)])
    t = Tables(tmp_path)
    (claim,) = verdicts.c1_claims(t, t.gates())
    assert claim.verdict == BELOW_GATE and "FD 10.0x" in claim.evidence
    # a generator without a quality row is not shown to be well-trained either
    (claim,) = verdicts.c1_claims(t, {})
    assert claim.verdict == BELOW_GATE


@pytest.mark.parametrize(("t_stat", "p", "verdict"), [(3.0, 0.009, SUPPORTS), (2.0, 0.02, PARTLY),
                                                      (1.0, 0.2, CONTRADICTS), (-3.0, 0.001, CONTRADICTS)])
def test_table6_rule(tmp_path: Path, t_stat: float, p: float, verdict: str) -> None:
    base = {"generator": "mnist-gan", "model": "BigGAN", "encoder": "enc", "k": 30, "n_generated": 500}
    _write(tmp_path, "motivation_ttest", [{**base, "column": "p_value", "ours": p, "paper": 1e-60},
                                          {**base, "column": "t_statistic", "ours": t_stat, "paper": 17.0},
                                          {**base, "column": "trained_share", "ours": 0.6, "paper": np.nan}])
    _write(tmp_path, "generators_quality", [_quality()])
    t = Tables(tmp_path)
    (claim,) = verdicts.table6_claims(t, t.gates())
    assert claim.verdict == verdict


@pytest.mark.parametrize(("auroc", "verdict"), [(0.9, SUPPORTS), (0.89, PARTLY), (0.59, CONTRADICTS)])
def test_c3_rule_and_calibration(tmp_path: Path, auroc: float, verdict: str) -> None:
    base = {"generator": "mnist-gan", "encoder": "enc", "k": 30, "ours": 60.0, "clean_zero_share": 0.5,
            "noisy_bottom_decile": 0.2}
    _write(tmp_path, "c3_noisy_ranks", [{**base, "distance": "none", "quality": "none", "auroc": auroc,
                                         "noisy_with_value": 0},
                                        {**base, "distance": "none", "quality": "realism", "auroc": auroc + 0.05,
                                         "noisy_with_value": 0}])
    _write(tmp_path, "generators_quality", [_quality()])
    t = Tables(tmp_path)
    fig5, fig9 = verdicts.c3_claims(t, t.gates())
    assert fig5.verdict == verdict
    # no noisy image is ever a contributor: calibration has nothing to act on
    assert fig9.verdict == verdicts.not_comparable("no noisy image is any sample's contributor")


def test_calibration_gain(tmp_path: Path) -> None:
    base = {"generator": "mnist-gan", "encoder": "enc", "k": 30, "ours": 60.0, "clean_zero_share": 0.5,
            "noisy_bottom_decile": 0.2, "distance": "none", "noisy_with_value": 3}
    rows = [{**base, "quality": "none", "auroc": 0.7}, {**base, "quality": "niqe", "auroc": 0.705}]
    _write(tmp_path, "c3_noisy_ranks", rows)
    _write(tmp_path, "generators_quality", [_quality()])
    t = Tables(tmp_path)
    assert verdicts.c3_claims(t, t.gates())[1].verdict == PARTLY
    rows[1]["auroc"] = 0.71
    _write(tmp_path, "c3_noisy_ranks", rows)
    t = Tables(tmp_path)
    assert verdicts.c3_claims(t, t.gates())[1].verdict == SUPPORTS


def test_c3_reads_fig5_without_and_fig9_with_the_poor_samples(tmp_path: Path) -> None:
    base = {"generator": "mnist-gan", "encoder": "enc", "k": 30, "ours": 60.0, "clean_zero_share": 0.5,
            "noisy_bottom_decile": 0.2, "distance": "none", "noisy_with_value": 3}
    rows = [{**base, "samples": "generated", "quality": "none", "auroc": 0.95},
            {**base, "samples": "generated", "quality": "niqe", "auroc": 0.95},
            {**base, "samples": "generated + poor", "quality": "none", "auroc": 0.2},
            {**base, "samples": "generated + poor", "quality": "niqe", "auroc": 0.3}]
    _write(tmp_path, "c3_noisy_ranks", rows)
    _write(tmp_path, "generators_quality", [_quality()])
    t = Tables(tmp_path)
    fig5, fig9 = verdicts.c3_claims(t, t.gates())
    assert fig5.verdict == SUPPORTS and "AUROC 0.950" in fig5.evidence
    assert fig9.verdict == SUPPORTS and "+0.100" in fig9.evidence
    rows[3]["auroc"] = 0.2  # calibration changes nothing once the poor samples are in
    _write(tmp_path, "c3_noisy_ranks", rows)
    t = Tables(tmp_path)
    assert verdicts.c3_claims(t, t.gates())[1].verdict == CONTRADICTS


def _lds(method: str, low: float, high: float) -> dict[str, object]:
    return {"method": method, "lds": (low + high) / 2, "low": low, "high": high, "n_subsets": 32, "n_train": 100,
            "n_generated": 10, "train_seeds": 1}


def test_lds_rule_and_headline(tmp_path: Path) -> None:
    _write(tmp_path, "cf_lds", [_lds("GMValuator (l2)", -0.1, 0.05), _lds("GMValuator (none)", 0.01, 0.2),
                                _lds("VAE-TracIn", 0.04, 0.3), _lds("random scores", -0.05, 0.06)])
    claims = verdicts.lds_claims(Tables(tmp_path))
    assert claims[0].verdict == PARTLY and "VAE-TracIn 0.17 [0.04, 0.30]" in claims[0].evidence
    assert claims[1].verdict.startswith("not comparable")  # cf_lds_diffusion missing
    text = " ".join(verdicts.headline(tmp_path))
    assert "above chance / at chance on the β-VAE" in text and "VAE-TracIn (0.17) is above chance" in text
    assert "some variants' values predict" in text
    assert verdicts.chance_label(-0.01, 0.2) == "at chance" and verdicts.chance_label(-0.3, -0.01) == "below chance"


@pytest.mark.parametrize(("tracin_s", "verdict"), [(0.1, SUPPORTS), (0.05, PARTLY), (0.01, CONTRADICTS)])
def test_speed_rule(tmp_path: Path, tracin_s: float, verdict: str) -> None:
    # paper speed-up 100x; ours tracin_s / 0.01 s
    base = {"generator": "mnist-vae", "quality": "none"}
    _write(tmp_path, "c4_seconds_per_sample", [{**base, "distance": "l2", "ours": 0.01, "paper": 0.5, "reductions": ""},
                                               {**base, "distance": "vae-tracin", "ours": tracin_s, "paper": 50.0,
                                                "reductions": "subset"}])
    (claim, missing) = verdicts.speed_claims(Tables(tmp_path))
    assert claim.verdict == verdict and missing.verdict.startswith("not comparable")


@pytest.mark.parametrize(("gap", "faster", "verdict"), [(0.019, True, SUPPORTS), (0.019, False, PARTLY),
                                                        (0.049, True, PARTLY), (0.051, True, CONTRADICTS)])
def test_pq_rule(tmp_path: Path, gap: float, faster: bool, verdict: str) -> None:
    _write(tmp_path, "c4_pq_recall", [{"config": "pq-m16", "K": 100, "recall_at_K": 0.6, "encoder": "enc",
                                       "generator": "mnist-gan", "identical_class": 0.80 - gap,
                                       "exact_identical_class": 0.80, "search_ms_per_query": 0.1 if faster else 2.0,
                                       "exact_ms_per_query": 1.0}])
    _write(tmp_path, "generators_quality", [_quality()])
    t = Tables(tmp_path)
    (claim,) = verdicts.pq_claims(t, t.gates())
    assert claim.verdict == verdict


def test_scaling_rule(tmp_path: Path) -> None:
    n = np.array([1000, 10000, 100000])
    _write(tmp_path, "c4_scaling", [{"n_train": a, "distance": "l2", "per_sample_s": 1e-3 * a ** 0.2, "encoder": "e"}
                                    for a in n])
    assert verdicts.scaling_claims(Tables(tmp_path))[0].verdict == SUPPORTS
    _write(tmp_path, "c4_scaling", [{"n_train": a, "distance": "l2", "per_sample_s": 1e-6 * a, "encoder": "e"}
                                    for a in n])
    assert verdicts.scaling_claims(Tables(tmp_path))[0].verdict == CONTRADICTS


def test_every_row_has_a_verdict_on_an_empty_folder(tmp_path: Path) -> None:
    rows = verdicts.claims(tmp_path, reproduction.paper_numbers("T9"))
    assert rows and all(c.verdict for c in rows)
    assert any("not reproduced" in c.verdict and "ImageNet" in c.evidence for c in rows)


def test_readme_and_index_match_the_committed_csvs(tmp_path: Path) -> None:
    # README's generated blocks and REPRODUCTION.md are what `python -m gmval.reproduction` writes
    text = (paths.ROOT / "README.md").read_text()
    assert all(reproduction._markers(name)[0] in text for name in ("findings", "speed"))
    assert reproduction.render_readme(text, reproduction.readme_blocks(paths.ROOT / "figures")) == text
    index = reproduction.write_index(tmp_path / "REPRODUCTION.md", paths.ROOT / "figures")
    assert index == (paths.ROOT / "figures" / "REPRODUCTION.md").read_text()


def test_render_readme_replaces_only_the_block() -> None:
    start, end = reproduction._markers("findings")
    text = f"before\n{start}\nold\n{end}\nafter\n"
    rendered = reproduction.render_readme(text, {"findings": "new", "speed": "x"})
    assert rendered == f"before\n{start}\nnew\n{end}\nafter\n"


def test_c3_metrics_counts_ties_half() -> None:
    # 8 clean images, 2 of them at value 0; 2 noisy images at value 0
    values = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0])
    # Two generated images whose scores sum to the values: C3 ranks an attribution's values.
    m = c3_metrics(Attribution("m", 10, np.stack([values / 4, 3 * values / 4])), np.array([8, 9]))
    # P(clean > noisy) = 6/8, ties (2 of 8) count half
    assert m["auroc"] == pytest.approx(6 / 8 + 0.5 * 2 / 8)
    assert m["clean_zero_share"] == pytest.approx(2 / 8)
    # the four zeros share rank 8.5 of 10: not in the bottom decile (> 9)
    assert m["noisy_bottom_decile"] == 0.0 and m["noisy_mean_rank_pct"] == pytest.approx(85.0)
    assert m["noisy_with_value"] == 0
    strict = c3_metrics(Attribution("m", 10, np.arange(10, 0, -1, dtype=float)[None]), np.array([9]))
    assert strict["auroc"] == 1.0 and strict["noisy_bottom_decile"] == 1.0
    with pytest.raises(ValueError, match="both noisy and clean"):
        c3_metrics(Attribution("m", 10, values[None]), np.arange(10))


def test_c1_table_on_confident_samples() -> None:
    train_labels = np.array([0, 0, 1, 1])
    topk = np.array([[0, 1], [0, 2], [2, 3]])
    ranked = Attribution("m", 4, np.tile([2.0, 1.0], (3, 1)), index=topk)  # contributors in topk's order
    gen_labels = np.array([0, 0, 0])
    confident = np.array([True, True, False])
    t = c1_table(ranked, train_labels, gen_labels, ks=(1, 2), confident=confident)
    assert t["ours"].tolist() == pytest.approx([100 * 2 / 3, 100 * 3 / 6])
    assert t["ours_confident"].tolist() == pytest.approx([100.0, 75.0])
    assert t["confident_share"].iloc[0] == pytest.approx(2 / 3)
    assert "ours_confident" not in c1_table(ranked, train_labels, gen_labels, ks=(1,)).columns


@pytest.mark.parametrize(("ours", "verdict"), [([80.0, 70.0, 65.0], SUPPORTS), ([62.0, 55.0, 51.0], PARTLY),
                                               ([50.0, 55.0, 51.0], CONTRADICTS)])
def test_c2_rule(tmp_path: Path, ours: list[float], verdict: str) -> None:
    # same-class chances 55, 52, 50: supports needs +10 on every attribute, partly > 0 on every one
    rows = [{"generator": "mnist-gan", "distance": "effnet-features", "attribute": a, "k": 5, "ours": o,
             "chance": 50.0, "chance_same_class": c} for a, o, c in zip(("wide", "slanted", "thick"), ours,
                                                                          (55.0, 52.0, 50.0), strict=True)]
    rows.append({"generator": "mnist-gan", "distance": "effnet-features", "attribute": "thick&wide", "k": 5,
                 "ours": 0.0, "chance": 25.0, "chance_same_class": 30.0})
    _write(tmp_path, "c2_identical_attributes", rows)
    _write(tmp_path, "generators_quality", [_quality()])
    t = Tables(tmp_path)
    (claim,) = verdicts.c2_claims(t, t.gates())
    assert claim.verdict == verdict


@pytest.mark.parametrize(("means", "stds", "verdict"), [([40, 44, 43, 42], [30, 8, 5, 2], SUPPORTS),
                                                        ([40, 30, 43, 42], [30, 8, 5, 2], PARTLY),
                                                        ([40, 30, 43, 42], [2, 8, 5, 3], CONTRADICTS)])
def test_fig7_rule(tmp_path: Path, means: list[float], stds: list[float], verdict: str) -> None:
    _write(tmp_path, "c1_generated_set_size", [{"generator": "mnist-gan", "class": 0, "m": m, "mean": a, "std": s}
                                               for m, a, s in zip((1, 10, 30, 50), means, stds, strict=True)])
    _write(tmp_path, "generators_quality", [_quality()])
    t = Tables(tmp_path)
    assert verdicts.fig7_claims(t, t.gates())[0].verdict == verdict


@pytest.mark.parametrize(("gmv", "verdict"), [(60.0, SUPPORTS), (56.0, PARTLY), (50.0, CONTRADICTS)])
def test_tracin_and_if4gan_rules(tmp_path: Path, gmv: float, verdict: str) -> None:
    _write(tmp_path, "c1_identical_class", [_c1_row("mnist-gan", gmv, 87.0), _c1_row("mnist-gan", 55.0, 72.0,
                                                                                     distance="vae-tracin",
                                                                                     reductions="subset")])
    _write(tmp_path, "c3_if4gan_vs_gmvaluator", [
        {"method": "IF4GAN", "ours": 55.0, "generator": "mnist-gan", "noisy_scored": 5, "scored_images": 50,
         "traced_steps": 2},
        {"method": "GMValuator (none)", "ours": gmv, "generator": "mnist-gan", "noisy_scored": 5, "scored_images": 50,
         "traced_steps": 2}])
    _write(tmp_path, "generators_quality", [_quality()])
    t = Tables(tmp_path)
    assert verdicts.tracin_claims(t, t.gates())[0].verdict == verdict
    assert verdicts.if4gan_claims(t, t.gates())[0].verdict == verdict


def test_not_compared_tables_show_no_difference(tmp_path: Path) -> None:
    _write(tmp_path, "c4_seconds_per_sample", [{"generator": "g", "distance": "l2", "quality": "none", "ours": 0.001,
                                               "paper": 0.3}])
    text = reproduction.write_index(tmp_path / "REPRODUCTION.md", tmp_path)
    assert "not computed: CPU against GPU seconds" in text
