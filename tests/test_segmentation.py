"Every callback on image + mask batches: pixels, masks and loss checked against what the images themselves show."
import pytest, torch
import torch.nn.functional as F
from torch import nn
from fastai.vision.all import DataLoaders, TensorImage, TensorMask, TensorCategory, TensorBase, Learner, Callback, CrossEntropyLossFlat
from mixaug_fastai.all import *

N, H, W, BS, VOID = 40, 24, 32, 8, 3

def segmentation_items(n=N, seed=0):
    """Images whose channel 0 shows each pixel's class (code / 3), channel 1 the item's id (id / n) and channel 2 a constant .5,
    so that after any mix a pixel tells where it came from; masks of 4 codes in 4x4 blocks (code 3 is void)."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, 4, (n, H // 4, W // 4), generator=g).repeat_interleave(4, 1).repeat_interleave(4, 2)
    ids = torch.arange(n, dtype=torch.float32)[:, None, None].expand(n, H, W) / n
    images = torch.stack([masks / 3, ids, torch.full((n, H, W), .5)], 1)
    return [(TensorImage(x), TensorMask(y)) for x, y in zip(images, masks)], masks

ITEMS, MASKS = segmentation_items()

def seg_learner(items=ITEMS, loss_func=None, n_out=4):
    torch.manual_seed(0)
    dls = DataLoaders.from_dsets(items[:32], items[32:], bs=BS, device='cpu', num_workers=0)
    return Learner(dls, nn.Conv2d(3, n_out, 3, padding=1), loss_func=loss_func or CrossEntropyLossFlat(axis=1, ignore_index=VOID))

class Keep(Callback):
    "Copies of each training batch's inputs and targets, before (order -1) or after (order 1) the augmentation, and the loss."
    run_valid = False
    def __init__(self, order): self.order, self.batches = order, []
    def before_batch(self): self.batches.append(dict(x=TensorBase(self.learn.xb[0]).clone(), y=[TensorBase(t).clone() for t in self.learn.yb]))
    def after_loss(self): self.batches[-1].update(pred=TensorBase(self.learn.pred).detach(), loss=TensorBase(self.learn.loss).detach())

def fit(cb, learn=None, epochs=1):
    learn = learn or seg_learner()
    before, after = Keep(-1), Keep(1)
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs, 1e-3, cbs=[cb, before, after])
    return learn, before.batches, after.batches

def source_ids(images): return (images[:, 1] * N).round().long()  # the item each pixel came from

@pytest.mark.parametrize('per_sample', [False, True])
def test_cutmix_pastes_each_mask_with_its_image(per_sample):
    "Each pixel's mask code is the code of the item its pixels came from, at that position: read from the image, not from the draw."
    _, _, after = fit(CutMix(1., per_sample=per_sample, seed=0), epochs=2)
    pasted_somewhere = False
    for batch in after:
        images, mask = batch['x'], batch['y'][0]
        sources = source_ids(images)
        rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
        assert torch.equal(mask, MASKS[sources, rows, cols])
        pasted_somewhere |= bool((sources != sources[:, :1, :1]).any())
    assert pasted_somewhere

def test_cutmix_lam_is_the_own_pixel_fraction_and_the_loss_is_plain():
    cb = CutMix(1., per_sample=True, seed=1)
    _, before, after = fit(cb)
    own_ids = source_ids(before[-1]['x'])[:, 0, 0]
    own_fraction = (source_ids(after[-1]['x']) == own_ids[:, None, None]).double().mean((1, 2))
    assert torch.allclose(cb.lam, own_fraction)
    batch = after[-1]
    assert torch.allclose(batch['loss'], F.cross_entropy(batch['pred'], batch['y'][0], ignore_index=VOID))

def test_mixup_keeps_masks_and_weighs_the_two_masks_losses_with_the_loss_denominator():
    weight = torch.tensor([1., 4., .5, 2.])
    cb = MixUp(.4, seed=0)
    _, before, after = fit(cb, seg_learner(loss_func=CrossEntropyLossFlat(axis=1, weight=weight, ignore_index=VOID)))
    assert all(torch.equal(b['y'][0], a['y'][0]) for b, a in zip(before, after))
    batch, own_ids = after[-1], source_ids(before[-1]['x'])[:, 0, 0]
    mask, log_p = batch['y'][0], torch.log_softmax(batch['pred'].double(), 1)
    partner_mask = MASKS[own_ids[cb.perm]]  # the partner's mask, found through the item ids the images carried before the mix
    def summed(i, m): return -(weight.double()[m] * log_p[i].gather(0, m[None])[0] * (m != VOID)).sum()
    lam = cb.lam
    numerator = sum(lam[i] * summed(i, mask[i]) + (1 - lam[i]) * summed(i, partner_mask[i]) for i in range(BS))
    assert torch.allclose(batch['loss'].double(), numerator / (weight.double()[mask] * (mask != VOID)).sum(), rtol=1e-5)

def test_mixup_of_a_batch_with_nothing_to_mix_is_the_plain_loss_with_ignored_pixels():
    "lam = 1 for every sample (alpha tiny, own_dominates): the mixed loss is the learner's plain loss, void pixels and all."
    cb = MixUp(1e-300, seed=0)
    _, _, after = fit(cb)
    assert torch.all(cb.lam == 1)
    batch = after[-1]
    assert torch.allclose(batch['loss'], F.cross_entropy(batch['pred'], batch['y'][0], ignore_index=VOID), rtol=1e-6)

def test_cutout_leaves_masks_alone_by_default_and_marks_holes_with_mask_fill():
    _, before, after = fit(Cutout(length=.4, seed=0))
    assert all(torch.equal(b['y'][0], a['y'][0]) for b, a in zip(before, after))
    _, before, after = fit(Cutout(n_holes=2, length=.3, mask_fill=VOID, seed=0))
    for b, a in zip(before, after):
        erased = (a['x'] == 0).all(1)  # the generated images are never 0 in all channels (channel 2 is .5)
        assert erased.any() and torch.equal(a['y'][0], torch.where(erased, VOID, b['y'][0]))

def test_float_masks_with_k_maps_are_pasted_on_every_map():
    items = [(x, TensorBase(torch.stack([y == c for c in range(4)]).float())) for x, y in ITEMS]
    learn = seg_learner(items, loss_func=nn.BCEWithLogitsLoss())
    _, _, after = fit(CutMix(1., seed=2), learn)
    images, maps = after[-1]['x'], after[-1]['y'][0]
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    expected = F.one_hot(MASKS[source_ids(images), rows, cols], 4).permute(0, 3, 1, 2).float()
    assert torch.equal(maps, expected)

def test_a_mask_and_a_label_are_each_treated_by_their_kind():
    "Under CutMix the mask is pasted (exact) and the per-image label is weighed by lam."
    labels = [TensorCategory(int(y.float().mean() > 1.5)) for _, y in ITEMS]
    items = [(x, y, label) for (x, y), label in zip(ITEMS, labels)]
    def mask_and_label_loss(pred, mask, label, reduction='mean'):
        per_sample = F.cross_entropy(pred, mask, reduction='none').flatten(1).mean(1) + F.cross_entropy(pred.mean((2, 3))[:, :2], label, reduction='none')
        return per_sample.mean() if reduction == 'mean' else per_sample.sum() if reduction == 'sum' else per_sample
    torch.manual_seed(0)
    dls = DataLoaders.from_dsets(items[:32], items[32:], bs=BS, device='cpu', num_workers=0)
    dls.n_inp = 1  # one input, two targets
    cb = CutMix(1., seed=0)
    _, before, after = fit(cb, Learner(dls, nn.Conv2d(3, 4, 3, padding=1), loss_func=mask_and_label_loss))
    batch, own_ids = after[-1], source_ids(before[-1]['x'])[:, 0, 0]
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    assert torch.equal(batch['y'][0], MASKS[source_ids(batch['x']), rows, cols])
    label = batch['y'][1]
    assert torch.equal(label, torch.tensor([int(labels[i]) for i in own_ids]))  # labels themselves are not mixed
    expected = cb.lam * mask_and_label_loss(batch['pred'], batch['y'][0], label) + (1 - cb.lam) * mask_and_label_loss(batch['pred'], batch['y'][0], label[cb.perm])
    assert torch.allclose(batch['loss'], expected)

@pytest.mark.parametrize('make_cb', [CutMix, MixUp, MixUpCutMix, lambda: Cutout(mask_fill=VOID)])
def test_p_batch_zero_leaves_images_masks_and_loss_exactly_plain(make_cb):
    cb = make_cb(); cb.p_batch = 0.
    _, before, after = fit(cb)
    for b, a in zip(before, after):
        assert torch.equal(b['x'], a['x']) and torch.equal(b['y'][0], a['y'][0])
        assert torch.equal(a['loss'], CrossEntropyLossFlat(axis=1, ignore_index=VOID)(a['pred'], a['y'][0]))

@pytest.mark.parametrize('make_cb', [CutMix, MixUp, MixUpCutMix])
@pytest.mark.parametrize('target, shape', [(torch.zeros(N, 5, 4, dtype=torch.long), "(8, 5, 4)"), (torch.zeros(N, H // 2, W // 2, dtype=torch.long), f'(8, {H // 2}, {W // 2})')])
def test_a_target_that_cannot_be_mixed_is_refused_with_its_shape_and_dtype(make_cb, target, shape):
    items = [(x, t) for (x, _), t in zip(ITEMS, target)]
    with pytest.raises(TypeError, match=rf"cannot mix a target with shape {re_escape(shape)} and dtype torch\."):
        fit(make_cb(), seg_learner(items, loss_func=CrossEntropyLossFlat()))

def re_escape(text): import re; return re.escape(text)

def test_mask_fill_is_checked():
    for bad in ('void', float('nan'), True, [3]):
        with pytest.raises(ValueError, match='mask_fill'): Cutout(mask_fill=bad)
    with pytest.raises(ValueError, match=r"mask_fill must be a whole number for a mask of dtype torch.int64; got mask_fill=2.5"):
        fit(Cutout(mask_fill=2.5))
    from conftest import make_learner
    with pytest.raises(ValueError, match=r"mask_fill must be None for a batch with no mask"):
        learn = make_learner()
        with learn.no_bar(), learn.no_logging(): learn.fit(1, cbs=Cutout(mask_fill=0))

def test_show_mix_batch_draws_masks_over_images_titled_with_lam():
    import matplotlib; matplotlib.use('Agg')
    from mixaug_fastai.core import make_generator
    learn = seg_learner()
    cb = CutMix(1.)
    axs = show_mix_batch(learn, cb, max_n=4, seed=3)
    batch = learn.dls.train.one_batch()[0]
    draw = cb.draw_for(batch.shape, make_generator(3))
    top, left, bottom, right = draw.boxes[0].tolist()
    lam = 1 - (bottom - top) * (right - left) / (H * W)
    for ax, partner in zip(axs, draw.perm.tolist()):
        assert ax.get_title() == f"own pixels {lam:.2f} / #{partner}'s {1 - lam:.2f}"
        assert len(ax.get_images()) == 2  # the image, and the mask over it
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    in_box = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    for ax in axs:
        image, mask = (torch.as_tensor(shown.get_array().data) for shown in ax.get_images())
        sources = (image[..., 1] * N).round().long()  # the item each shown pixel came from
        assert torch.equal(mask, MASKS[sources, rows, cols])  # the mask shown is the mask of the pixels shown
        assert (sources[in_box] != sources[~in_box][0]).all() and (sources[~in_box] == sources[~in_box][0]).all()

@pytest.mark.parametrize('switch_prob', [0., 1.])
def test_mixup_cutmix_treats_masks_as_the_callback_it_chose(switch_prob):
    cb = MixUpCutMix(switch_prob=switch_prob, seed=0)
    _, before, after = fit(cb)
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    for b, a in zip(before, after):
        if switch_prob == 1: assert torch.equal(a['y'][0], MASKS[source_ids(a['x']), rows, cols])  # CutMix: masks pasted
        else: assert torch.equal(a['y'][0], b['y'][0])  # MixUp: masks untouched, their losses weighed
    assert isinstance(cb.lam, float if switch_prob == 1 else torch.Tensor)
