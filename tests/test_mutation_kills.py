"""Tests for bugs the rest of the suite let through (issue 21), planted by hand or by `make mutants`. Each asserts on values computed
independently of the code (the rule written out in float64 autograd, pixels, the public `lam`, `perm`, `holes`), never on its own output."""
import pytest, torch
import torch.nn.functional as F
from fastai.vision.all import Callback, CrossEntropyLossFlat
from mixaug_fastai.all import *
from mixaug_fastai.core import LARGEST_ALPHA, SMALLEST_ALPHA
from fastai.vision.all import DataLoaders, Learner, TensorImage, TensorMask, set_seed
from torch import nn
from conftest import quick_learner, make_learner, make_dls
from test_callbacks import recorded_fit

PAIRING = {'MixUp, one lam': lambda: MixUp(per_sample=False), 'MixUp, a lam per sample': lambda: MixUp(),
           'CutMix, one box': lambda: CutMix(), 'CutMix, a box per sample': lambda: CutMix(per_sample=True), 'MixUpCutMix': lambda: MixUpCutMix()}

def rule_in_float64(pred, y, lam, perm, reduction='mean'):
    "The papers' rule written out per sample in float64: lam * CE(pred, own label) + (1 - lam) * CE(pred, partner's label), then reduced."
    pred, y = pred.double(), y.as_subclass(torch.Tensor)
    lam = torch.as_tensor(lam, dtype=torch.float64).expand(len(y))
    per_sample = lam * F.cross_entropy(pred, y, reduction='none') + (1 - lam) * F.cross_entropy(pred, y[perm], reduction='none')
    return {'mean': per_sample.mean, 'sum': per_sample.sum, 'none': lambda: per_sample}[reduction]()

# --- the gradient the learner back-propagates ------------------------------------------------------------------------------
class LossGradients(Callback):
    "After our after_loss (order 1): the gradient of the learner's `loss_grad` w.r.t. the prediction, and that of the rule written out in float64."
    order, run_valid = 1, False
    def __init__(self, cb): super().__init__(); self.cb, self.pairs = cb, []
    def after_loss(self):
        got, = torch.autograd.grad(self.learn.loss_grad, self.learn.pred, retain_graph=True)
        pred64 = self.learn.pred.detach().double().requires_grad_()
        expected, = torch.autograd.grad(rule_in_float64(pred64, self.learn.yb[0], self.cb.lam, self.cb.perm), pred64)
        self.pairs.append((got, expected))

@pytest.mark.parametrize('name', PAIRING)
def test_the_learner_back_propagates_the_gradient_of_the_rule(name):
    "A first term detached from the graph (or any term lost) halves the gradient silently: the loss values alone can still be right."
    cb = PAIRING[name]()
    gradients = LossGradients(cb)
    quick_learner().fit(1, 1e-3, cbs=[cb, gradients])
    assert gradients.pairs
    for got, expected in gradients.pairs: assert torch.allclose(got.double(), expected, rtol=1e-4, atol=1e-7)

@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
@pytest.mark.parametrize('per_sample', [False, True], ids=['one lam', 'a lam per sample'])
def test_mixed_loss_value_and_gradient_for_each_reduction(per_sample, reduction):
    "The rule's value and gradient with each reduction, with one lam (the learner's loss given as the first term) and a lam per sample."
    torch.manual_seed(0)
    pred, y, perm = torch.randn(6, 4, requires_grad=True), torch.randint(0, 4, (6,)), torch.tensor([3, 0, 5, 1, 2, 4])
    lam = torch.rand(6, dtype=torch.float64) if per_sample else .3
    loss_func = CrossEntropyLossFlat(reduction=reduction)
    own = None if per_sample else loss_func(pred, y)
    result = mixed_loss(loss_func, pred, (y,), perm, lam, own_loss=own)
    pred64 = pred.detach().double().requires_grad_()
    expected = rule_in_float64(pred64, y, lam, perm, reduction)
    assert result.shape == expected.shape and torch.allclose(result.double(), expected, rtol=1e-5)
    got, = torch.autograd.grad(result.sum(), pred)
    want, = torch.autograd.grad(expected.sum(), pred64)
    assert torch.allclose(got.double(), want, rtol=1e-4, atol=1e-7)

# --- seeds -------------------------------------------------------------------------------------------------------------------
class Draws(Callback):
    "What `cb` exposes after its before_batch on each training batch: lam, perm and, for Cutout, holes."
    order, run_valid = 1, False
    def __init__(self, cb): super().__init__(); self.cb, self.seen = cb, []
    def before_batch(self): self.seen.append([getattr(self.cb, name, None) for name in ('lam', 'perm', 'holes')])

def same_draws(a, b) -> bool:
    same = lambda x, y: (x is None and y is None) or (x is not None and y is not None and torch.equal(torch.as_tensor(x), torch.as_tensor(y)))
    return len(a) == len(b) and all(same(x, y) for da, db in zip(a, b) for x, y in zip(da, db))

SEEDED = {'MixUp': lambda: MixUp(seed=3), 'CutMix, a box per sample': lambda: CutMix(per_sample=True, seed=3),
          'MixUpCutMix': lambda: MixUpCutMix(seed=3, p_batch=.7), 'Cutout': lambda: Cutout(n_holes=2, length=5, seed=3, p_sample=.6)}

@pytest.mark.parametrize('name', SEEDED)
def test_a_seeded_callback_draws_the_same_in_every_fit(name):
    "The docs promise: a seed is reset at each fit, so a second fit with the same callback draws what the first drew."
    cb, learn = SEEDED[name](), quick_learner()
    fits = []
    for _ in range(2):
        draws = Draws(cb)
        learn.fit(1, 1e-3, cbs=[cb, draws])
        fits.append(draws.seen)
    assert any(d[0] is not None or d[2] is not None for d in fits[0]) and same_draws(*fits)

def unseeded_draws() -> list:
    "The draws of an unseeded MixUp in a fit after `set_seed(0)`, as each process of a data-parallel run does it."
    set_seed(0)
    cb = MixUp()
    draws = Draws(cb)
    quick_learner().fit(1, 1e-3, cbs=[cb, draws])
    return draws.seen

def test_unseeded_callbacks_on_two_ranks_draw_differently(monkeypatch):
    "The rank is added to the seed (caught here in one process by setting the rank fastai reads, `RANK`; test_distributed.py runs two)."
    on_rank_0 = unseeded_draws()
    assert same_draws(on_rank_0, unseeded_draws())  # the same process, seed and rank: the same draws
    monkeypatch.setenv('RANK', '1')
    on_rank_1 = unseeded_draws()
    assert not any(torch.equal(a[0], b[0]) or torch.equal(a[1], b[1]) for a, b in zip(on_rank_0, on_rank_1))

# --- MixUpCutMix's two alphas ---------------------------------------------------------------------------------------------------
def test_mixup_cutmix_gives_each_alpha_to_its_own_augmentation():
    """MixUp's alpha at its largest makes every lam exactly 1/2 (each pixel the midpoint of two images); CutMix's at its smallest makes
    the box empty or at least half of each side (lam 1, or at most 3/4, each pixel its own or its partner's)."""
    cb = MixUpCutMix(mixup_alpha=LARGEST_ALPHA, cutmix_alpha=SMALLEST_ALPHA, seed=0)
    learn = make_learner(make_dls(n=96, num_workers=0))
    kinds = set()
    for batch in recorded_fit(learn, cb, epochs=2):
        raw, augmented, lam = batch['raw'], batch['augmented'], torch.as_tensor(batch['lam'], dtype=torch.float64).expand(len(batch['raw']))
        partners = raw[batch['perm']]
        if torch.allclose(augmented, (raw + partners) / 2, atol=1e-6) and (lam == .5).all(): kinds.add('MixUp'); continue
        own_or_partner = (augmented == raw) | (augmented == partners)
        assert own_or_partner.all() and ((lam == 1) | (lam <= .75)).all(); kinds.add('CutMix')
    assert kinds == {'MixUp', 'CutMix'}

# --- Cutout ----------------------------------------------------------------------------------------------------------------------
def hole_pixels(images, holes) -> torch.Tensor:
    "Every pixel value inside each sample's holes (bs, n_holes, 4 as top, left, bottom, right), all channels."
    return torch.cat([images[i, :, t:b, l:r].flatten() for i, sample in enumerate(holes.tolist()) for t, l, b, r in sample])

def test_cutout_noise_is_fresh_standard_normal_noise_in_every_batch():
    "Noise seeded the same in every batch repeats its values from batch to batch; fresh noise shares almost none."
    cb = Cutout(length=.75, fill='noise', seed=0)
    learn = make_learner(make_dls(n=64, height=16, width=16, num_workers=0))
    draws = Draws(cb); learn.add_cb(draws)
    values = [hole_pixels(batch['augmented'], holes) for batch, (_, _, holes) in zip(recorded_fit(learn, cb), draws.seen)]
    assert len(values) > 2
    for noise in values: assert abs(noise.mean()) < .15 and .85 < noise.std() < 1.15  # 8 images x 3 channels x >= 36 pixels
    for earlier, later in zip(values, values[1:]):
        shared = torch.isin(later, earlier).double().mean()
        assert shared < .01, f"{shared:.0%} of a batch's noise values repeat the previous batch's"

def float_mask_items(n=24, k=2, height=12, width=12):
    "Images with float masks of k maps (soft labels), (k, h, w) per item."
    g = torch.Generator().manual_seed(0)
    return [(TensorImage(torch.rand(3, height, width, generator=g)), TensorMask(torch.rand(k, height, width, generator=g))) for _ in range(n)]

@pytest.mark.parametrize('mask_fill', [.5, -1.25])
def test_cutout_writes_a_fractional_mask_fill_into_float_masks(mask_fill):
    "A float mask takes `mask_fill` as it is in the holes (not rounded to an int) and keeps every other value."
    items = float_mask_items()
    torch.manual_seed(0)
    learn = Learner(DataLoaders.from_dsets(items[:16], items[16:], bs=4, device='cpu', num_workers=0), nn.Conv2d(3, 2, 3, padding=1),
                    loss_func=nn.BCEWithLogitsLoss())
    cb = Cutout(length=5, mask_fill=mask_fill, seed=0)
    draws = Draws(cb); learn.add_cb(draws)
    for batch, (_, _, holes) in zip(recorded_fit(learn, cb), draws.seen):
        mask_before, mask_after = batch['y'].as_subclass(torch.Tensor), batch['y_after'].as_subclass(torch.Tensor)
        in_hole = torch.zeros_like(mask_before, dtype=torch.bool)
        for i, sample in enumerate(holes.tolist()):
            for t, l, b, r in sample: in_hole[i, :, t:b, l:r] = True
        assert in_hole.any() and (mask_after[in_hole] == mask_fill).all()
        assert torch.equal(mask_after[~in_hole], mask_before[~in_hole])

# --- survivors of `make mutants` in loss.py ------------------------------------------------------------------------------------
from fastai.torch_core import TensorCategory
from mixaug_fastai.loss import check_loss_func, plain_tensor, weigh_losses

def test_the_loss_check_accepts_every_reduction_it_can_weigh_and_explains_an_unreadable_loss():
    for reduction in ('mean', 'sum', 'none'): check_loss_func(CrossEntropyLossFlat(reduction=reduction))
    # a C function has no signature to read: the same advice as for a loss with no `reduction`, not an AttributeError
    with pytest.raises(TypeError, match='no `reduction` attribute'): check_loss_func(torch._C._nn.cross_entropy_loss)

def test_plain_tensor_drops_fastai_s_type_and_shares_the_data():
    typed = TensorCategory(torch.tensor([1, 2]))
    plain = plain_tensor(typed)
    assert type(plain) is torch.Tensor and plain.data_ptr() == typed.data_ptr()
    assert plain_tensor(3) == 3 and plain_tensor(None) is None  # what is not a tensor passes through

def test_an_unreduced_loss_that_does_not_split_into_samples_is_named():
    with pytest.raises(ValueError, match=r'unreduced loss of shape \(7,\) into 2 samples'):
        weigh_losses(torch.ones(7), torch.ones(7), torch.tensor([.5, .5], dtype=torch.float64))

def test_a_single_class_weight_with_ignored_targets():
    "One class, its weight 2, two of five targets ignored: the per-sample path divides by the summed weight of the three counted ones."
    pred, target = torch.randn(5, 1), torch.tensor([0, -100, 0, -100, 0])
    loss_func = torch.nn.CrossEntropyLoss(weight=torch.tensor([2.]))
    assert torch.allclose(mixed_loss(loss_func, pred, (target,), torch.tensor([1, 2, 3, 4, 0]), torch.ones(5, dtype=torch.float64)),
                          loss_func(pred, target))

def test_with_one_lam_the_learner_s_loss_is_reused_as_the_first_term():
    "The rule evaluates the loss once more (the partners' targets), not twice: the learner's loss is the first term."
    calls = []
    def counted_loss(pred, target): calls.append(1); return F.cross_entropy(pred, target)
    pred, y, perm = torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), torch.tensor([1, 2, 3, 0])
    own = F.cross_entropy(pred, y)
    assert torch.allclose(mixed_loss(counted_loss, pred, (y,), perm, .25, own_loss=own), .25 * own + .75 * F.cross_entropy(pred, y[perm]))
    assert len(calls) == 1
