"""Tests for bugs the rest of the suite let through (issue 21), planted by hand or by `make mutants`. Each asserts on values computed
independently of the code (the rule written out in float64 autograd, pixels, the public `lam`, `perm`, `holes`), never on its own output."""
import re
import numpy as np
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

# --- survivors of `make mutants` in core.py: detection boxes ------------------------------------------------------------------
from mixaug_fastai.core import cutmix_box_targets, mixup_boxes, erased_fraction

def points_32(top, left, bottom, right) -> list:
    "A pixel rectangle of a 32 x 32 image in fastai's box coordinates (x_min, y_min, x_max, y_max in [-1, 1]): exact in float32."
    return [left / 16 - 1, top / 16 - 1, right / 16 - 1, bottom / 16 - 1]

def own_boxes_after_cutmix(region:tuple, *pixel_boxes) -> list:
    """Sample 0's real boxes after CutMix pastes `region` (top, left, bottom, right) of a partner that has no box, each as
    (label, pixel rectangle): the boxes are labelled 1, 2, ... in the order given."""
    n = len(pixel_boxes)
    boxes = torch.zeros(2, n, 4); boxes[0] = torch.tensor([points_32(*b) for b in pixel_boxes])
    labels = torch.zeros(2, n, dtype=torch.long); labels[0] = torch.arange(1, n + 1)
    after, after_labels = cutmix_box_targets(boxes, labels, torch.tensor([1, 0]), torch.tensor([region]), 32, 32)
    assert after.dtype == torch.float32  # the boxes' own dtype, as fastai's losses expect
    return [(label, [round(v, 6) for v in box]) for box, label in zip(after[0].tolist(), after_labels[0].tolist()) if label != 0]

def test_cutmix_cuts_a_box_whose_edge_meets_the_pasted_region_s_edge():
    """Boxes and regions on the pixel grid share edges all the time (both are whole pixels): a region that spans the box across one
    axis, edge to edge, and covers one end of it along the other leaves the rest of the box, a rectangle."""
    # the region (rows 0-16, columns 0-16) spans box 1 exactly from its top to its bottom and covers its left part
    assert own_boxes_after_cutmix((0, 0, 16, 16), (0, 8, 16, 24)) == [(1, points_32(0, 16, 16, 24))]
    # its left edge is box 2's left edge
    assert own_boxes_after_cutmix((0, 0, 16, 16), (4, 0, 12, 24)) == [(1, points_32(4, 16, 12, 24))]
    # its top edge is box 3's top edge (and it spans the box from its left to its right)
    assert own_boxes_after_cutmix((0, 0, 16, 16), (0, 2, 24, 14)) == [(1, points_32(16, 2, 24, 14))]
    # a region at the bottom right: its right edge is the box's right edge, then its bottom edge the box's bottom edge
    assert own_boxes_after_cutmix((16, 16, 32, 32), (20, 8, 28, 32)) == [(1, points_32(20, 8, 28, 16))]
    assert own_boxes_after_cutmix((16, 16, 32, 32), (8, 20, 32, 28)) == [(1, points_32(8, 20, 16, 28))]

def test_cutmix_keeps_a_box_that_shows_exactly_the_smallest_share_and_drops_one_hidden_inside_the_region():
    # 18 of a 20 x 10 box's 20 columns covered: 2 columns show, 10% of its pixels and 2 pixels wide, both thresholds met exactly
    assert own_boxes_after_cutmix((0, 0, 10, 18), (0, 0, 10, 20)) == [(1, points_32(0, 18, 10, 20))]
    # a 20 x 20 box with a 19 x 19 region inside it: 39 of its 400 pixels show (under 10%) and no rectangle is left, so it goes
    assert own_boxes_after_cutmix((5, 5, 24, 24), (4, 4, 24, 24)) == []
    # the same box with a 18 x 18 region: 76 pixels (19%) show, it stays whole
    assert own_boxes_after_cutmix((5, 5, 23, 23), (4, 4, 24, 24)) == [(1, points_32(4, 4, 24, 24))]

def test_cutmix_keeps_boxes_exactly_at_its_thresholds_with_their_slack():
    """The thresholds are BOX_MIN_SIDE - ROUNDING pixels a side and BOX_MIN_VISIBLE - ROUNDING of a box's area, compared in the boxes'
    float32 and kept when equal: a box exactly at either stays."""
    from mixaug_fastai.core import BOX_MIN_SIDE, BOX_MIN_VISIBLE, ROUNDING
    side = torch.tensor(BOX_MIN_SIDE - ROUNDING, dtype=torch.float32).item() / 16  # pixels to [-1, 1] units of a 32-px image: exact
    # an own box that side wide, far from the region pasted in the top-left corner
    boxes, labels = torch.zeros(2, 1, 4), torch.tensor([[1], [0]])
    boxes[0, 0] = torch.tensor([0., -1., side, 0.])
    kept, kept_labels = cutmix_box_targets(boxes, labels, torch.tensor([1, 0]), torch.tensor([[0, 0, 2, 2]]), 32, 32)
    assert kept_labels[0].tolist() == [1, 0] and kept[0, 0].tolist() == boxes[0, 0].tolist()
    # a partner's box of area 1.2512512 (in [-1, 1] units) of which the region (columns 0-1) takes 0.125: in float32,
    # (BOX_MIN_VISIBLE - ROUNDING) * 1.2512512 is 0.125 exactly (found by a search over float32 areas)
    area = 1.251251220703125
    assert (torch.tensor(area) * (BOX_MIN_VISIBLE - ROUNDING)).item() == .125
    boxes, labels = torch.zeros(2, 1, 4), torch.tensor([[0], [2]])
    boxes[1, 0] = torch.tensor([-1., -1., area - 1, 0.])
    kept, kept_labels = cutmix_box_targets(boxes, labels, torch.tensor([1, 0]), torch.tensor([[0, 0, 32, 2]]), 32, 32)
    assert kept_labels[0].tolist() == [2, 0] and kept[0, 0].tolist() == [-1., -1., -.875, 0.]

def test_mixup_weighs_float64_boxes_with_lam_in_float64():
    "A float64 model's boxes: each weight is lam and 1 - lam in float64, not a float32 lam widened."
    boxes, labels = torch.rand(2, 3, 4, dtype=torch.float64), torch.tensor([[1, 2, 0], [3, 0, 0]])
    _, _, weights = mixup_boxes(boxes, labels, torch.tensor([1, 0]), .3)
    assert weights.dtype == torch.float64
    assert weights[0].tolist() == [.3, .3, 1 - .3, 0., 0., 0.]  # own 1, own 2, the partner's 3, padding
    assert weights[1].tolist() == [.3, 1 - .3, 1 - .3, 0., 0., 0.]

def test_box_targets_stay_on_the_boxes_device():
    """The draw's host tensors (lam, the region) are moved to the boxes' device before they meet; the meta device stands in for a
    GPU here (it refuses to mix with host tensors just as a GPU does, and runs on any machine)."""
    boxes, labels = torch.zeros(2, 3, 4, device='meta'), torch.zeros(2, 3, dtype=torch.long, device='meta')
    for lam in (.3, torch.tensor([.3, .6], dtype=torch.float64)):
        assert {t.device.type for t in mixup_boxes(boxes, labels, torch.tensor([1, 0]), lam)} == {'meta'}
    assert {t.device.type for t in cutmix_box_targets(boxes, labels, torch.tensor([1, 0]), torch.tensor([[0, 0, 4, 4]]), 8, 8)} == {'meta'}

def points_8(top, left, bottom, right) -> list:
    "A pixel rectangle of an 8 x 8 image in fastai's box coordinates (exact in float32)."
    return [left / 4 - 1, top / 4 - 1, right / 4 - 1, bottom / 4 - 1]

def test_erased_fraction_of_boxes_at_the_edges_of_what_has_pixels():
    "Counted on pixel centres, in the image: a box past the border counts its pixels inside; one pixel counts; a box of no pixel is 0."
    holes = torch.tensor([[[0, 6, 8, 8], [1, 1, 2, 2]]])  # columns 6-7 of every row, and the single pixel (1, 1)
    boxes = torch.tensor([[points_8(0, 4, 4, 12),  # columns 4 to 12 of rows 0-3: 16 pixels in the image, 8 of them in columns 6-7
                           points_8(1, 1, 2, 2),  # the one pixel (1, 1)
                           points_8(1, 1.125, 2, 1.375),  # between two pixel centres: no pixel
                           points_8(0, 7, 4, 6),  # right before left (columns 7 to 6): no pixel, though over the first hole
                           points_8(4, 6, 0, 8)]])  # bottom above top: no pixel either
    assert erased_fraction(boxes, holes, 8, 8).tolist() == [[.5, 1., 0., 0., 0.]]

def test_erased_fraction_counts_exactly_past_float32_s_whole_numbers():
    "The counts are float64: an erased image of 4097 x 4097 pixels (more than float32 counts exactly, 2**24) is erased entirely."
    side = 4097
    holes, box = torch.tensor([[[0, 0, side, side]]]), torch.tensor([[[-1., -1., 1., 1.]]])
    assert erased_fraction(box, holes, side, side).item() == 1.

# --- survivors of `make mutants` in callbacks.py: what `show_mix_batch` draws -------------------------------------------------
import matplotlib; matplotlib.use('Agg')
from matplotlib import pyplot as plt
from matplotlib.colors import to_rgba
from fastai.vision.all import TensorCategory
from mixaug_fastai.callbacks import _show_boxes

@pytest.fixture
def figures():
    "Close the figures a test drew (a grid per call) when it ends."
    yield
    plt.close('all')

def test_show_mix_batch_draws_each_box_on_its_pixels_in_its_class_colour(figures):
    from test_detection import box_learner, scenes
    vocab = ['#na#', 'car', 'person']  # fastai's BBoxLblBlock: padding first, then the classes sorted
    axs = show_mix_batch(box_learner(), Cutout(length=4), max_n=6)  # Cutout leaves the boxes as they are: each scene's own
    drawn = 0
    for ax, (_, pixel_boxes, names) in zip(axs, scenes()[:6]):  # the batch is the first six scenes (no shuffling)
        # a box over pixels x0 to x1 - 1 has its edges half a pixel outside their centres, where imshow puts the pixels
        expected = [((x0 - .5, y0 - .5), x1 - x0, y1 - y0, to_rgba(f'C{vocab.index(name)}')) for (x0, y0, x1, y1), name in zip(pixel_boxes, names)]
        assert [(p.get_xy(), p.get_width(), p.get_height(), p.get_edgecolor()) for p in ax.patches] == pytest.approx(expected)
        assert [t.get_text() for t in ax.texts] == names  # no weight: Cutout weighs no box
        assert [t.get_position() for t in ax.texts] == pytest.approx([xy for xy, *_ in expected])
        drawn += len(names)
    assert drawn > 3

def test_box_labels_are_drawn_as_the_callbacks_page_shows_them(figures):
    """Each real box a 2-px outline, not filled, in its class's colour (matplotlib's cycle C0-C9, so class 12 is C2), with its label
    and weight in bold 8 pt from its top-left corner; both outlined 3 px in black to read on any image."""
    fig, ax = plt.subplots()
    boxes = torch.tensor([points_8(0, 0, 8, 8), points_8(1, 2, 5, 6), points_8(4, 4, 8, 8)])
    _show_boxes(boxes, torch.tensor([0, 12, 3]), torch.tensor([0., .25, .75]), (8, 8), None, ax)
    assert [(p.get_xy(), p.get_width(), p.get_height()) for p in ax.patches] == [((1.5, .5), 4., 4.), ((3.5, 3.5), 4., 4.)]
    assert [t.get_text() for t in ax.texts] == ['12 0.25', '3 0.75'] and [t.get_position() for t in ax.texts] == [(1.5, .5), (3.5, 3.5)]
    for artist, colour in zip([*ax.patches, *ax.texts], ['C2', 'C3'] * 2):
        strokes = [effect._gc for effect in artist.get_path_effects() if hasattr(effect, '_gc')]  # a Stroke keeps its settings there
        assert [(s['linewidth'], to_rgba(s['foreground'])) for s in strokes] == [(3, to_rgba('black'))]
        assert to_rgba(artist.get_edgecolor() if artist in ax.patches else artist.get_color()) == to_rgba(colour)
    assert all(not p.get_fill() and p.get_linewidth() == 2 for p in ax.patches)
    assert all((t.get_fontsize(), t.get_weight(), t.get_verticalalignment()) == (8, 'bold', 'top') for t in ax.texts)
    fig.canvas.draw()  # every setting is one matplotlib can draw

def mask_learner_for_show(masks, vocab=None):
    "Random images (so that a mix tells its partner and lam) with `masks`, unshuffled; `vocab` the mask codes' names, if given."
    images = torch.rand(len(masks), 3, *masks.shape[-2:], generator=torch.Generator().manual_seed(1))
    items = [(TensorImage(x), TensorMask(m)) for x, m in zip(images, masks)]
    dls = DataLoaders.from_dsets(items, items, bs=4, device='cpu', num_workers=0, shuffle=False)
    if vocab is not None: dls.vocab = vocab
    return Learner(dls, nn.Conv2d(3, 4, 3, padding=1), loss_func=CrossEntropyLossFlat(axis=1)), images[:4]

def mixup_partner_and_lam(shown, raw, i) -> tuple:
    "From the pixels alone: the one j != i and lam with shown[i] = lam * raw[i] + (1 - lam) * raw[j]."
    fits = []
    for j in range(len(raw)):
        if j == i: continue
        direction, offset = (raw[i] - raw[j]).double(), (shown[i] - raw[j]).double()
        lam = ((offset * direction).sum() / (direction * direction).sum()).item()
        if (offset - lam * direction).abs().max() < 1e-5: fits.append((j, lam))
    assert len(fits) == 1, fits
    return fits[0]

@pytest.mark.parametrize('vocab', [None, ['void', 'road', 'car', 'tree', 'sky', 'sign']], ids=['no vocab', 'six codes'])
def test_show_mix_batch_draws_masks_on_one_colour_scale_and_titles_them_with_lam(vocab, figures):
    """Codes 1 to 3 only (no 0 in any mask): the scale starts at code 0 all the same, and ends at the number of codes (the vocab's,
    else the largest code shown + 1), the same for every image of the grid."""
    masks = torch.randint(1, 4, (8, 6, 10), generator=torch.Generator().manual_seed(0))
    learn, raw = mask_learner_for_show(masks, vocab)
    axs = show_mix_batch(learn, MixUp(alpha=2.), max_n=4)  # lam mostly away from 1, where the partner could not be told
    shown = torch.stack([torch.from_numpy(np.asarray(ax.get_images()[0].get_array())).permute(2, 0, 1) for ax in axs])
    n_codes = len(vocab) if vocab else int(masks[:4].max()) + 1  # MixUp leaves masks as they are
    for i, ax in enumerate(axs):
        image, mask = ax.get_images()
        assert mask.get_clim() == (0, n_codes) and torch.equal(torch.as_tensor(np.asarray(mask.get_array())), masks[i])
        partner, lam = mixup_partner_and_lam(shown, raw, i)
        assert re.fullmatch(rf"own image (\d\.\d\d) / #{partner}'s (\d\.\d\d)", ax.get_title())
        shown_lam, shown_partner_weight = map(float, re.findall(r'\d\.\d\d', ax.get_title()))
        assert abs(shown_lam - lam) <= .005 + 1e-6 and abs(shown_partner_weight - (1 - lam)) <= .005 + 1e-6
    assert [ax.get_title() for ax in show_mix_batch(learn, Cutout(), max_n=4)] == [''] * 4  # no label, no partner: nothing to say

def test_show_mix_batch_draws_the_first_map_of_a_mask_of_several(figures):
    masks = torch.rand(8, 2, 6, 10, generator=torch.Generator().manual_seed(0)) * 2.5  # two soft maps per image, values up to 2.5
    learn, _ = mask_learner_for_show(masks)
    for i, ax in enumerate(show_mix_batch(learn, MixUp(), max_n=4)):
        _, mask = ax.get_images()
        assert torch.equal(torch.as_tensor(np.asarray(mask.get_array())), masks[i, 0]) and mask.get_clim() == (0, int(masks[:4].max()) + 1)

def test_show_mix_batch_uses_the_learner_s_callback_and_lays_out_its_grid(figures):
    learn = make_learner(make_dls(bs=16, num_workers=0, shuffle=False), cbs=CutMix())
    axs = show_mix_batch(learn)  # the callback in learn.cbs; by default 8 images (of 16) in rows of 4, fastai's 3 inches each
    assert len(axs) == 8 and {ax.get_subplotspec().get_geometry()[:2] for ax in axs} == {(2, 4)}
    assert tuple(axs[0].figure.get_size_inches()) == (12., 6.)
    titles = lambda axs: [ax.get_title() for ax in axs]
    assert titles(axs) == titles(show_mix_batch(learn, seed=0)) != titles(show_mix_batch(learn, seed=1))  # the default seed is 0
    axs = show_mix_batch(learn, ncols=2)
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in axs} == {(4, 2)} and tuple(axs[0].figure.get_size_inches()) == (6., 12.)
    assert tuple(show_mix_batch(learn, max_n=3, figsize=(5, 4))[0].figure.get_size_inches()) == (5., 4.)
    with pytest.raises(ValueError, match=r"^show_mix_batch needs a MixAugmentation callback: pass cb=, or add one to the Learner$"):
        show_mix_batch(make_learner(make_dls(num_workers=0)))

def test_show_mix_batch_titles_each_image_with_its_first_label_and_shows_targets_of_no_kind(figures):
    "Two labels per image and a target of no kind (Cutout ignores it, and so does the picture); no vocab: the label's number."
    g = torch.Generator().manual_seed(0)
    images, first, extra = torch.rand(8, 3, 8, 8, generator=g), torch.tensor([2, 0, 3, 1, 2, 2, 0, 1]), torch.rand(8, 2, 5, generator=g)
    items = [(TensorImage(x), TensorCategory(a), TensorCategory((a + 1) % 4), e) for x, a, e in zip(images, first, extra)]
    learn = Learner(DataLoaders.from_dsets(items, items, bs=4, device="cpu", num_workers=0, shuffle=False), nn.Conv2d(3, 4, 3), loss_func=F.cross_entropy)
    assert [ax.get_title() for ax in show_mix_batch(learn, Cutout(), max_n=4)] == ['2', '0', '3', '1']
    items = [item[:3] for item in items]  # the two labels alone: still the first one's
    learn = Learner(DataLoaders.from_dsets(items, items, bs=4, device="cpu", num_workers=0, shuffle=False), nn.Conv2d(3, 4, 3), loss_func=F.cross_entropy)
    assert [ax.get_title() for ax in show_mix_batch(learn, Cutout(), max_n=4)] == ['2', '0', '3', '1']
    # one-hot labels, with a vocab: the label as it is (the vocab names one class, not a row of scores)
    one_hot = F.one_hot(first, 4).float()
    items = [(TensorImage(x), y) for x, y in zip(images, one_hot)]
    dls = DataLoaders.from_dsets(items, items, bs=4, device='cpu', num_workers=0, shuffle=False)
    dls.vocab = ['red', 'green', 'blue', 'yellow']
    titles = [ax.get_title() for ax in show_mix_batch(Learner(dls, nn.Conv2d(3, 4, 3), loss_func=F.cross_entropy), Cutout(), max_n=4)]
    assert titles == ['[0.0, 0.0, 1.0, 0.0]', '[1.0, 0.0, 0.0, 0.0]', '[0.0, 0.0, 0.0, 1.0]', '[0.0, 1.0, 0.0, 0.0]']

# --- survivors of `make mutants`: seeds, fills, what a loss can take -------------------------------------------------------------
from mixaug_fastai.core import torch_seed, make_generator, erase_
from mixaug_fastai.callbacks import takes_targets

def test_an_unseeded_callback_starts_from_a_seed_of_62_bits():
    "Drawn from torch's global generator (fastai's `set_seed`) over 2**62 values: 20 global seeds give 20 seeds, not a few of a small set."
    seeds = []
    for global_seed in range(20):
        torch.manual_seed(global_seed)
        seeds.append(torch_seed())
    assert len(set(seeds)) == 20 and min(seeds) >= 0 and max(seeds) >= 2**40

def test_each_noise_batch_gets_its_own_seed_of_62_bits():
    "Cutout's noise is seeded per batch from the callback's generator, from 2**62 values: batches never share a noise pattern in practice."
    cb, generator = Cutout(fill='noise'), make_generator(0)
    seeds = [cb.draw_batch(torch.Size([2, 3, 8, 8]), generator).noise_seed for _ in range(20)]
    assert len(set(seeds)) == 20 and min(seeds) >= 0 and max(seeds) >= 2**40

def with_hole(images, values):
    "`images` (one sample) with rows 1-2 and columns 2-4 set to one value per channel, out of place."
    out = images.clone()
    for channel, value in enumerate(values): out[0, channel, 1:3, 2:5] = value
    return out

def test_erase_fills_holes_with_the_fill_it_is_given():
    hole = torch.tensor([[[1, 2, 3, 5]]])
    small = torch.rand(1, 3, 6, 8, dtype=torch.float64)  # few pixels: erased by batch-wide operations
    assert torch.equal(erase_(small.clone(), hole), with_hole(small, [0.] * 3))  # the default fill is 0
    assert torch.equal(erase_(small.clone(), hole, 1.), with_hole(small, [1.] * 3))
    assert torch.equal(erase_(small.clone(), hole, (.1, .2, .3)), with_hole(small, [.1, .2, .3]))  # float64 fills, not float32 ones widened
    large = torch.rand(1, 3, 96, 96)  # 27,648 values per sample: erased hole by hole
    assert torch.equal(erase_(large.clone(), hole, (.1, .2, .3)), with_hole(large, [.1, .2, .3]))

def test_takes_targets_reads_a_loss_module_s_forward_and_trusts_a_loss_it_cannot_read():
    assert takes_targets(nn.CrossEntropyLoss(), 1) and not takes_targets(nn.CrossEntropyLoss(), 2)  # forward(input, target)
    assert takes_targets(torch._C._nn.cross_entropy_loss, 3)  # a C function has no signature to read: not refused for it

@pytest.mark.parametrize('switch_prob', [0., .5, 1.])
def test_mixup_cutmix_asks_for_per_sample_weighing_only_if_it_can_draw_cutmix(switch_prob):
    "MixUp with one lam weighs the loss as it comes; CutMix with a box per sample weighs it per sample: only that needs `reduction`."
    learn = quick_learner(loss_func=lambda pred, y: F.cross_entropy(pred, y))
    forward_passes = []
    learn.model.register_forward_hook(lambda *_: forward_passes.append(1))
    cb = MixUpCutMix(switch_prob=switch_prob, mixup_per_sample=False, cutmix_per_sample=True, seed=0)
    with learn.no_bar(), learn.no_logging():
        if switch_prob == 0: learn.fit(1, 1e-3, cbs=cb); assert forward_passes; return
        with pytest.raises(TypeError, match="cannot weigh two labels' losses per sample"): learn.fit(1, 1e-3, cbs=cb)
    assert not forward_passes  # refused on the first batch, before the model saw it

# --- survivors of `make mutants`: what Cutout and the box check accept, and how they say no ------------------------------------
@pytest.mark.parametrize('fill', [(), [], ['grey'], (1., 'x'), [float('nan'), 0., 0.], (0., float('inf'))])
def test_cutout_refuses_a_fill_sequence_that_is_empty_or_not_all_finite_numbers(fill):
    with pytest.raises(ValueError, match='^fill must be'): Cutout(fill=fill)

def test_cutout_takes_a_fill_of_one_value_for_one_channel_and_names_a_fill_of_the_wrong_length():
    images = torch.rand(4, 1, 6, 6)
    Cutout(fill=(.5,)).check_batch(images, [])  # one channel, one value
    with pytest.raises(ValueError, match=r"^fill must be one value per channel \(1 channels\); got fill=\(0\.0, 0\.0\)$"):
        Cutout(fill=(0., 0.)).check_batch(images, [])

def test_cutout_names_itself_when_the_images_are_not_floats():
    with pytest.raises(TypeError, match='^Cutout needs a floating-point image batch'):
        Cutout().check_batch(torch.zeros(4, 3, 6, 6, dtype=torch.uint8), [])

def test_cutout_says_which_targets_a_batch_has_when_mask_fill_finds_no_mask():
    with pytest.raises(ValueError, match=r"^mask_fill must be None for a batch with no mask among its targets "
                                         r"\(got \['\(4,\) torch.int64', '\(4, 2\) torch.float32'\]\); got mask_fill=0.0$"):
        Cutout(mask_fill=0).check_batch(torch.rand(4, 3, 6, 6), [torch.zeros(4, dtype=torch.long), torch.zeros(4, 2)])

def test_boxes_without_labels_are_refused_with_the_shape_their_labels_need():
    from mixaug_fastai.core import target_groups
    with pytest.raises(TypeError, match=r"^boxes of shape \(4, 3, 4\) need their labels right after them, class indices of shape \(4, 3\) "):
        target_groups([torch.zeros(4, 3, 4)], (4, 3, 8, 8))

def test_one_large_box_is_pasted_sample_by_sample_from_each_partner():
    "A box of more values per sample than BATCH_WIDE_BELOW is pasted by a loop over samples: each image gets its partner's pixels there."
    from mixaug_fastai.core import paste_, BATCH_WIDE_BELOW
    images, perm = torch.rand(3, 3, 96, 96), torch.tensor([1, 2, 0])
    box = torch.tensor([[4, 8, 90, 94]])  # 3 x 86 x 86 values per sample
    assert 3 * 86 * 86 >= BATCH_WIDE_BELOW
    expected = images.clone()
    for i, partner in enumerate(perm.tolist()): expected[i, :, 4:90, 8:94] = images[partner, :, 4:90, 8:94]
    assert torch.equal(paste_(images.clone(), perm, box), expected)

def test_class_code_masks_take_their_partners_boxes_in_place():
    "Masks of class codes (integers) take a selection, not a lerp, and in place like images: the tensor given is the tensor changed."
    from mixaug_fastai.core import paste_
    masks, perm = torch.arange(3 * 6 * 8).view(3, 1, 6, 8), torch.tensor([2, 0, 1])
    boxes = torch.tensor([[0, 0, 2, 3], [1, 2, 6, 8], [3, 3, 4, 4]])  # one box per sample
    expected = masks.clone()
    for i, (partner, (t, l, b, r)) in enumerate(zip(perm.tolist(), boxes.tolist())): expected[i, :, t:b, l:r] = masks[partner, :, t:b, l:r]
    assert paste_(masks, perm, boxes) is masks and torch.equal(masks, expected)

# --- survivors of `make mutants` with the whole library suite (issue 21's list of test files): callbacks.py ----------------------
from fastai.callback.mixup import MixUp as FastaiMixUp, CutMix as FastaiCutMix
from mixaug_fastai.callbacks import require_single_pairing

ALPHA_RANGE = f'a number in [{SMALLEST_ALPHA}, {LARGEST_ALPHA}] (the concentration of Beta(alpha, alpha))'

@pytest.mark.parametrize('make,message', [
    (lambda: MixUp(0.), f"alpha must be {ALPHA_RANGE}; got alpha=0.0"),
    (lambda: MixUpCutMix(cutmix_alpha=-1), f"cutmix_alpha must be {ALPHA_RANGE}; got cutmix_alpha=-1"),
    (lambda: CutMix(p_batch=1.5), "p_batch must be a probability in [0, 1]; got p_batch=1.5"),
    (lambda: MixUp(p_sample=-.25), "p_sample must be a probability in [0, 1]; got p_sample=-0.25"),
    (lambda: MixUpCutMix(switch_prob=2), "switch_prob must be a probability in [0, 1]; got switch_prob=2"),
    (lambda: MixUp(seed=1.5), "seed must be an int or None; got seed=1.5"),
    (lambda: CutMix(skip_first_epochs=-1), "skip_first_epochs must be an int >= 0; got skip_first_epochs=-1"),
    (lambda: Cutout(skip_last_epochs=.5), "skip_last_epochs must be an int >= 0; got skip_last_epochs=0.5"),
    (lambda: Cutout(n_holes=0), "n_holes must be an int >= 1; got n_holes=0")])
def test_a_bad_argument_is_named_with_the_value_received_and_what_is_allowed(make, message):
    "The whole message, written out: a wrong parameter name, a lost value or a lost description each change it."
    with pytest.raises(ValueError) as error: make()
    assert str(error.value) == message

PAIRING_TEXT = (" both mix each image with a partner and weigh two labels' losses, and a batch's loss can follow only one pairing: attach one "
                "of them (MixUpCutMix switches between MixUp and CutMix per batch; Cutout combines with any of them)")

@pytest.mark.parametrize('cb,other,names', [(CutMix, MixUp, "CutMix and MixUp"), (MixUp, FastaiMixUp, "MixUp and fastai's MixUp"),
                                            (MixUpCutMix, FastaiCutMix, "MixUpCutMix and fastai's CutMix")])
def test_two_pairing_callbacks_are_named_each_as_itself(cb, other, names):
    "Ours by its class name, fastai's with \"fastai's\" in front, in the order (the callback checking, the other one)."
    cb, other = cb(), other()
    with pytest.raises(ValueError) as error: require_single_pairing(cb, [Cutout(), cb, other])
    assert str(error.value) == names + PAIRING_TEXT
    require_single_pairing(cb, [Cutout(), cb])  # itself and a Cutout: nothing to refuse

@pytest.mark.parametrize('make', [MixUp, CutMix, MixUpCutMix])
def test_a_batch_of_integer_images_is_refused_naming_the_callback(make):
    with pytest.raises(TypeError, match=rf"^{make.__name__} needs a floating-point image batch of shape \(bs, channels, height, width\); "
                                        r"got shape \(4, 3, 6, 6\) and dtype torch.uint8: convert images to float first"):
        make().check_batch(torch.zeros(4, 3, 6, 6, dtype=torch.uint8), [torch.zeros(4, dtype=torch.long)])

def test_with_one_lam_a_fit_evaluates_the_loss_once_more_per_mixed_batch():
    "The callback hands the learner's loss to the rule as its first term: a training batch costs two loss calls (own, partners'), not three."
    calls = []
    def counted_loss(pred, target): calls.append(1); return F.cross_entropy(pred, target)
    learn = quick_learner(loss_func=counted_loss)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=MixUp(per_sample=False, seed=0))
    assert (len(learn.dls.train), len(learn.dls.valid)) == (4, 2)
    assert len(calls) == 4 * 2 + 2

# --- survivors of the same run in core.py: the messages of the pure functions, and the kinds of targets -----------------------------
from mixaug_fastai.core import sample_beta, random_derangement, kind_of, target_groups

def test_the_pure_functions_name_a_bad_argument_with_the_value_received_and_what_is_allowed():
    generator = np.random.default_rng(0)
    with pytest.raises(ValueError) as error: sample_beta(0., 3, generator)
    assert str(error.value) == f"alpha must be a number in [{SMALLEST_ALPHA}, {LARGEST_ALPHA}]; got alpha=0.0"
    with pytest.raises(ValueError) as error: random_derangement(1, generator)
    assert str(error.value) == "n must be at least 2 (a single sample has no partner); got n=1"

def test_a_target_of_no_kind_is_refused_by_default_with_every_kind_it_could_have_been():
    "Images 8 high and 6 wide, batch of 3: each size in the message is the one it names."
    with pytest.raises(TypeError) as error: kind_of(torch.zeros(3, 5, 5, 5, 5), (3, 3, 8, 6))
    assert str(error.value) == ("cannot mix a target with shape (3, 5, 5, 5, 5) and dtype torch.float32 for images of shape (3, 3, 8, 6): each target "
                                "must be a mask per pixel, (3, 8, 6) or (3, k, 8, 6); boxes (3, n, 4) followed by their labels (3, n); "
                                "a label per sample, (3,) or (3, classes)")

def test_leniently_a_target_of_no_kind_is_grouped_as_other():
    "As target_groups documents: with strict=False a target of no kind comes back as ('other', (target,)), in its place among the others."
    label, odd, mask = torch.zeros(3, dtype=torch.long), torch.zeros(3, 5, 5, 5, 5), torch.zeros(3, 8, 6, dtype=torch.long)
    groups = target_groups([label, odd, mask], (3, 3, 8, 6), strict=False)
    assert [kind for kind, _ in groups] == ['label', 'other', 'mask']
    assert groups[1][1][0] is odd

# --- survivors in the functions every test calls (run by name after the first pass) ---------------------------------------------
import types
from mixaug_fastai.core import check_image_batch

def test_with_p_sample_each_cutmix_lam_is_the_share_its_image_keeps_of_a_non_square_image():
    "8 x 12 images: a spared sample keeps lam 1 (an empty box), a mixed one 1 - box area / (8 * 12), whatever the box."
    lams = []
    for seed in range(5):
        draw = CutMix(p_sample=.5, seed=seed).draw_batch(torch.Size((8, 3, 8, 12)), np.random.default_rng(seed))
        top, left, bottom, right = draw.boxes.double().unbind(1)
        assert torch.equal(draw.lam, 1 - (bottom - top) * (right - left) / 96)
        lams.append(draw.lam)
    assert (torch.cat(lams) == 1).any() and (torch.cat(lams) < 1).any()  # both spared and mixed samples were checked

def test_targets_after_keeps_each_replaced_tensor_s_fastai_type_and_leaves_an_added_one_plain():
    "Boxes, their labels and a mask: each replacement takes the type of the tensor it replaces; the boxes' weights (added) stay plain."
    from fastai.vision.all import TensorBBox, TensorMultiCategory
    boxes, labels, mask = TensorBBox(torch.zeros(2, 3, 4)), TensorMultiCategory(torch.ones(2, 3, dtype=torch.long)), TensorMask(torch.zeros(2, 8, 6))
    plain = [t.as_subclass(torch.Tensor) for t in (boxes, labels, mask)]
    changed = [('boxes', (torch.zeros(2, 6, 4), torch.ones(2, 6, dtype=torch.long), torch.ones(2, 6))), ('mask', (torch.ones(2, 8, 6),))]
    new = MixUp.targets_after((boxes, labels, mask), [('boxes', tuple(plain[:2])), ('mask', (plain[2],))], changed)
    assert [type(t) for t in new] == [TensorBBox, TensorMultiCategory, torch.Tensor, TensorMask]
    assert all(a.data_ptr() == b.data_ptr() for a, b in zip(new, [*changed[0][1], *changed[1][1]]))

def test_something_that_is_no_tensor_is_refused_as_no_image_batch():
    with pytest.raises(TypeError) as error: check_image_batch([[0.5]], 'CutMix')
    assert str(error.value) == ("CutMix needs a floating-point image batch of shape (bs, channels, height, width); got a list: "
                                "it augments image batches only, not tabular or text batches")

def test_a_loss_that_cannot_take_the_box_weights_is_named_with_the_count_it_would_need():
    class ThreeArguments:
        def __repr__(self): return 'ThreeArguments()'
        def __call__(self, pred, boxes, labels): return 0
    cb = MixUp(); cb.learn = types.SimpleNamespace(loss_func=ThreeArguments())
    with pytest.raises(TypeError) as error: cb.check_loss(target_groups([torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long)], (2, 3, 8, 6)))
    assert str(error.value) == (
        "MixUp gives the loss one more target on a batch with boxes, each box's weight (bs, 2n): lam for the image's own boxes, 1 - lam for "
        "its partner's, 0 for padding; loss_func=ThreeArguments() cannot take 3 targets after the prediction. Give it one more parameter "
        "with a default, e.g. `def loss(pred, boxes, labels, weights=None)` (None on validation and unmixed batches: every real box weighs 1), "
        "or use CutMix or Cutout, which add none")

def test_the_warning_for_a_fit_with_no_augmented_epoch_starts_with_the_callback_s_name():
    learn = quick_learner()
    with pytest.warns(UserWarning) as record, learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=CutMix(skip_first_epochs=1))
    assert [str(w.message) for w in record if 'augments no batch' in str(w.message)] == [
        "CutMix augments no batch of this fit: skip_first_epochs=1 and skip_last_epochs=0 cover all its 1 epoch(s) (each fit counts its own; "
        "fine_tune runs two)"]

def test_an_unseeded_generator_follows_torch_s_seed():
    "What makes a fit after fastai's set_seed(n) repeat its draws: without a seed, the generator is seeded from torch's generator."
    draws = []
    for _ in range(2):
        torch.manual_seed(3); draws.append(make_generator(None).random(4))
    torch.manual_seed(4); other = make_generator(None).random(4)
    assert np.array_equal(*draws) and not np.array_equal(draws[0], other)

def test_images_copied_off_a_loader_s_storage_replace_only_the_first_input():
    "A view of stored data is copied before it is changed; the learner's other inputs stay as they were."
    stored, other, labels = TensorImage(torch.rand(8, 3, 4, 4)), torch.ones(4, 2), torch.zeros(4, dtype=torch.long)
    images = stored[:4]
    cb = MixUp(); cb.learn = types.SimpleNamespace(xb=(images, other), yb=(labels,))
    copy, groups = cb._writable(images.as_subclass(torch.Tensor), [('label', (labels,))])
    assert copy.data_ptr() != stored.data_ptr() and torch.equal(copy, images.as_subclass(torch.Tensor))
    assert len(cb.learn.xb) == 2 and cb.learn.xb[1] is other and type(cb.learn.xb[0]) is TensorImage and cb.learn.xb[0].data_ptr() == copy.data_ptr()
    assert groups == [('label', (labels,))] and cb.learn.yb[0] is labels
