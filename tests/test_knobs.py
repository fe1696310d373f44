"`p_sample` (each sample of an augmented batch mixed with that probability) and `skip_first_epochs` (a warm-up without augmentation)."
import math
from types import SimpleNamespace
import pytest, torch
import torch.nn.functional as F
from fastai.vision.all import Callback, TensorBase, CrossEntropyLossFlat
from mixaug_fastai.all import MixUp, CutMix, MixUpCutMix, Cutout
from conftest import quick_learner

CALLBACKS = {'MixUp': lambda **kw: MixUp(1., **kw), 'CutMix': lambda **kw: CutMix(1., per_sample=True, **kw),
             'MixUpCutMix': lambda **kw: MixUpCutMix(1., 1., **kw), 'Cutout': lambda **kw: Cutout(length=.5, **kw)}

def run_batches(cb, n_batches, bs=8, size=8):
    "Run `cb.before_batch` on `n_batches` distinct random batches in one epoch of a stand-in learner; yields (before, after, cb.draw)."
    cb.learn = SimpleNamespace(epoch=0, n_epoch=1, cbs=[cb], loss_func=CrossEntropyLossFlat())
    cb.before_fit()
    g = torch.Generator().manual_seed(0)
    for _ in range(n_batches):
        images = torch.rand(bs, 3, size, size, generator=g) + .1  # never 0, so an erased pixel shows
        cb.learn.xb, cb.learn.yb = (images.clone(),), (torch.randint(0, 4, (bs,), generator=g),)
        cb.before_batch()
        yield images, cb.learn.xb[0], cb.draw

def five_sigma(count, n, p):
    "Whether `count` successes in `n` independent trials lie within 5 standard deviations of p (false failure about 6e-7; the draws are seeded)."
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p))

@pytest.mark.parametrize('name', CALLBACKS)
def test_each_gate_draws_at_its_own_rate(name):
    "p_batch gates batches, p_sample the samples of an augmented batch: each count within a binomial bound of its rate, and far from the other gate's."
    p_batch, p_sample, n_batches, bs = .5, .3, 600, 8
    augmented_batches = augmented_samples = 0
    for before, after, draw in run_batches(CALLBACKS[name](p_batch=p_batch, p_sample=p_sample, seed=1), n_batches, bs):
        if draw is None: assert torch.equal(before, after); continue
        augmented_batches += 1
        changed = (before != after).flatten(1).any(1)
        augmented_samples += int(changed.sum())
    assert five_sigma(augmented_batches, n_batches, p_batch), augmented_batches
    assert five_sigma(augmented_samples, augmented_batches * bs, p_sample), (augmented_samples, augmented_batches * bs)
    assert not five_sigma(augmented_samples, augmented_batches * bs, p_batch * p_sample)  # the gates are not applied twice
    assert not five_sigma(augmented_samples, augmented_batches * bs, 1.)

@pytest.mark.parametrize('name', ['MixUp', 'CutMix', 'MixUpCutMix'])
def test_spared_samples_keep_their_pixels_lam_one_and_their_plain_loss(name):
    class Keep(Callback):
        order, run_valid = 1, False
        def __init__(self): self.batches = []
        def before_batch(self): self.batches.append(dict(y=TensorBase(self.learn.yb[0]).clone(), lam=cb.lam, perm=cb.perm))
        def after_loss(self): self.batches[-1].update(pred=TensorBase(self.learn.pred).detach(), loss=TensorBase(self.learn.loss))
    class Before(Callback):
        order, run_valid = -1, False
        def before_batch(self): keep.batches_before = getattr(keep, 'batches_before', []) + [TensorBase(self.learn.xb[0]).clone()]
    cb, keep = CALLBACKS[name](p_sample=.5, seed=0), Keep()
    learn = quick_learner()
    learn.fit(1, cbs=[cb, keep, Before()])
    seen_spared = seen_mixed = False
    for batch, images_before in zip(keep.batches, keep.batches_before):
        lam = batch['lam']
        assert isinstance(lam, torch.Tensor) and lam.shape == (len(images_before),)  # spared samples make lam per sample
        spared = lam == 1
        seen_spared |= bool(spared.any()); seen_mixed |= bool((~spared).any())
        own = F.cross_entropy(batch['pred'], batch['y'], reduction='none').double()
        partner = F.cross_entropy(batch['pred'], batch['y'][batch['perm']], reduction='none').double()
        expected = torch.where(spared, own, lam * own + (1 - lam) * partner).mean()
        assert torch.allclose(batch['loss'].double(), expected, rtol=1e-6)
    assert seen_spared and seen_mixed

def test_spared_samples_of_a_mixed_batch_keep_their_pixels_bit_for_bit():
    for name in ('MixUp', 'CutMix', 'Cutout'):
        for before, after, draw in run_batches(CALLBACKS[name](p_sample=.5, seed=2), 20):
            unchanged = (before == after).flatten(1).all(1)
            if name != 'Cutout': assert torch.equal(unchanged, draw.lam == 1)  # spared exactly where lam is exactly 1
            else: assert torch.equal(unchanged, ((draw.holes[..., 2] - draw.holes[..., 0]) * (draw.holes[..., 3] - draw.holes[..., 1]) == 0).all(1))

class AugmentedEpochs(Callback):
    "The epochs in which the callback `cb` augmented a batch."
    order, run_valid = 1, False
    def __init__(self, cb): self.cb, self.epochs = cb, set()
    def before_batch(self):
        if self.cb.draw is not None: self.epochs.add(self.learn.epoch)

SKIP_CASES = [(4, 2, 0, {2, 3}), (4, 1, 1, {1, 2}), (2, 1, 1, set()), (2, 3, 0, set()), (3, 0, 0, {0, 1, 2})]

@pytest.mark.parametrize('name, epochs, first, last, expected', [('MixUp', *case) for case in SKIP_CASES] + [(name, *SKIP_CASES[1]) for name in CALLBACKS if name != 'MixUp'])
def test_skip_first_and_last_epochs(name, epochs, first, last, expected):
    "A fit no longer than skip_first_epochs + skip_last_epochs trains without augmentation."
    cb = CALLBACKS[name](skip_first_epochs=first, skip_last_epochs=last, seed=0)
    seen = AugmentedEpochs(cb)
    learn = quick_learner()
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs, cbs=[cb, seen])
    assert seen.epochs == expected

@pytest.mark.parametrize('name', CALLBACKS)
@pytest.mark.parametrize('argument, value', [('p_sample', 1.5), ('p_sample', -.1), ('p_sample', 'half'), ('skip_first_epochs', -1),
                                             ('skip_first_epochs', 1.5), ('skip_first_epochs', True)])
def test_bad_knobs_are_refused_with_name_and_value(name, argument, value):
    with pytest.raises(ValueError, match=rf"{argument} must be .*; got {argument}={value!r}"): CALLBACKS[name](**{argument: value})
