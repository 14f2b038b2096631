"""The attribution methods the counterfactual study compares, built as a profile entry lists them.

Every method goes through :mod:`gmval.attribution` (one interface, one result type), so the
criteria (:mod:`~gmval.counterfactual.metrics`, :mod:`~gmval.counterfactual.removal`) see no
difference between them. The study's methods, in its tables' order:

* ``GMValuator (<distance>)`` / ``GMValuator (<distance>, <quality>)``: every distance × quality
  pair of the entry, on one fitted valuator (the recall index is built once);
* ``pixel -L2 (dense)`` and ``pixel top-k``: the raw-pixel baselines;
* ``VAE-TracIn``: on the full model's snapshots, unless the entry's ``tracin`` is None (or absent);
* ``TRAK``: on the full-set models of the first ``trak.models`` training seeds, with the loss of
  the trainer's model kind (:meth:`~gmval.models.kinds.ModelKind.gradient_loss`);
* ``random scores``: the control that predicts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gmval.attribution import Attribution, create_attributor
from gmval.counterfactual.retraining import SubsetTrainer
from gmval.images import ImageSet
from gmval.models.kinds import model_kind

#: label -> (distance, quality) descriptions of a study's methods, the columns of its LDS table.
Settings = dict[str, tuple[str, str]]


def gmvaluator_attributions(train: ImageSet, generated: ImageSet, encoder: Sequence[Any], k: int,
                            temperature: float | str, distances: Sequence[Sequence[Any]],
                            qualities: Sequence[Sequence[Any]]) -> tuple[dict[str, Attribution], Settings,
                                                                         dict[str, float]]:
    """The attributions of every GMValuator variant (each distance × quality pair), as a profile lists them.

    One valuator is fitted on ``train``; each variant swaps its re-ranking distance and quality model.

    Args:
        train: the training set the models were trained on.
        generated: the generated samples.
        encoder: ``[name, kwargs]`` of the recall encoder.
        k: contributors per sample.
        temperature: T of exp(-d/T), or ``"auto"``.
        distances / qualities: ``[name, kwargs]`` pairs.

    Returns:
        (label -> attribution, label -> (distance, quality), label -> seconds to score),
        labelled ``"GMValuator (<distance>)"`` without and ``"GMValuator (<distance>, <quality>)"``
        with a quality model.
    """
    from gmval.distances import create_distance
    from gmval.quality import create_quality_model
    from gmval.valuator import Valuator

    valuator = Valuator(tuple(encoder), k=k, temperature=temperature, progress=False).fit(train)
    methods: dict[str, Attribution] = {}
    settings: Settings = {}
    seconds: dict[str, float] = {}
    for dist_name, dist_kwargs in distances:
        valuator.distance = create_distance(dist_name, **dist_kwargs)
        for q_name, q_kwargs in qualities:
            valuator.quality = create_quality_model(q_name, **q_kwargs)
            start = time.perf_counter()
            label = f"GMValuator ({dist_name})" if q_name == "none" else f"GMValuator ({dist_name}, {q_name})"
            methods[label] = valuator.score(generated)
            settings[label] = (dist_name, q_name)
            seconds[label] = time.perf_counter() - start
    return methods, settings, seconds


def study_attributions(trainer: SubsetTrainer, generated: ImageSet, entry: Mapping[str, Any],
                       tracin_defaults: Mapping[str, Any]) -> tuple[dict[str, Attribution], Settings,
                                                                    dict[str, float]]:
    """Every method of a ``counterfactual`` profile entry (module docstring) on ``generated``.

    Args:
        trainer: the retraining study; its full model drew ``generated``.
        generated: the generated samples.
        entry: the profile entry (``encoder``, ``k``, ``temperature``, ``distances``,
            ``qualities``, ``pixel_k``, ``tracin``, ``trak``).
        tracin_defaults: the profile's ``baselines.vae_tracin``, under the entry's ``tracin``.

    Returns:
        (label -> attribution, label -> (distance, quality), label -> seconds to fit and score,
        training the models a method needs included).
    """
    train, full = trainer.train, trainer.full_mask()
    methods, settings, seconds = gmvaluator_attributions(train, generated, entry["encoder"], entry["k"],
                                                         entry["temperature"], entry["distances"],
                                                         entry["qualities"])

    def full_run() -> Any:
        trainer.fit(full)  # VAE-TracIn differentiates its snapshots: the run must be done
        return trainer.folder(full, trainer.seeds[0])

    trak = entry["trak"]
    runs: list[tuple[str, tuple[str, str], str, dict[str, Any], Callable[[], Any]]] = [
        ("pixel -L2 (dense)", ("pixel-l2", "none"), "pixel", {}, lambda: None),
        ("pixel top-k", (f"pixel-l2 top-{entry['pixel_k']}", "none"), "pixel", {"k": entry["pixel_k"]},
         lambda: None)]
    if entry["tracin"] is not None:
        runs.append(("VAE-TracIn", ("gradient", "none"), "vae-tracin",
                     {**tracin_defaults, **entry["tracin"], "progress": False}, full_run))
    runs.append(("TRAK", ("projected gradient", "none"), "trak",
                 {"loss": model_kind(trainer.recipe.kind).gradient_loss(trak), "projection_dim": trak["projection_dim"],
                  "ridge": trak["ridge"], "seed": trak["seed"], "chunk_size": trak["chunk_size"], "progress": False},
                 lambda: [trainer.fit(full, s) for s in trainer.seeds[:trak["models"]]]))
    runs.append(("random scores", ("-", "none"), "random-scores", {"seed": 0}, lambda: None))
    for label, described, name, method_settings, model in runs:
        start = time.perf_counter()
        methods[label] = create_attributor(name, **method_settings).fit(train, model()).score(generated)
        settings[label] = described
        seconds[label] = time.perf_counter() - start
    return methods, settings, seconds


def chosen_methods(methods: Mapping[str, Attribution], names: Sequence[str]) -> dict[str, Attribution]:
    """The methods called ``names``, in that order (e.g. a profile's ``removal.methods``).

    Raises:
        KeyError: for a name no method has; the message names it and lists the methods.
    """
    for name in names:
        if name not in methods:
            raise KeyError(f"no attribution method named {name!r}; the study has: {', '.join(methods)}")
    return {name: methods[name] for name in names}
