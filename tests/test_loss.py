"The two-label loss rule against formulas written out per sample."
import pytest, torch
import torch.nn.functional as F
from torch import nn
from fastai.losses import BaseLoss, CrossEntropyLossFlat, BCEWithLogitsLossFlat, LabelSmoothingCrossEntropyFlat, FocalLossFlat, MSELossFlat
from fastai.torch_core import TensorBase, TensorCategory, TensorMask, TensorMultiCategory
from mixaug_fastai.loss import *

torch.manual_seed(0)
BS, C = 5, 3
PRED, Y = torch.randn(BS, C), torch.randint(0, C, (BS,))
PERM, LAM = torch.tensor([2, 0, 1, 4, 3]), torch.rand(BS, dtype=torch.float64)

def per_sample_ce(i, target): return -torch.log_softmax(PRED[i].double(), -1)[target]

@pytest.mark.parametrize('lam', [.3, LAM])
@pytest.mark.parametrize('loss_func', [CrossEntropyLossFlat(), nn.CrossEntropyLoss(), F.cross_entropy])
def test_cross_entropy(loss_func, lam):
    weights = torch.as_tensor(lam, dtype=torch.float64).expand(BS)
    expected = torch.stack([weights[i] * per_sample_ce(i, Y[i]) + (1 - weights[i]) * per_sample_ce(i, Y[PERM[i]]) for i in range(BS)]).mean()
    assert torch.allclose(mixed_loss(loss_func, PRED, (Y,), PERM, lam).double(), expected, rtol=1e-5)

def test_label_smoothing_equals_soft_target_cross_entropy():
    eps = .2
    soft = lambda t: F.one_hot(t, C).double() * (1 - eps) + eps / C
    target = LAM[:, None] * soft(Y) + (1 - LAM[:, None]) * soft(Y[PERM])
    expected = -(target * torch.log_softmax(PRED.double(), -1)).sum(1).mean()
    assert torch.allclose(mixed_loss(LabelSmoothingCrossEntropyFlat(eps=eps), PRED, (Y,), PERM, LAM).double(), expected, rtol=1e-5)

def test_multi_label_bce_with_per_sample_lam():
    multi_hot = torch.randint(0, 2, (BS, C)).float()
    bce = F.binary_cross_entropy_with_logits(PRED.double(), multi_hot.double(), reduction='none')
    bce_partner = F.binary_cross_entropy_with_logits(PRED.double(), multi_hot[PERM].double(), reduction='none')
    expected = LAM[:, None] * bce + (1 - LAM[:, None]) * bce_partner
    assert torch.allclose(mixed_loss(BCEWithLogitsLossFlat(), PRED, (multi_hot,), PERM, LAM).double(), expected.mean(), rtol=1e-5)

def test_reduction_is_restored_even_on_error():
    loss_func = CrossEntropyLossFlat()
    with pytest.raises((RuntimeError, ValueError)):  # targets of the wrong length make cross-entropy fail mid-way
        mixed_loss(loss_func, PRED, (torch.randint(0, 9, (BS + 1,)),), PERM, LAM)
    assert loss_func.reduction == 'mean'

def test_unwrappable_loss_gets_advice():
    with pytest.raises(TypeError, match='reduction'): check_loss_func(lambda pred, y: (pred - y).abs().mean())
    odd = nn.KLDivLoss(reduction='batchmean')
    with pytest.raises(ValueError, match="got reduction='batchmean'"): check_loss_func(odd)

def test_mixed_loss_never_reads_device_values():
    "On the meta device any read of a device value raises, so the loss path makes no host-device sync."
    from mixaug_fastai.core import make_generator, draw_mixup, draw_cutmix
    g = make_generator(0)
    pred, labels, multi_hot = torch.empty(8, 5, device='meta'), torch.empty(8, dtype=torch.long, device='meta'), torch.empty(8, 5, device='meta')
    for draw in (draw_mixup(8, .4, True, True, g), draw_cutmix(8, 32, 32, 1., False, g)):
        assert mixed_loss(CrossEntropyLossFlat(), pred, (labels,), draw.perm, draw.lam).device.type == 'meta'
        assert mixed_loss(BCEWithLogitsLossFlat(), pred, (multi_hot,), draw.perm, draw.lam).shape == ()

# --- the loss's own denominator: class weights, ignored targets, masks ---------------------------------------------------
LOGITS, MASKS, PERM2 = torch.randn(3, 4, 5, 6), torch.randint(0, 4, (3, 5, 6)), torch.tensor([2, 0, 1])
CLASS_WEIGHT, PIXEL_WEIGHT = torch.tensor([1., 5., .2]), torch.tensor([1., 5., .2, 2.])
INDEX_LOSSES = {  # name: (loss_func, pred, targets, perm)
    'weight': (CrossEntropyLossFlat(weight=CLASS_WEIGHT), PRED, Y, PERM),
    'ignore_index': (CrossEntropyLossFlat(ignore_index=1), PRED, Y, PERM),
    'weight+ignore+smoothing': (CrossEntropyLossFlat(weight=CLASS_WEIGHT, ignore_index=2, label_smoothing=.1), PRED, Y, PERM),
    'torch weight': (nn.CrossEntropyLoss(weight=CLASS_WEIGHT), PRED, Y, PERM),
    'nll weight': (nn.NLLLoss(weight=CLASS_WEIGHT, ignore_index=0), torch.log_softmax(PRED, 1), Y, PERM),
    'masks axis=1 ignore': (CrossEntropyLossFlat(axis=1, ignore_index=3), LOGITS, MASKS, PERM2),
    'masks weight ignore smoothing': (CrossEntropyLossFlat(axis=1, weight=PIXEL_WEIGHT, ignore_index=3, label_smoothing=.2), LOGITS, MASKS, PERM2),
    'bce pos_weight': (BCEWithLogitsLossFlat(pos_weight=torch.tensor([3., 1., .5])), PRED, torch.randint(0, 2, (BS, C)).float(), PERM),
    'bce pos_weight masks': (nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3., 1., .5, 2.]).view(4, 1, 1)), LOGITS, torch.rand(3, 4, 5, 6), PERM2),
}

@pytest.mark.parametrize('name', INDEX_LOSSES)
def test_nothing_mixed_is_the_plain_loss(name):
    loss_func, pred, target, perm = INDEX_LOSSES[name]
    ones = torch.ones(len(target), dtype=torch.float64)
    assert torch.allclose(mixed_loss(loss_func, pred, (target,), perm, ones), loss_func(pred, target), rtol=1e-6, atol=0)

@pytest.mark.parametrize('name', INDEX_LOSSES)
@pytest.mark.parametrize('c', [0., .35])
def test_one_weight_for_every_sample_matches_the_loss_own_reduction(name, c):
    "A per-sample lam equal for every sample must give the per-batch rule computed with torch's own reductions."
    loss_func, pred, target, perm = INDEX_LOSSES[name]
    expected = c * loss_func(pred, target).double() + (1 - c) * loss_func(pred, target[perm]).double()
    result = mixed_loss(loss_func, pred, (target,), perm, torch.full((len(target),), c, dtype=torch.float64))
    assert torch.allclose(result.double(), expected, rtol=1e-5)

def test_per_sample_lam_on_weighed_and_ignored_pixels_against_the_written_out_rule():
    void, lam = 3, torch.tensor([.9, .25, .6], dtype=torch.float64)
    log_p, weight = torch.log_softmax(LOGITS.double(), 1), PIXEL_WEIGHT.double()
    def summed(i, mask): return -(weight[mask] * log_p[i].gather(0, mask[None])[0] * (mask != void)).sum()
    numerator = sum(lam[i] * summed(i, MASKS[i]) + (1 - lam[i]) * summed(i, MASKS[PERM2[i]]) for i in range(3))
    expected = numerator / (weight[MASKS] * (MASKS != void)).sum()
    result = mixed_loss(CrossEntropyLossFlat(axis=1, weight=PIXEL_WEIGHT, ignore_index=void), LOGITS, (MASKS,), PERM2, lam)
    assert torch.allclose(result.double(), expected, rtol=1e-5)

def test_two_denominators_are_refused_for_a_per_sample_lam():
    with pytest.raises(ValueError, match=r"label_smoothing=.*per_sample=False"): check_loss_func(LabelSmoothingCrossEntropyFlat(weight=CLASS_WEIGHT))
    check_loss_func(LabelSmoothingCrossEntropyFlat())

def test_a_loss_without_reduction_is_told_to_use_one_lam_per_batch():
    with pytest.raises(TypeError, match=r'per_sample=False'): check_loss_func(lambda pred, y: (pred - y).abs().mean())

def test_masks_that_carry_their_partners_are_not_weighed_again():
    labels = torch.tensor([0, 2, 1])
    def pixels_and_label(pred, mask, label, reduction='mean'):
        per_sample = F.cross_entropy(pred, mask, reduction='none').flatten(1).mean(1) + F.cross_entropy(pred.mean((2, 3)), label, reduction='none')
        return per_sample.mean() if reduction == 'mean' else per_sample.sum() if reduction == 'sum' else per_sample
    for lam in (.3, torch.tensor([.3, .8, .55], dtype=torch.float64)):
        weights = torch.as_tensor(lam, dtype=torch.float64)
        own = pixels_and_label(LOGITS.double(), MASKS, labels, 'none')
        partner = pixels_and_label(LOGITS.double(), MASKS, labels[PERM2], 'none')  # the mask stays, the label is the partner's
        result = mixed_loss(pixels_and_label, LOGITS, (MASKS, labels), PERM2, lam, weighed=(False, True))
        assert torch.allclose(result.double(), (weights * own + (1 - weights) * partner).mean(), rtol=1e-5)

def test_the_segmentation_loss_path_never_reads_device_values():
    from mixaug_fastai.core import make_generator, draw_mixup
    draw = draw_mixup(4, .4, True, True, make_generator(0))
    pred, masks = torch.empty(4, 5, 6, 7, device='meta'), torch.empty(4, 6, 7, dtype=torch.long, device='meta')
    loss_func = CrossEntropyLossFlat(axis=1, weight=torch.ones(5, device='meta'), ignore_index=4)
    assert mixed_loss(loss_func, pred, (masks,), draw.perm, draw.lam).device.type == 'meta'

FLATTENED_CASES = {  # what a learner holds: fastai's tensor types; int32 masks and integer multi-hot labels, which BaseLoss casts
    'CrossEntropyLossFlat(weight, ignore_index, label_smoothing)': lambda: (CrossEntropyLossFlat(weight=torch.tensor([1., 5., .2]), ignore_index=2, label_smoothing=.1),
                                                                            TensorBase(torch.randn(8, 3)), TensorCategory(torch.randint(0, 3, (8,)))),
    'CrossEntropyLossFlat(axis=1), int32 masks': lambda: (CrossEntropyLossFlat(axis=1), TensorBase(torch.randn(2, 4, 5, 6)), TensorMask(torch.randint(0, 4, (2, 5, 6), dtype=torch.int32))),
    'BCEWithLogitsLossFlat, integer multi-hot': lambda: (BCEWithLogitsLossFlat(), TensorBase(torch.randn(8, 3)), TensorMultiCategory(torch.randint(0, 2, (8, 3)))),
    'FocalLossFlat': lambda: (FocalLossFlat(gamma=2.), TensorBase(torch.randn(8, 3)), TensorCategory(torch.randint(0, 3, (8,)))),
    'LabelSmoothingCrossEntropyFlat': lambda: (LabelSmoothingCrossEntropyFlat(), TensorBase(torch.randn(8, 3)), TensorCategory(torch.randint(0, 3, (8,)))),
    'MSELossFlat': lambda: (MSELossFlat(), TensorBase(torch.randn(8, 1)), TensorBase(torch.randn(8))),
    # a float64 model's output (a plain tensor: TensorBase() would cast it), which BaseLoss computes in float32
    'CrossEntropyLossFlat(axis=1), float64 prediction': lambda: (CrossEntropyLossFlat(axis=1), torch.randn(2, 4, 5, 6, dtype=torch.float64), TensorMask(torch.randint(0, 4, (2, 5, 6)))),
    'MSELossFlat, float64 prediction and target': lambda: (MSELossFlat(), torch.randn(8, 1, dtype=torch.float64), torch.randn(8, dtype=torch.float64)),
}

@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
@pytest.mark.parametrize('name', FLATTENED_CASES)
def test_flattened_losses_are_computed_bit_for_bit_as_fastai_calls_them(name, reduction):
    "mixed_loss takes the steps of fastai's BaseLoss.__call__ itself on plain tensors: it must stay identical in every fastai version tested."
    loss_func, pred, target = FLATTENED_CASES[name]()
    loss_func.reduction = reduction
    assert is_flattened_loss(loss_func)
    assert torch.equal(call_flattened(loss_func, plain_tensor(pred), plain_tensor(target)), loss_func(pred, target))

def test_a_flattened_loss_with_its_own_call_is_called_as_it_is():
    class Doubled(BaseLoss):
        def __call__(self, inp, targ): return super().__call__(inp, targ) * 2
    loss_func = Doubled(nn.CrossEntropyLoss)
    assert not is_flattened_loss(loss_func)
    expected = 2 * torch.lerp(F.cross_entropy(PRED, Y[PERM]), F.cross_entropy(PRED, Y), .3)
    assert torch.allclose(mixed_loss(loss_func, PRED, (Y,), PERM, .3), expected)
