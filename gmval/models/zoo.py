"""The named generators the experiments need: trained once, cached, sampled, and scored.

::

    from gmval.models import zoo
    model = zoo.get_generator("mnist-vae", "default")        # trains on first use, then loads
    fake = zoo.sample("mnist-gan", n=100, seed=0)             # ImageSet, labels = classifier's
    zoo.quality("mnist-diffusion")                            # accuracy and FD, measured
    zoo.training_data("noisy-mnist-gan").noisy_ids            # what the generator was trained on
    zoo.sample("fashion-mnist-gan", n=100, seed=0, label=0)   # only images of one class
    zoo.class_halves("fashion-mnist-gan")                     # X_v1 (never seen), X_v2 (trained on)
    zoo.train_all("default")                                  # every generator the experiments use

Names are ``<dataset>-<kind>`` for dataset in mnist, fashion-mnist, cifar10 and kind in
vae, gan, diffusion, plus ``motivation-gan`` and ``motivation-diffusion`` (the paper's
Sec. 2.1.2 experiment: trained only on one half X_v2 of one class of the profile's CIFAR-10
stand-in, long enough to memorise it, as the paper's BigGAN on one half of a class is) and
``noisy-mnist-gan`` (MNIST with Gaussian-noise images appended, the paper's C3).
:func:`generator_names` lists the ones a profile's experiments use. A profile may instead
value a model of the whole split whose training cap left each class's other half unseen
(``ci``): :func:`class_halves` then finds X_v1 among the images the cap left out.

Everything is keyed by its parameters under the data folder (:mod:`gmval.paths`):
checkpoints in ``models/<name>-<hash>/`` (hash of architecture, training settings and the
training set's fingerprint), samples and reports in ``cache/``. A changed setting
trains a new model; an interrupted training resumes. A model whose weights the project
committed (:mod:`gmval.models.pretrained`, same key) is installed from them instead of trained.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmval import paths, verdicts
from gmval.data import add_gaussian_noise, load_dataset, split_class, subsample
from gmval.images import ImageSet, concat
from gmval.models import pretrained
from gmval.models.classifier import Classifier, train_classifier
from gmval.models.fid import blur, confident_mask, frechet_distance
from gmval.models.generator import Generator
from gmval.models.kinds import KINDS, model_kind, num_classes
from gmval.models.training import TrainConfig, default_device, train_precision
from gmval.parallel import resolve_workers, run_jobs
from gmval.precision import resolve_precision
from gmval.profiles import Profile, profile_settings
from gmval.store import ArtifactStore, artefact_key

LABELLED_DATASETS = ("mnist", "fashion-mnist", "cifar10")
#: Seed of the samples that :func:`quality` scores (apart from the experiments' own seeds).
QUALITY_SEED = 1_000_003
#: Draws per kept image when an unconditional generator is sampled for one class.
CLASS_OVERSAMPLE = 20


@dataclass(frozen=True)
class GeneratorSpec:
    """What a zoo name stands for.

    Attributes:
        kind: ``"vae"``, ``"gan"`` or ``"diffusion"``.
        dataset: the dataset, or None for the profile's CIFAR-10 stand-in.
        curation: ``"full"`` (the training split), ``"half-class"`` or ``"noisy"``.
        description: one line for listings.
    """

    kind: str
    dataset: str | None
    curation: str
    description: str


def _specs() -> dict[str, GeneratorSpec]:
    specs = {f"{ds}-{kind}": GeneratorSpec(kind, ds, "full", f"{kind} trained on the {ds} training split")
             for ds in LABELLED_DATASETS for kind in KINDS}
    for kind in ("gan", "diffusion"):
        specs[f"motivation-{kind}"] = GeneratorSpec(
            kind, None, "half-class",
            f"{kind} trained only on one half of one class of the CIFAR-10 stand-in (Sec. 2.1.2)")
    specs["noisy-mnist-gan"] = GeneratorSpec(
        "gan", "mnist", "noisy", "GAN trained on MNIST plus Gaussian-noise images (out-of-distribution test, C3)")
    return specs


GENERATORS: dict[str, GeneratorSpec] = _specs()


@dataclass(frozen=True)
class TrainingData:
    """The images a zoo generator is trained on, with what its experiment needs to know.

    Attributes:
        train: the training set; its ids are the ones valuations refer to.
        noisy_ids: ``noisy-mnist-gan`` only: ids of the noise-corrupted images in ``train``.
    """

    train: ImageSet
    noisy_ids: np.ndarray | None = None


def _models(profile: Profile) -> dict[str, Any]:
    return profile_settings(profile)["models"]


def _dirs(root: Path | None) -> tuple[Path, Path]:
    return (paths.MODELS, paths.CACHE) if root is None else (Path(root) / "models", Path(root) / "cache")


def generator_names(profile: Profile = "default") -> list[str]:
    """The generators the paper's experiments use under ``profile``, MNIST first.

    The motivation experiment's are the profile's ``motivation.generators``, listed once when
    they are among the others.
    """
    settings = profile_settings(profile)
    stand_in = settings["models"]["cifar10_stand_in"]
    names = [f"mnist-{k}" for k in KINDS] + [f"{stand_in}-{k}" for k in KINDS]
    motivation = settings["motivation"]["generators"]
    return names + [n for n in motivation if n not in names] + ["noisy-mnist-gan"]


@functools.lru_cache(maxsize=8)
def load_split(dataset: str, split: str) -> ImageSet:
    """A dataset split, loaded once per process."""
    return load_dataset(dataset, split=split)


def _capped(data: ImageSet, cap: int | None, seed: int) -> ImageSet:
    return data if cap is None or cap >= len(data) else subsample(data, cap, seed=seed)


def _spec(name: str) -> GeneratorSpec:
    try:
        return GENERATORS[name]
    except KeyError:
        raise KeyError(f"unknown generator {name!r}; available: {', '.join(sorted(GENERATORS))}") from None


def dataset_of(name: str, profile: Profile = "default") -> str:
    """The dataset generator ``name`` is trained on under ``profile``."""
    return _spec(name).dataset or _models(profile)["cifar10_stand_in"]


def _split_half_class(base: ImageSet, m: Mapping[str, Any]) -> tuple[ImageSet, ImageSet]:
    """(X_v1, X_v2) of a ``half-class`` generator's capped split: the half it never sees, and the half it is
    trained on."""
    return split_class(base, m["half_class"]["label"], seed=m["seed"])


def training_data(name: str, profile: Profile = "default") -> TrainingData:
    """The training set of generator ``name`` (deterministic given the profile's seed)."""
    spec, m = _spec(name), _models(profile)
    base = _capped(load_split(dataset_of(name, profile), "train"), m["train_images"], m["seed"])
    if spec.curation == "half-class":
        _, trained = _split_half_class(base, m)
        return TrainingData(train=trained.subset(np.arange(len(trained)), name=f"{base.name}-half-class"))
    if spec.curation == "noisy":
        train, noisy_ids = add_gaussian_noise(base, n=m["noisy"]["n"], std=m["noisy"]["std"], seed=m["seed"])
        return TrainingData(train=train, noisy_ids=noisy_ids)
    return TrainingData(train=base)


def class_halves(name: str, profile: Profile = "default") -> tuple[ImageSet, ImageSet]:
    """The motivation experiment's halves of class ``models.half_class.label`` (Sec. 2.1.2).

    Both are random, disjoint and equally large sets of the class's training-split images,
    drawn from the same distribution; only X_v2 is in the generator's training set.

    * A ``motivation-*`` generator was trained on X_v2, one half of the class, alone: X_v1
      is the other half.
    * A generator of the whole split under a cap (``models.train_images``) was trained on a
      stratified random subsample, so the class images the cap left out are distributed as
      the ones it kept: X_v2 is the class's images in the training set, X_v1 as many of the
      left-out ones (both cut to the smaller count).

    Returns:
        (X_v1, never trained on; X_v2, trained on), with their training-split ids.

    Raises:
        ValueError: for a generator whose training set is curated otherwise (noisy), or whose
            training set holds every image of the class (no cap: use a ``motivation-*`` one).
    """
    spec, m = _spec(name), _models(profile)
    label, seed = m["half_class"]["label"], m["seed"]
    split = load_split(dataset_of(name, profile), "train")
    if spec.curation == "half-class":
        return _split_half_class(_capped(split, m["train_images"], seed), m)
    if spec.curation != "full":
        raise ValueError(f"{name}: class_halves needs a generator of the plain training split, "
                         f"not a {spec.curation!r} one")
    assert split.labels is not None
    trained = np.isin(split.ids, training_data(name, profile).train.ids)
    of_class = split.labels == label
    seen, unseen = np.flatnonzero(of_class & trained), np.flatnonzero(of_class & ~trained)
    n = min(len(seen), len(unseen))
    if n == 0:
        raise ValueError(f"{name}: its training set holds {len(seen)} of the {len(seen) + len(unseen)} class-{label} "
                         f"images of {split.name}, so no unseen half is left; train_images caps nothing here, "
                         "use motivation-gan or motivation-diffusion, which are trained on one half of the class")
    rng = np.random.default_rng(seed)
    unseen, seen = (np.sort(rng.choice(index, size=n, replace=False)) for index in (unseen, seen))
    tag = f"{split.name}-class{label}"
    return split.subset(unseen, name=f"{tag}-unseen"), split.subset(seen, name=f"{tag}-seen")


def single_class(name: str, profile: Profile = "default") -> int | None:
    """The one class generator ``name`` was trained on (the motivation pair's ``half_class.label``), else None."""
    return _models(profile)["half_class"]["label"] if _spec(name).curation == "half-class" else None


def quality_label(name: str, profile: Profile = "default") -> int | None:
    """The class a conditional generator of one class is asked for when its quality is measured, else None
    (a conditional generator of every class draws each class in turn; an unconditional one is not asked)."""
    return single_class(name, profile) if model_kind(_spec(name).kind).conditional else None


def reference_images(name: str, profile: Profile = "default") -> ImageSet:
    """Held-out real images a generator's samples are compared with: the test split (capped), of its
    one class for a generator of one class (:func:`single_class`)."""
    m = _models(profile)
    test = load_split(dataset_of(name, profile), "test")
    label = single_class(name, profile)
    if label is not None:
        assert test.labels is not None
        test = test.subset(np.flatnonzero(test.labels == label), name=f"{test.name}-class{label}")
    return _capped(test, m["test_images"], m["seed"])


def _train_config(settings: Mapping[str, Any], m: Mapping[str, Any], keep_every: int = 0) -> TrainConfig:
    return TrainConfig(epochs=settings["epochs"], batch_size=settings["batch_size"], seed=m["seed"],
                       checkpoint_seconds=m["checkpoint_seconds"], keep_every=keep_every,
                       precision=train_precision(settings))


@dataclass(frozen=True)
class _Plan:
    """Everything needed to train or find generator ``name`` under one profile."""

    name: str
    kind: str
    dataset: str
    data: TrainingData
    config: Any
    train_config: TrainConfig
    hyper: dict[str, Any]
    folder: Path


def kind_settings(name: str, profile: Profile) -> dict[str, Any]:
    """The ``models.<kind>`` settings of generator ``name``, resolved for it.

    A setting given per dataset (a map such as ``beta: {"mnist": 4.0, ...}``) becomes the value
    for the generator's dataset; a ``half-class`` generator trains for ``half_class.epochs`` and takes
    the settings of ``half_class.overrides.<kind>`` over the others.
    """
    spec, m = _spec(name), _models(profile)
    dataset = dataset_of(name, profile)
    settings = {key: value[dataset] if isinstance(value, Mapping) else value for key, value in m[spec.kind].items()}
    if spec.curation == "half-class":
        overrides = m["half_class"]["overrides"][spec.kind]
        unknown = sorted(set(overrides) - set(settings))
        if unknown:
            raise KeyError(f"models.half_class.overrides.{spec.kind}: {unknown} are not models.{spec.kind} settings "
                           f"({sorted(settings)})")
        settings.update(overrides)
        settings["epochs"] = m["half_class"]["epochs"][spec.kind]
    return settings


def _plan(name: str, profile: Profile, root: Path | None) -> _Plan:
    spec, m = _spec(name), _models(profile)
    kind = model_kind(spec.kind)
    data = training_data(name, profile)
    settings = kind_settings(name, profile)
    config = kind.config(settings, data.train)
    hyper = kind.hyper(settings)
    train_config = _train_config(settings, m, keep_every=settings["keep_every"])
    key_params = {"kind": spec.kind, "recipe": kind.recipe(), "config": asdict(config), "hyper": hyper,
                  "train": {k: v for k, v in asdict(train_config).items() if k != "checkpoint_seconds"},
                  "data": data.train.fingerprint()}
    folder = _dirs(root)[0] / artefact_key(name, key_params)
    return _Plan(name, spec.kind, dataset_of(name, profile), data, config, train_config, hyper, folder)


def generator_folder(name: str, profile: Profile = "default", root: Path | None = None) -> Path:
    """Where generator ``name``'s checkpoint and snapshots live (whether or not it is trained yet)."""
    return _plan(name, profile, root).folder


def get_generator(name: str, profile: Profile = "default", root: Path | None = None,
                  progress: bool = True) -> Generator:
    """The trained generator ``name``: loaded from its checkpoint, trained (or resumed) first if needed.

    Args:
        name: a key of :data:`GENERATORS`.
        profile: a profile name or a profile dict.
        root: data folder holding ``models/`` and ``cache/`` (default :data:`gmval.paths.DATA`).
        progress: show tqdm bars.
    """
    plan = _plan(name, profile, root)
    pretrained.install(plan.folder)
    return train_plan(plan, profile, progress=progress)


def train_plan(plan: _Plan, profile: Profile, folder: Path | None = None, train_config: TrainConfig | None = None,
               progress: bool = True) -> Generator:
    """Train (or resume, or load) ``plan``'s model; returns the model that samples.

    Args:
        folder / train_config: run elsewhere or otherwise than the plan says (a training curve's
            run keeps a snapshot per epoch, :mod:`gmval.models.curve`).
    """
    kind = model_kind(plan.kind)
    return kind.train(plan.data.train, folder or plan.folder, plan.config, train_config or plan.train_config,
                      plan.hyper, kind.sampling(kind_settings(plan.name, profile)), params={"name": plan.name},
                      progress=progress)


def build_sampler(name: str, profile: Profile, run: Mapping[str, Any]) -> Generator:
    """An untrained sampling model of generator ``name`` with the architecture of run parameters ``run``."""
    kind = model_kind(_spec(name).kind)
    return kind.sampler(run["config"], kind.sampling(kind_settings(name, profile)))


def _classifier_plan(dataset: str, profile: Profile, root: Path | None
                     ) -> tuple[ImageSet, TrainConfig, dict[str, Any], Path]:
    m = _models(profile)
    settings = m["classifier"]
    train = _capped(load_split(dataset, "train"), m["train_images"], m["seed"])
    train_config = _train_config(settings, m)
    key_params = {"width": settings["width"], "lr": settings["lr"], "data": train.fingerprint(),
                  "train": {k: v for k, v in asdict(train_config).items() if k != "checkpoint_seconds"}}
    return train, train_config, settings, _dirs(root)[0] / artefact_key(f"{dataset}-classifier", key_params)


def get_classifier(dataset: str, profile: Profile = "default", root: Path | None = None,
                   progress: bool = True) -> tuple[Classifier, dict[str, Any]]:
    """The classifier of ``dataset`` (trained on its training split) and its report.

    Returns:
        (classifier in eval mode, ``{"dataset", "train_images", "test_images", "test_accuracy"}``),
        accuracy measured on the profile's held-out test images.
    """
    m = _models(profile)
    train, train_config, settings, folder = _classifier_plan(dataset, profile, root)
    model, _ = train_classifier(train, folder, train_config, width=settings["width"], lr=settings["lr"],
                                params={"dataset": dataset}, progress=progress)
    test = _capped(load_split(dataset, "test"), m["test_images"], m["seed"])
    store = ArtifactStore(_dirs(root)[1] / "reports")
    params = {"classifier": folder.name, "test": test.fingerprint()}
    report = store.load("classifier", params)
    if report is None:
        summary = {"dataset": dataset, "train_images": len(train), "test_images": len(test),
                   "test_accuracy": model.accuracy(test)}
        report = store.save("classifier", params, arrays={}, extra=lambda d: _write_json(d / "report.json", summary))
    return model, _read_json(report.file("report.json"))


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=1, sort_keys=True))


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def sample(name: str, n: int, seed: int, profile: Profile = "default", root: Path | None = None,
           progress: bool = True, label: int | None = None) -> ImageSet:
    """``n`` images of generator ``name`` drawn from ``seed``, cached by all their parameters.

    Conditional generators get balanced classes (image i has class i mod #classes), which
    are their labels; an unconditional generator's images are labelled by the dataset's
    classifier (:func:`get_classifier`).

    Args:
        label: draw images of this class: a conditional generator is asked for it; of an
            unconditional one, the ``n`` of ``n *`` :data:`CLASS_OVERSAMPLE` draws that the
            classifier finds most likely to be of the class are kept (labels stay the
            classifier's predictions, so a generator that rarely draws the class shows it).

    Returns:
        An ImageSet with ids 0..n-1, the labels above and the dataset's class names.

    Raises:
        ValueError: if ``label`` is not a class of the dataset.
    """
    plan = _plan(name, profile, root)
    m = _models(profile)
    pretrained.install(plan.folder)
    params: dict[str, Any] = {"generator": plan.folder.name, "weights": pretrained.weights_source(plan.folder),
                              "n": n, "seed": seed}
    if label is not None:
        classes = num_classes(plan.data.train)
        if not 0 <= label < classes:
            raise ValueError(f"{name}: label {label} is not a class of {plan.dataset} (0..{classes - 1})")
        params["label"] = {"class": int(label), "oversample": CLASS_OVERSAMPLE}
    kind = model_kind(plan.kind)
    if kind.conditional:
        params["sampling"] = kind.sampling(kind_settings(name, profile))
        params["sampling"]["precision"] = resolve_precision(m["diffusion"]["sampling_precision"],
                                                            default_device())
    else:
        params["classifier"] = _classifier_plan(plan.dataset, profile, root)[3].name
    store = ArtifactStore(_dirs(root)[1] / "samples")
    stage = f"{name}-samples"
    art = store.load(stage, params)
    if art is None:
        images, labels = draw(get_generator(name, profile, root, progress), n, seed, profile, plan.dataset, root,
                              progress, label)
        art = store.save(stage, params, arrays={"images": images.numpy(), "labels": labels})
    return ImageSet(images=torch.from_numpy(art.array("images", mmap=False)), ids=np.arange(n),
                    labels=art.array("labels", mmap=False), name=f"{name}-seed{seed}",
                    classes=plan.data.train.classes)


def sample_with_poor(name: str, n: int, seed: int, poor: int, noise_std: float, profile: Profile = "default",
                     root: Path | None = None, progress: bool = True) -> tuple[ImageSet, np.ndarray]:
    """``n`` samples of ``name``, then ``poor`` further samples corrupted by Gaussian noise of ``noise_std``.

    The corrupted samples are the low-quality outputs of the paper's Fig. 9 scenario: a
    generator that has learnt its noisy training images draws some noisy images, whose
    contributors are those training images; quality calibration is what should keep them from
    gaining value. A generator trained on a few noisy images among many rarely draws one, so
    they are made here with the training set's own corruption (:func:`~gmval.data.add_gaussian_noise`).

    Returns:
        The generated set (ids 0..n+poor-1, the poor ones last, seeds ``seed`` and ``seed + 1``)
        and its (n + poor,) mask of poor samples.
    """
    good = sample(name, n, seed, profile, root, progress)
    if not poor:
        return good, np.zeros(n, bool)
    drawn = sample(name, poor, seed + 1, profile, root, progress)
    noisy, _ = add_gaussian_noise(drawn, n=poor, std=noise_std, seed=seed + 1, mode="replace")
    bad = ImageSet(images=noisy.images, ids=noisy.ids + n, labels=noisy.labels, name=f"{drawn.name}-noisy",
                   classes=noisy.classes)
    return concat([good, bad], name=f"{good.name}+{poor}poor"), np.arange(n + poor) >= n


def draw(model: Generator, n: int, seed: int, profile: Profile, dataset: str, root: Path | None = None,
         progress: bool = False, label: int | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` images of ``model`` from ``seed`` and their labels, as :func:`sample` draws them (uncached)."""
    m = _models(profile)
    if model.conditional:
        labels = np.full(n, label) if label is not None else np.arange(n) % model.num_classes
        precision = resolve_precision(m["diffusion"]["sampling_precision"], default_device())
        images = model.generate(n, seed=seed, labels=labels, batch_size=m["sample_batch"], progress=progress,
                                precision=precision)
        return images, labels
    return _sample_unconditional(model, dataset, n, seed, profile, root, progress, label)


def _sample_unconditional(model: Generator, dataset: str, n: int, seed: int, profile: Profile,
                          root: Path | None, progress: bool, label: int | None) -> tuple[torch.Tensor, np.ndarray]:
    classifier = get_classifier(dataset, profile, root, progress)[0]
    batch = _models(profile)["sample_batch"]
    if label is None:
        images = model.generate(n, seed=seed, batch_size=batch, progress=progress)
        return images, classifier.predict(images)
    # A ranking, not a filter: the n draws most likely to be of the class always exist, even
    # for a generator that rarely draws it; their labels stay the classifier's, so impurity shows.
    pool = model.generate(n * CLASS_OVERSAMPLE, seed=seed, batch_size=batch, progress=progress)
    logits = torch.from_numpy(classifier.logits(pool))
    score = torch.log_softmax(logits, dim=1)[:, label].numpy()
    best = np.sort(np.argsort(-score, kind="stable")[:n])
    return pool[torch.from_numpy(best)], logits[best].argmax(1).numpy().astype(np.int64)


#: Gaussian blurs (sigma in pixels) of real images whose FD is reported beside a generator's, so
#: that a reader can calibrate what an FD means in this feature space.
BLUR_SIGMAS = (0.5, 1.0, 2.0)
#: Max-softmax at which the classifier's label of a sample counts as confident.
CONFIDENT = verdicts.GATE.confident_softmax


def sample_quality(fake: ImageSet, dataset: str, reference: ImageSet, real_train: ImageSet, classifier: Classifier,
                   conditional: bool, label: int | None = None) -> dict[str, Any]:
    """Quality of generated images ``fake`` measured with ``dataset``'s classifier (see :func:`quality`);
    ``label``: the one class of a generator of one class."""
    logits = classifier.logits(fake)
    predicted = logits.argmax(1)
    histogram = np.bincount(predicted, minlength=classifier.config.num_classes)
    real_features = classifier.embed(reference)  # every distance's reference: embedded once
    real_logits = classifier.logits(real_train)
    real_predicted = real_logits.argmax(1)
    report: dict[str, Any] = {
        "dataset": dataset, "samples": len(fake), "real_images": len(reference),
        "fd": frechet_distance(classifier.embed(fake), real_features),
        "fd_real": frechet_distance(classifier.embed(real_train), real_features),
        "class_histogram": histogram.tolist(),
        "class_count_ratio": verdicts.class_count_ratio(histogram),
        "confident_share": float(confident_mask(logits, CONFIDENT).mean()),
        "confident_share_real": float(confident_mask(real_logits, CONFIDENT).mean()),
        "class_count_ratio_real": verdicts.class_count_ratio(
            np.bincount(real_predicted, minlength=classifier.config.num_classes)),
    }
    for sigma in BLUR_SIGMAS:
        blurred = blur(real_train.images, sigma)
        report[f"fd_blur_{sigma:g}"] = frechet_distance(classifier.embed(blurred), real_features)
    if label is not None:
        report.update({"class": label, "class_accuracy": float(np.mean(predicted == label)),
                       "class_accuracy_real": float(np.mean(real_predicted == label))})
    elif conditional:
        assert fake.labels is not None
        report["class_accuracy"] = float(np.mean(predicted == fake.labels))
    return report


def quality(name: str, profile: Profile = "default", root: Path | None = None,
            progress: bool = True) -> dict[str, Any]:
    """Measured sample quality of generator ``name`` (cached): the inputs of :func:`gmval.verdicts.gate_failures`.

    Scores ``quality_samples`` images (seed :data:`QUALITY_SEED`) with the dataset's classifier:

    * ``fd``: Fréchet distance to :func:`reference_images` in the classifier's feature space;
      ``fd_real``: the same for as many real training images, the floor a perfect
      generator would reach at this sample size; ``fd_blur_<sigma>``: the same for those real
      images Gaussian-blurred (:data:`BLUR_SIGMAS`), to calibrate what an FD means.
    * ``class_accuracy`` (conditional generators): fraction classified as their conditioning class;
      for a generator of one class (:func:`single_class`; a conditional one is asked for it), the
      fraction classified as that class, and ``class_accuracy_real`` the same for its real images.
    * ``class_histogram``: predicted class counts (mode collapse shows here);
      ``class_count_ratio``: its largest over its smallest count.
    * ``confident_share``: fraction whose classifier max-softmax is at least :data:`CONFIDENT`;
      ``confident_share_real`` and ``class_count_ratio_real``: the same for the real training
      images, what a generator that matched the data would score against the gate.
    * ``classifier_test_accuracy``: how far the classifier's labels can be trusted.
    """
    m = _models(profile)
    plan = _plan(name, profile, root)
    label = single_class(name, profile)
    fake = sample(name, m["quality_samples"], QUALITY_SEED, profile, root, progress,
                  label=quality_label(name, profile))
    classifier, classifier_report = get_classifier(plan.dataset, profile, root, progress)
    real = reference_images(name, profile)
    real_train = _capped(plan.data.train, len(fake), m["seed"])
    params = {"samples": fake.fingerprint(), "real": real.fingerprint(), "real_train": real_train.fingerprint(),
              "classifier": _classifier_plan(plan.dataset, profile, root)[3].name, "blur": list(BLUR_SIGMAS),
              "confident": CONFIDENT, "real_labels": True}
    store = ArtifactStore(_dirs(root)[1] / "reports")
    art = store.load(f"{name}-quality", params)
    if art is None:
        report = {"generator": name, **sample_quality(fake, plan.dataset, real, real_train, classifier,
                                                      conditional=model_kind(plan.kind).conditional, label=label),
                  "classifier_test_accuracy": classifier_report["test_accuracy"]}
        art = store.save(f"{name}-quality", params, extra=lambda d: _write_json(d / "report.json", report))
    return _read_json(art.file("report.json"))


# Longest trainings first, so that a pool does not end on one long job alone. Per step on one
# CPU thread: GAN ~200 ms (bf16), diffusion ~500 ms but half the steps, VAE ~30 ms.
_COST_ORDER = ("gan", "diffusion", "vae")


def _classifier_job(dataset: str, profile: Profile, root: Path | None) -> dict[str, Any]:
    return get_classifier(dataset, profile, root, progress=False)[1]


def train_all(profile: Profile = "default", root: Path | None = None, progress: bool = True,
              workers: int | str | None = None) -> list[dict[str, Any]]:
    """Train (or load) every classifier and every generator of :func:`generator_names`; their quality reports.

    Classifiers come first (every generator's report needs its dataset's one, and two
    workers must not train one classifier into the same folder), then the generators, each
    trained, sampled and scored by one worker.

    Args:
        profile: a profile name or a profile dict.
        root: data folder holding ``models/`` and ``cache/`` (default :data:`gmval.paths.DATA`).
        progress: show tqdm bars (only without worker processes).
        workers: processes training side by side (:mod:`gmval.parallel`); default the
            profile's ``models.workers``.

    Returns:
        The :func:`quality` report of each generator, in :func:`generator_names` order.
    """
    count = resolve_workers(_models(profile)["workers"] if workers is None else workers)
    names = generator_names(profile)
    if count == 1:
        return [quality(name, profile, root, progress) for name in names]
    datasets = sorted({dataset_of(name, profile) for name in names})
    run_jobs(_classifier_job, [(ds, profile, root) for ds in datasets], count,
             describe=lambda i: f"training the {datasets[i]} classifier")
    order = sorted(names, key=lambda n: _COST_ORDER.index(_spec(n).kind))
    reports = run_jobs(quality, [(name, profile, root, False) for name in order], count,
                       describe=lambda i: f"training and scoring {order[i]}")
    by_name = dict(zip(order, reports, strict=True))
    return [by_name[name] for name in names]
