"""Counterfactual validation of attributions: the linear datamodeling score (LDS) and top-k removal.

C1-C4 (the paper's criteria) check that contributors *look* right: same class, same
attributes, noise ranked low, fast. None of them asks whether the model actually *needed*
those images. This package asks exactly that, by retraining:

1. **LDS** (D-TRAK, ICLR 2024; see ``shared/baselines.md`` Sec. 3). Draw random half-size
   subsets S_1..S_s of a small training set, retrain the generator on each, and measure the
   model's output on every generated sample j. An attribution method predicts that output
   as a sum of per-image scores, Σ_{i∈S} τ_j(i). The LDS of sample j is the Spearman
   correlation, over the subsets, between prediction and measurement; the LDS of a
   method is its mean over the generated samples.
2. **Top-k removal**: drop a sample's k highest-scored training images, retrain, and see how
   much the sample's loss rises, against dropping k random images.

Sign convention (everything here follows it, as :mod:`gmval.attribution` does): a **higher
score means "this training image helps the model produce generated sample j"**, so removing
it should *raise* sample j's loss. The measured output is therefore the **negative** loss, so
that a faithful method has a *positive* LDS. D-TRAK writes the same thing as "predicted loss =
−Σ τ" against the loss.

Modules:

* :mod:`~gmval.counterfactual.subsets`: the small training set and its random subsets;
* :mod:`~gmval.counterfactual.losses`: the output each retrained model is measured on (its
  training loss on the generated samples, noise fixed);
* :mod:`~gmval.counterfactual.retraining`: the :class:`Recipe` of one model kind
  (:mod:`gmval.models.kinds`: the β-VAE or the class-conditional diffusion model) and the
  :class:`SubsetTrainer` that retrains it on subsets, cached, on worker processes;
* :mod:`~gmval.counterfactual.methods`: the attribution methods a profile entry compares;
* :mod:`~gmval.counterfactual.metrics`: the LDS with its bootstrap interval, and the
  seed-to-seed agreement that bounds it;
* :mod:`~gmval.counterfactual.removal`: top-k removal.

Deviations from D-TRAK, all deliberate and reported:

* Generators on a stratified MNIST subset instead of a diffusion model on CIFAR-2; the
  diffusion loss averages a few timesteps rather than all 1000.
* The bootstrap interval resamples subsets and generated samples jointly, and a sample with a
  constant prediction counts as 0 (:mod:`~gmval.counterfactual.metrics`).
* Fewer subsets and training seeds than D-TRAK's 64 × 3 outside the ``paper`` profile.

::

    trainer = SubsetTrainer.from_profile("default")        # key="counterfactual_diffusion" for part 2
    full = trainer.fit(trainer.full_mask())
    generated = trainer.generate(full, 100, seed=1)
    masks = random_subsets(len(trainer.train), 32, seed=0)
    losses = trainer.subset_losses(masks, generated, draws=32, seed=0)      # (32, 100)
    attribution = create_attributor("pixel").fit(trainer.train).score(generated)
    print(lds(attribution.matrix(), masks, losses))
"""

from gmval.counterfactual.losses import diffusion_sample_loss, vae_sample_loss
from gmval.counterfactual.methods import chosen_methods, gmvaluator_attributions, study_attributions
from gmval.counterfactual.metrics import LDSResult, lds, lds_table, seed_agreement
from gmval.counterfactual.removal import removal_summary, retrain_without_topk
from gmval.counterfactual.retraining import Recipe, SubsetTrainer, recipe_from_settings
from gmval.counterfactual.subsets import mask_digest, random_subsets, training_set

__all__ = ["LDSResult", "Recipe", "SubsetTrainer", "chosen_methods", "diffusion_sample_loss",
           "gmvaluator_attributions", "lds", "lds_table", "mask_digest", "random_subsets", "recipe_from_settings",
           "removal_summary", "retrain_without_topk", "seed_agreement", "study_attributions", "training_set",
           "vae_sample_loss"]
