"""Adaptation parts: CORAL-exp loss, sample re-weighting, the label pool rule and the weight map."""

from __future__ import annotations

import torch
from conftest import hazy_scene, scene

from clearsight.adapt import (
    LabelPool,
    PoolEntry,
    RFFWeightLearner,
    block_map,
    clear_probability,
    coral_exp_loss,
    decorrelation_loss,
    density_ratio_weights,
    random_fourier_features,
    sharpness_quality,
    strong_augment,
    weight_map,
)


def test_coral_exp_loss_zero_for_identical_and_grows_with_distance():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(64, 6, generator=g)
    assert float(coral_exp_loss(f, f)) == 0.0
    assert float(coral_exp_loss(f, f + 3.0)) < 1e-6  # a mean shift leaves the covariance unchanged
    losses = [float(coral_exp_loss(f, f * s)) for s in (1.2, 2.0, 4.0)]
    assert 0 < losses[0] < losses[1] < losses[2] < 1
    maps = torch.randn(2, 6, 5, 5, generator=g)
    assert float(coral_exp_loss(maps, maps)) == 0.0


def _correlated(n: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 1, generator=g)
    return torch.cat([a, a + 0.3 * torch.randn(n, 1, generator=g), torch.randn(n, 2, generator=g)], 1)


def test_sample_weights_are_a_distribution_that_decorrelates():
    z = _correlated()
    rff = random_fourier_features(z, 1, torch.Generator().manual_seed(0))
    uniform = torch.full((z.shape[0],), 1 / z.shape[0])
    # the RFF learner minimises the cross-covariance of the random Fourier features (non-linear dependence);
    # the density-ratio weights target the features themselves (linear cross-covariance)
    for w, feats in ((RFFWeightLearner(4, bank=0)(z), rff), (density_ratio_weights(z), None)):
        assert w.shape == (z.shape[0],) and (w >= 0).all()
        assert abs(float(w.sum()) - 1) < 1e-5
        base = float(decorrelation_loss(z, uniform, feats))
        assert float(decorrelation_loss(z, w, feats)) < 0.5 * base


def test_rff_learner_memory_bank_runs_across_batches():
    learner = RFFWeightLearner(4, bank=32)
    for seed in range(3):
        w = learner(_correlated(32, seed))
        assert torch.isfinite(w).all() and abs(float(w.sum()) - 1) < 1e-5
    assert int(learner.updates) == 3


def test_label_pool_replaces_only_when_both_scores_are_not_worse():
    pool = LabelPool()

    def entry(q, c, v=0.0):
        return PoolEntry(torch.full((3, 2, 2), v), q, c, torch.ones(1, 2, 2))

    used, taken = pool.offer("a", entry(0.5, 0.5, 1))
    assert taken and float(used.label[0, 0, 0]) == 1
    for q, c in [(0.6, 0.4), (0.4, 0.6), (0.4, 0.4)]:  # one score worse: keep the stored label
        used, taken = pool.offer("a", entry(q, c, 2))
        assert not taken and float(used.label[0, 0, 0]) == 1
    used, taken = pool.offer("a", entry(0.5, 0.7, 3))  # equal and better: replace
    assert taken and float(pool.entries["a"].label[0, 0, 0]) == 3
    pool2 = LabelPool()
    pool2.load_state_dict(pool.state_dict())
    assert pool2.entries["a"].quality == 0.5 and len(pool2) == 1


def test_weight_map_prefers_clean_blocks_of_a_composite():
    clean = torch.from_numpy(scene(64, 128, seed=1)).permute(2, 0, 1)[None]
    hazy = torch.from_numpy(hazy_scene(64, 128, seed=1, beta=2.5)[0]).permute(2, 0, 1)[None]
    comp = torch.cat([clean[..., :64], hazy[..., 64:]], -1)  # left half clean, right half hazy
    w = weight_map(block_map(comp, sharpness_quality, 32), block_map(comp, clear_probability, 32))
    assert w.shape == (1, 1, 64, 128) and 0 <= float(w.min()) and float(w.max()) <= 1
    assert float(w[..., :48].mean()) > float(w[..., 80:].mean()) + 0.1


def test_strong_augment_keeps_shape_and_range_and_is_seeded():
    x = torch.rand(2, 3, 24, 24)
    a = strong_augment(x, torch.Generator().manual_seed(1))
    b = strong_augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and 0 <= float(a.min()) and float(a.max()) <= 1
