"""Fuzzing the callbacks with hypothesis: random shapes, dtypes and parameters through a callback's batch events.

Each generated case builds a callback, runs its `before_fit`, `before_batch` and `after_loss` on a stand-in learner (no training, so
hundreds of cases run in seconds) and checks the core invariants against independently computed values, or that bad parameters raise
the documented error. `CASES` counts the cases that ran; conftest.py prints the count at the end of the session."""
import math
from collections import Counter
from types import SimpleNamespace
import pytest, torch
import torch.nn.functional as F
from hypothesis import given, settings, example, strategies as st
from fastai.vision.all import CrossEntropyLossFlat
from mixaug_fastai.all import *
from test_callbacks import naive_mix
from conftest import possible_centres

CASES = Counter()
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]

def drive_batch(cb, images:torch.Tensor, labels:torch.Tensor, epoch:int=0, n_epoch:int=1):
    "Run `cb` over one training batch on a stand-in learner: before_fit, before_batch, a plain loss, after_loss. Returns the learner."
    learn = SimpleNamespace(cbs=[cb], loss_func=CrossEntropyLossFlat(), xb=(images,), yb=(labels,), epoch=epoch, n_epoch=n_epoch)
    cb.learn = learn
    cb.before_fit(); cb.before_batch()
    learn.pred = torch.randn(len(labels), 4, generator=torch.Generator().manual_seed(len(labels)))
    learn.loss_grad = learn.loss_func(learn.pred, *learn.yb); learn.loss = learn.loss_grad.clone()
    learn.plain_loss = learn.loss.clone()
    cb.after_loss()
    return learn

image_shapes = st.tuples(st.integers(1, 3), st.sampled_from([1, 3, 4]), st.integers(1, 40), st.integers(1, 40)) | \
               st.tuples(st.integers(1, 3), st.sampled_from([1, 3]), st.integers(100, 140), st.integers(100, 140))  # per-sample loop
batches = st.builds(lambda shape, dtype, channels_last, seed: (shape, dtype, channels_last and shape[1] > 1, seed),
                    image_shapes, st.sampled_from(DTYPES), st.booleans(), st.integers(0, 2**32))
alphas = st.floats(min_value=0., max_value=100., exclude_min=True) | st.floats(min_value=1e299, max_value=1e301)
probabilities = st.floats(0., 1.)

def make_batch(shape, dtype, channels_last, seed):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(shape, generator=g) * 4 - 2).to(dtype)
    if channels_last: images = images.contiguous(memory_format=torch.channels_last)
    return images, torch.randint(0, 4, (shape[0],), generator=g)

def check_in_place(learn, images, channels_last):
    "The batch the learner goes on with is `images`, changed in place: same dtype and memory format, all finite."
    out = learn.xb[0]
    assert out is images and torch.isfinite(out.float()).all()
    assert not channels_last or out.is_contiguous(memory_format=torch.channels_last)

# Edge cases run on every run as explicit examples, beside the generated ones; a case that fails under any profile joins them.
@settings(max_examples=250, deadline=None)
@given(batches, alphas, probabilities, st.sampled_from(['MixUp', 'MixUp per batch', 'CutMix', 'CutMix per sample', 'MixUpCutMix']))
@example(((1, 3, 8, 8), torch.float32, False, 0), 1., 1., 'MixUp').via('a batch of one: no partner, left alone')
@example(((2, 1, 1, 1), torch.float16, False, 0), 1e300, 1., 'CutMix per sample').via('one-pixel images, the largest alpha')
@example(((3, 3, 120, 130), torch.bfloat16, True, 1), SMALLEST_ALPHA, 1., 'MixUpCutMix').via('per-sample loop, lam at 0 or 1')
@example(((2, 4, 5, 5), torch.float64, False, 2), 1e301, .5, 'CutMix').via('an alpha above the largest: refused')
def test_pairing_callbacks_keep_their_invariants(batch, alpha, p_batch, kind):
    CASES['pairing callbacks'] += 1
    shape, dtype, channels_last, seed = batch
    make = {'MixUp': lambda: MixUp(alpha, p_batch=p_batch, seed=seed), 'MixUp per batch': lambda: MixUp(alpha, p_batch=p_batch, per_sample=False, own_dominates=False, seed=seed),
            'CutMix': lambda: CutMix(alpha, p_batch=p_batch, seed=seed), 'CutMix per sample': lambda: CutMix(alpha, p_batch=p_batch, per_sample=True, seed=seed),
            'MixUpCutMix': lambda: MixUpCutMix(alpha, alpha, p_batch=p_batch, seed=seed)}[kind]
    if not SMALLEST_ALPHA <= alpha <= LARGEST_ALPHA:  # the documented refusal
        with pytest.raises(ValueError, match=r'alpha must be a number in \[1e-300, 1e\+300\]'): make()
        return
    images, labels = make_batch(shape, dtype, channels_last, seed)
    raw, cb = images.clone(), make()
    learn = drive_batch(cb, images, labels)
    check_in_place(learn, images, channels_last)
    if cb.draw is None:  # not augmented: p_batch said no, or a batch of one has no partner
        assert torch.equal(images, raw) and torch.equal(learn.loss, learn.plain_loss) and cb.lam is None
        assert p_batch < 1 or shape[0] == 1
        return
    bs = shape[0]
    assert p_batch > 0 and bs > 1
    assert sorted(cb.perm.tolist()) == list(range(bs)) and (cb.perm != torch.arange(bs)).all()
    lam = torch.as_tensor(cb.lam, dtype=torch.float64).expand(bs)
    assert (torch.isfinite(lam) & (lam >= 0) & (lam <= 1)).all()
    expected = naive_mix(raw.float(), cb.draw)
    # CutMix copies pixels: exact; MixUp blends in the batch's dtype: a few units in its last place on values in [-2, 2]
    tolerance = 0 if isinstance(cb.draw, CutMixDraw) else {torch.float16: 1e-2, torch.bfloat16: 5e-2}.get(dtype, 1e-5)
    assert torch.allclose(images.float(), expected.to(dtype).float(), atol=tolerance, rtol=0)
    if isinstance(cb.draw, CutMixDraw):  # CutMix: lam is the exact fraction of own pixels
        own = torch.ones(bs, shape[2], shape[3], dtype=torch.float64)
        for i, (t, l, b, r) in enumerate(cb.draw.boxes.tolist() * (bs if len(cb.draw.boxes) == 1 else 1)): own[i, t:b, l:r] = 0
        assert torch.allclose(own.mean((1, 2)), lam, atol=1e-12)
    own_loss = F.cross_entropy(learn.pred.double(), labels, reduction='none')
    partner_loss = F.cross_entropy(learn.pred.double(), labels[cb.perm], reduction='none')
    assert torch.allclose(learn.loss.double(), (lam * own_loss + (1 - lam) * partner_loss).mean(), rtol=1e-5)

fills = st.one_of(st.floats(-3, 3), st.just('noise'), st.lists(st.floats(-3, 3), min_size=1, max_size=4))
lengths = st.one_of(st.integers(1, 400), st.floats(min_value=0., max_value=1., exclude_min=True))

@settings(max_examples=200, deadline=None)
@given(batches, st.integers(1, 6), lengths, fills, probabilities)
@example(((1, 1, 1, 1), torch.float32, False, 0), 1, 1, 0., 1.).via('a one-pixel image, a batch of one: Cutout needs no partner')
@example(((3, 3, 101, 120), torch.float16, True, 3), 6, 400, 'noise', 1.).via('holes larger than the image, noise, per-sample loop')
@example(((2, 3, 9, 7), torch.bfloat16, False, 4), 2, .5, [1., -2.], 1.).via('a fill with the wrong number of channels')
def test_cutout_keeps_its_invariants(batch, n_holes, length, fill, p_batch):
    CASES['Cutout'] += 1
    shape, dtype, channels_last, seed = batch
    images, labels = make_batch(shape, dtype, channels_last, seed)
    raw, cb = images.clone(), Cutout(n_holes, length, p_batch=p_batch, fill=fill, seed=seed)
    if isinstance(fill, list) and len(fill) != shape[1]:  # one value per channel, checked on every training batch, augmented or not
        with pytest.raises(ValueError, match='^fill must be one value per channel'): drive_batch(cb, images, labels)
        return
    learn = drive_batch(cb, images, labels)
    check_in_place(learn, images, channels_last)
    assert torch.equal(learn.yb[0], labels) and torch.equal(learn.loss, learn.plain_loss) and cb.lam is None  # labels and loss untouched
    if cb.holes is None: assert torch.equal(images, raw) and p_batch < 1; return
    side = length if isinstance(length, int) else max(1, round(length * min(shape[2:])))
    inside = torch.zeros(shape[0], shape[2], shape[3], dtype=torch.bool)
    for i, holes in enumerate(cb.holes.tolist()):
        for t, l, b, r in holes:
            # a square of `side` around a pixel of the image, clipped at the border: exactly, not just at most `side`
            assert possible_centres(t, b, shape[2], side) and possible_centres(l, r, shape[3], side)
            inside[i, t:b, l:r] = True
    if side // 2 >= max(shape[2:]): assert inside.all()  # a hole larger than twice the image covers it wherever its centre falls
    outside = ~inside[:, None].expand(shape)
    assert torch.equal(images[outside], raw[outside])
    if fill != 'noise':
        value = torch.tensor(fill if isinstance(fill, list) else [fill] * shape[1], dtype=dtype).view(1, -1, 1, 1).expand(shape)
        assert torch.equal(images[~outside], value[~outside])

@settings(max_examples=150, deadline=None)
@given(st.data())
def test_bad_parameters_raise_the_documented_error(data):
    CASES['bad parameters'] += 1
    bad_alpha = data.draw(st.floats(max_value=0.) | st.floats(min_value=0., max_value=SMALLEST_ALPHA, exclude_max=True)
                          | st.floats(min_value=LARGEST_ALPHA, exclude_min=True)
                          | st.just(math.inf) | st.just(math.nan) | st.just('1'))
    bad_probability = data.draw(st.floats(max_value=0., exclude_max=True) | st.floats(min_value=1., exclude_min=True) | st.just(math.nan))
    bad_n_holes = data.draw(st.integers(max_value=0) | st.floats(1, 5) | st.just(True))
    bad_length = data.draw(st.integers(max_value=0) | st.floats(max_value=0.) | st.floats(min_value=1., exclude_min=True) | st.just('16'))
    bad_fill = data.draw(st.sampled_from([math.inf, -math.inf, math.nan, 'red', (), (0., math.nan, 1.), ('0', 0., 1.)]))
    make, name = data.draw(st.sampled_from([
        (lambda: MixUp(bad_alpha), 'alpha'), (lambda: CutMix(bad_alpha), 'alpha'), (lambda: MixUpCutMix(cutmix_alpha=bad_alpha), 'cutmix_alpha'),
        (lambda: MixUp(p_batch=bad_probability), 'p_batch'), (lambda: Cutout(p_batch=bad_probability), 'p_batch'),
        (lambda: MixUpCutMix(switch_prob=bad_probability), 'switch_prob'), (lambda: Cutout(n_holes=bad_n_holes), 'n_holes'),
        (lambda: Cutout(length=bad_length), 'length'), (lambda: Cutout(fill=bad_fill), 'fill')]))
    with pytest.raises(ValueError, match=rf'^{name} must be .*; got {name}='): make()
