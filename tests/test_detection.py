"""Detection boxes (fastai's TensorBBox + TensorMultiCategory batches): MixUp keeps both images' boxes with their weights, CutMix and Cutout
follow their box rules, and every exit path leaves the learner as it was. Expectations are computed here, box by box, from the batch before
the callback changed it."""
import numpy as np
import pytest, torch
from torch import nn
from hypothesis import given, settings, strategies as st
from fastai.vision.all import (DataBlock, ImageBlock, BBoxBlock, BBoxLblBlock, Learner, Callback, TensorBase, IndexSplitter)
from mixaug_fastai.callbacks import MixUp, CutMix, Cutout, MixUpCutMix, show_mix_batch
from mixaug_fastai.core import mixup_boxes, box_points

SIZE = 32  # generated scenes: SYNTHETIC squares of a colour per class on a grey ground

def scenes(n=24, seed=0, max_boxes=3):
    "`n` (image, boxes, labels) scenes with 0 to `max_boxes` squares each (pixel boxes x0, y0, x1, y1)."
    rng, out = np.random.default_rng(seed), []
    for i in range(n):
        image, boxes, labels = np.full((SIZE, SIZE, 3), 128, np.uint8), [], []
        for _ in range(rng.integers(0, max_boxes + 1) if i % 6 else 0):  # every sixth scene has no box
            x0, y0 = rng.integers(0, SIZE - 8, 2); side = rng.integers(4, 12)
            x1, y1 = min(SIZE, x0 + side), min(SIZE, y0 + side)
            label = rng.choice(['person', 'car']); image[y0:y1, x0:x1] = (230, 40, 40) if label == 'person' else (40, 40, 230)
            boxes.append([float(x0), float(y0), float(x1), float(y1)]); labels.append(label)
        out.append((image, boxes, labels))
    return out

def box_dls(n=24, bs=6, seed=0):
    items = scenes(n, seed)
    block = DataBlock(blocks=(ImageBlock, BBoxBlock, BBoxLblBlock), n_inp=1, get_items=lambda _: list(range(n)),
                      get_x=lambda i: items[i][0], get_y=[lambda i: items[i][1], lambda i: items[i][2]],
                      splitter=IndexSplitter(list(range(n * 3 // 4, n))))
    return block.dataloaders(None, bs=bs, num_workers=0, device='cpu', shuffle=False)

class BoxModel(nn.Module):
    "A box regressor: one box per image from pooled features (enough to train a loss on boxes)."
    def __init__(self): super().__init__(); self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    def forward(self, x): return self.body(x)

def weighted_box_loss(pred, boxes, labels, weights=None):
    "L1 from the predicted box to every real box, each weighed by its weight (1 without weights), averaged over the summed weight."
    weights = (labels != 0).float() if weights is None else weights
    return ((pred[:, None] - boxes).abs().sum(-1) * weights).sum() / weights.sum().clamp(min=1e-6)

def box_learner(loss_func=weighted_box_loss, **kwargs):
    torch.manual_seed(0)
    return Learner(box_dls(**kwargs), BoxModel(), loss_func=loss_func)

class Keep(Callback):
    "Copies of each training batch before (`order=-1`) or after (`order=1`) the augmentation."
    run_valid = False
    def __init__(self, order): self.order, self.batches = order, []
    def before_batch(self): self.batches.append([TensorBase(t).clone() for t in (*self.learn.xb, *self.learn.yb)])

def fit(learn, cb, epochs=1):
    before, after, seen = Keep(-1), Keep(1), []
    record = type('Record', (Callback,), dict(order=2, run_valid=False, before_batch=lambda self: seen.append((cb.lam, cb.perm, cb.draw))))()
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs, 1e-3, cbs=[cb, before, after, record])
    return list(zip(before.batches, after.batches, seen))

def real(boxes, labels): return boxes[labels != 0], labels[labels != 0]

@pytest.mark.parametrize('cb', [MixUp(1.5, own_dominates=False, seed=0), MixUp(.4, per_sample=False, seed=1), MixUp(1.5, p_sample=.5, seed=2)], ids=repr)
def test_mixup_keeps_each_images_boxes_then_its_partners_with_their_weights(cb):
    for (x, boxes, labels), (mixed, new_boxes, new_labels, weights), (lam, perm, _) in fit(box_learner(), cb, 2):
        lam = torch.as_tensor(lam, dtype=torch.float64).expand(len(x))
        assert new_boxes.shape == (len(x), 2 * boxes.shape[1], 4) and new_labels.shape == weights.shape == (len(x), 2 * boxes.shape[1])
        assert torch.allclose(mixed, torch.lerp(x, x[perm], (1 - lam).float().view(-1, 1, 1, 1)), atol=1e-6)
        for i in range(len(x)):
            own_b, own_l = real(boxes[i], labels[i])
            partner_b, partner_l = real(boxes[perm[i]], labels[perm[i]]) if lam[i] < 1 else (boxes[i][:0], labels[i][:0])
            k = len(own_l) + len(partner_l)
            assert torch.equal(new_labels[i, :k], torch.cat([own_l, partner_l])) and (new_labels[i, k:] == 0).all()
            assert torch.equal(new_boxes[i, :k], torch.cat([own_b, partner_b])) and (new_boxes[i, k:] == 0).all()
            expected = torch.cat([lam[i].expand(len(own_l)), (1 - lam[i]).expand(len(partner_l)), torch.zeros(2 * boxes.shape[1] - k, dtype=torch.float64)])
            assert torch.allclose(weights[i].double(), expected)

@settings(max_examples=60)
@given(st.integers(2, 6), st.integers(0, 5), st.integers(0, 2**31), st.booleans())
def test_mixup_boxes_with_padding_anywhere(bs, n, seed, per_sample):
    g = torch.Generator().manual_seed(seed)
    boxes, labels = torch.rand(bs, n, 4, generator=g) * 2 - 1, torch.randint(0, 3, (bs, n), generator=g)  # label 0 (padding) anywhere
    perm = torch.roll(torch.arange(bs), 1)
    lam = torch.rand(bs, generator=g, dtype=torch.float64) if per_sample else float(torch.rand(1, generator=g))
    new_boxes, new_labels, weights = mixup_boxes(boxes, labels, perm, lam)
    for i in range(bs):
        own_lam = lam[i].item() if per_sample else lam
        rows = [(b, l, own_lam) for b, l in zip(boxes[i], labels[i]) if l != 0] + [(b, l, 1 - own_lam) for b, l in zip(boxes[perm[i]], labels[perm[i]]) if l != 0]
        assert new_labels[i].tolist() == [int(l) for _, l, _ in rows] + [0] * (2 * n - len(rows))
        for k, (b, l, w) in enumerate(rows): assert torch.equal(new_boxes[i, k], b) and abs(weights[i, k].item() - w) < 1e-6
        assert (weights[i, len(rows):] == 0).all() and (new_boxes[i, len(rows):] == 0).all()

@pytest.mark.parametrize('make_cb', [lambda: MixUp(1.5, own_dominates=False), lambda: CutMix(1.), lambda: Cutout(drop_erased_boxes=.5), lambda: MixUpCutMix()])
def test_p_batch_zero_is_bit_exact_and_validation_is_untouched(make_cb):
    plain = fit(box_learner(), Cutout(p_batch=0.))
    learn = box_learner()
    cb = make_cb(); cb.p_batch = 0.
    for (_, a, _), (_, b, _) in zip(plain, fit(learn, cb)): assert all(torch.equal(s, t) for s, t in zip(a, b))
    preds, (boxes, labels) = learn.get_preds(with_input=False)[0], learn.get_preds()[1]
    assert boxes.shape[-1] == 4 and labels.ndim == 2  # two targets in validation: nothing added

def test_a_batch_of_one_and_images_without_boxes_train():
    for cb in (MixUp(1.5, own_dominates=False, seed=0), CutMix(seed=0), Cutout(drop_erased_boxes=.5, seed=0)):
        assert fit(box_learner(n=8, bs=6), cb)  # 6 training scenes, one batch; scene 0 has no box
    one = fit(box_learner(n=4, bs=1), MixUp(1.5, seed=0))
    assert all(lam is None for _, _, (lam, _, _) in one)  # no partner for a batch of one: left alone

def test_a_loss_that_cannot_take_weights_is_refused_before_anything_changes():
    learn = box_learner(loss_func=lambda pred, boxes, labels: weighted_box_loss(pred, boxes, labels))
    weights = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(TypeError, match=r"one more target on a batch with boxes, each box's weight.*weights=None"):
        with learn.no_bar(), learn.no_logging(): learn.fit(1, cbs=MixUp(1.5))
    assert all(torch.equal(a, b) for a, b in zip(weights, learn.model.parameters()))
    with learn.no_bar(), learn.no_logging(): learn.fit(1, cbs=CutMix())  # CutMix adds no target

def pixel_region(draw, i) -> list:
    "The pasted region of sample i in pixels, as x0, y0, x1, y1."
    top, left, bottom, right = draw.boxes[0 if len(draw.boxes) == 1 else i].tolist()
    return [left, top, right, bottom]

def expected_cutmix(own, partner, region):
    "The CutMix box rule written out box by box in pixels (x0, y0, x1, y1 floats): own boxes as they show outside the region, then the partner's inside it."
    rx0, ry0, rx1, ry1 = region
    area = lambda b: max(0., b[2] - b[0]) * max(0., b[3] - b[1])
    clip = lambda b: [max(b[0], rx0), max(b[1], ry0), min(b[2], rx1), min(b[3], ry1)]
    kept = lambda before, after, shown: shown >= .1 * area(before) - 1e-3 and after[2] - after[0] >= 2 - 1e-3 and after[3] - after[1] >= 2 - 1e-3
    out = []
    for x0, y0, x1, y1 in own:
        shown, (a0, b0, a1, b1) = area([x0, y0, x1, y1]) - area(clip([x0, y0, x1, y1])), (x0, y0, x1, y1)
        if ry0 <= y0 and ry1 >= y1:  # the region spans the box's height: it may cut its left or right end off
            if rx0 <= x0 < rx1: a0 = max(x0, rx1)
            if rx0 < x1 <= rx1: a1 = min(x1, rx0)
        if rx0 <= x0 and rx1 >= x1:
            if ry0 <= y0 < ry1: b0 = max(y0, ry1)
            if ry0 < y1 <= ry1: b1 = min(y1, ry0)
        if kept([x0, y0, x1, y1], [a0, b0, a1, b1], shown): out.append([a0, b0, a1, b1])
    return out + [clip(b) for b in partner if kept(b, clip(b), area(clip(b)))]

def in_pixels(boxes, labels): return [((b + 1) * SIZE / 2).tolist() for b in boxes[labels != 0]]

@pytest.mark.parametrize('per_sample', [False, True])
def test_cutmix_boxes_box_by_box(per_sample):
    for (x, boxes, labels), (_, new_boxes, new_labels), (lam, perm, draw) in fit(box_learner(), CutMix(1., per_sample=per_sample, seed=3), 2):
        for i in range(len(x)):
            expected = expected_cutmix(in_pixels(boxes[i], labels[i]), in_pixels(boxes[perm[i]], labels[perm[i]]), pixel_region(draw, i))
            got = in_pixels(new_boxes[i], new_labels[i])
            assert len(got) == len(expected) and all(np.allclose(g, e, atol=1e-4) for g, e in zip(got, expected)), (got, expected)
            own_labels, partner_labels = labels[i][labels[i] != 0], labels[perm[i]][labels[perm[i]] != 0]
            assert set(new_labels[i][new_labels[i] != 0].tolist()) <= set(own_labels.tolist() + partner_labels.tolist())

def test_cutout_drops_a_box_only_when_enough_of_it_is_erased():
    for (x, boxes, labels), (erased_images, new_boxes, new_labels), (_, _, draw) in fit(box_learner(), Cutout(length=12, fill=5., drop_erased_boxes=.5, seed=4), 2):
        for i in range(len(x)):
            erased = (erased_images[i] == 5.).all(0)
            expected = []
            for b, l in zip(*real(boxes[i], labels[i])):
                x0, y0, x1, y1 = (((b + 1) * SIZE / 2) - .5).ceil().clamp(0, SIZE).long().tolist()
                pixels = erased[y0:y1, x0:x1]
                if pixels.numel() == 0 or pixels.float().mean() < .5: expected.append(int(l))
            assert real(new_boxes[i], new_labels[i])[1].tolist() == expected
    untouched = fit(box_learner(), Cutout(length=12, seed=4))
    assert all(torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]) for a, b, _ in untouched)  # by default boxes are left alone

def test_boxes_without_labels_or_of_another_n_are_refused():
    from mixaug_fastai.core import target_groups
    boxes = torch.zeros(4, 3, 4)
    for targets, what in (([boxes], 'no target after them'), ([boxes, torch.zeros(4, 5, dtype=torch.long)], r'shape \(4, 5\)')):
        with pytest.raises(TypeError, match=rf"boxes of shape \(4, 3, 4\) need their labels.*got {what}"): target_groups(targets, (4, 3, 8, 8))
    from conftest import make_learner
    learn = make_learner()
    with pytest.raises(ValueError, match='drop_erased_boxes must be None for a batch with no boxes'):
        with learn.no_bar(), learn.no_logging(): learn.fit(1, cbs=Cutout(drop_erased_boxes=.5))

def test_show_mix_batch_draws_both_images_boxes_with_their_weights():
    import matplotlib; matplotlib.use('Agg')
    learn = box_learner()
    axs = show_mix_batch(learn, MixUp(1.5, own_dominates=False), max_n=4, seed=0)
    texts = [t.get_text() for ax in axs for t in ax.texts]
    assert texts and all(t.split()[0] in ('person', 'car') and 0 <= float(t.split()[1]) <= 1 for t in texts)
    assert not any('#na#' in t for t in texts)
