"The two-label loss rule against formulas written out per sample."
import pytest, torch
import torch.nn.functional as F
from torch import nn
from fastai.losses import CrossEntropyLossFlat, BCEWithLogitsLossFlat, LabelSmoothingCrossEntropyFlat
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
