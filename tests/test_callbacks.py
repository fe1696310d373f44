"The callbacks inside real fastai Learners on small generated image sets."
import pickle
from types import SimpleNamespace
import pytest, torch
import torch.nn.functional as F
from scipy import stats
from fastai.vision.all import (Callback, Learner, CancelFitException, CancelBatchException, BCEWithLogitsLossFlat, CrossEntropyLossFlat,
                               DataLoaders, TensorImage, TensorMultiCategory, set_seed, vision_learner, load_learner, accuracy)
from mixaug_fastai.all import *
from conftest import make_dls, make_learner, colour_items, tiny_model, write_image_folder, possible_centres

ALL_CALLBACKS = [lambda: MixUp(), lambda: CutMix(), lambda: MixUpCutMix(), lambda: Cutout()]

class RecordBefore(Callback):
    "Keeps each training batch as it was before the augmentation callbacks (order 0) ran."
    order, run_valid = -1, False
    def __init__(self): super().__init__(); self.batches = []
    def before_batch(self): self.batches.append(dict(raw=self.learn.xb[0].clone(), y=self.learn.y.clone()))

class RecordAfter(Callback):
    "Adds the augmented batch, what `cb` exposed, and the loss the learner will back-propagate."
    order, run_valid = 1, False
    def __init__(self, cb, batches): super().__init__(); self.cb, self.batches = cb, batches
    def before_batch(self): self.batches[-1].update(augmented=self.learn.xb[0].clone(), draw=self.cb.draw, lam=self.cb.lam, perm=self.cb.perm)
    def after_loss(self): self.batches[-1].update(pred=self.learn.pred.detach(), loss=self.learn.loss.detach(), y_after=self.learn.y)

def recorded_fit(learn, cb, epochs=1, **kwargs):
    "Fit with `cb` between two recording callbacks; return the records of every training batch."
    before = RecordBefore()
    learn.fit(epochs, 1e-3, cbs=[before, cb, RecordAfter(cb, before.batches)], **kwargs)
    return before.batches

def naive_mix(raw, draw):
    "Out-of-place reference for a MixUp or CutMix draw."
    partners = raw[draw.perm]
    partner_weight = (1 - torch.as_tensor(draw.lam, dtype=torch.float64)).expand(len(raw)).float().view(-1, 1, 1, 1)
    if isinstance(draw, MixUpDraw): return torch.lerp(raw, partners, partner_weight)
    out, rows = raw.clone(), draw.boxes.tolist() * (len(raw) if len(draw.boxes) == 1 else 1)
    for i, (t, l, b, r) in enumerate(rows): out[i, :, t:b, l:r] = partners[i, :, t:b, l:r]
    return out

def naive_augment(raw, draw):
    "Out-of-place reference for any draw: `naive_mix` for MixUp and CutMix, Cutout's default fill (0) in each hole."
    if not isinstance(draw, CutoutDraw): return naive_mix(raw, draw)
    out = raw.clone()
    for i, holes in enumerate(draw.holes.tolist()):
        for t, l, b, r in holes: out[i, :, t:b, l:r] = 0
    return out

def expected_loss(batch) -> torch.Tensor:
    "The papers' loss recomputed in float64 from what a recorded batch saw: lam-weighted for a mixed batch, plain otherwise."
    pred, y = batch['pred'].double(), batch['y']
    own = F.cross_entropy(pred, y, reduction='none')
    if batch['lam'] is None: return own.mean()
    lam = torch.as_tensor(batch['lam'], dtype=torch.float64, device=pred.device)
    return (lam * own + (1 - lam) * F.cross_entropy(pred, y[batch['perm'].to(y.device)], reduction='none')).mean()

def check_every_batch_augmented(batches, n_batches:int):
    "`n_batches` recorded training batches, each augmented as its draw says (checked out of place) and weighed by the papers' loss."
    assert len(batches) == n_batches
    for batch in batches:
        assert batch['draw'] is not None
        assert torch.equal(batch['augmented'], naive_augment(batch['raw'], batch['draw']))
        assert torch.allclose(batch['loss'].double(), expected_loss(batch), rtol=1e-5)

@pytest.mark.parametrize('make_cb', ALL_CALLBACKS)
def test_fit_learner_cbs_and_fine_tune_with_a_timm_architecture(make_cb):
    "The callback given to `fit`, to the `Learner`, and to `fine_tune` on a timm body: every batch of every fit augmented and weighed."
    cb = make_cb()
    learn = make_learner(make_dls(num_workers=0))
    check_every_batch_augmented(recorded_fit(learn, cb), len(learn.dls.train))
    cb, before = make_cb(), RecordBefore()
    learn = make_learner(make_dls(num_workers=0), cbs=cb)
    learn.fit(1, 1e-3, cbs=[before, RecordAfter(cb, before.batches)])
    check_every_batch_augmented(before.batches, len(learn.dls.train))
    cb, before = make_cb(), RecordBefore()
    learn = vision_learner(make_dls(num_workers=0), 'resnet10t', pretrained=False, n_out=4, loss_func=CrossEntropyLossFlat())
    loss_func, cbs = learn.loss_func, list(learn.cbs)
    learn.fine_tune(1, freeze_epochs=1, cbs=[before, cb, RecordAfter(cb, before.batches)])
    check_every_batch_augmented(before.batches, 2 * len(learn.dls.train))  # the frozen fit and the unfrozen one
    assert learn.loss_func is loss_func and list(learn.cbs) == cbs

@pytest.mark.parametrize('cb', [MixUp(.4, seed=1), MixUp(.4, per_sample=False, own_dominates=False, seed=1), CutMix(1., seed=1),
                                CutMix(1., per_sample=True, seed=1), MixUpCutMix(seed=1)], ids=repr)
def test_pixels_and_loss_are_the_papers(learn, cb):
    for batch in recorded_fit(learn, cb):
        draw = batch['draw']
        assert torch.equal(batch['augmented'], naive_mix(batch['raw'], draw))
        assert sorted(draw.perm.tolist()) == list(range(len(draw.perm))) and (draw.perm != torch.arange(len(draw.perm))).all()
        lam = torch.as_tensor(draw.lam, dtype=torch.float64).expand(len(draw.perm))
        own = F.cross_entropy(batch['pred'].double(), batch['y'], reduction='none')
        partner = F.cross_entropy(batch['pred'].double(), batch['y'][draw.perm], reduction='none')
        assert torch.allclose(batch['loss'].double(), (lam * own + (1 - lam) * partner).mean(), rtol=1e-5)
        assert torch.equal(batch['y_after'], batch['y'])  # labels are never rewritten

def test_cutmix_lam_is_the_fraction_of_own_pixels_on_non_square_images(learn):
    for batch in recorded_fit(learn, CutMix(1., per_sample=True, seed=2)):
        own_pixels = (batch['augmented'] == batch['raw']).all(1).double().mean((1, 2))  # colours differ across samples
        distinct = (batch['raw'][batch['perm']] != batch['raw']).any(1).all((1, 2))  # partner differs at every pixel
        assert torch.allclose(own_pixels[distinct], batch['lam'][distinct], atol=1e-12)

def test_multi_label_bce_with_per_sample_lam():
    items = [(x, TensorMultiCategory(F.one_hot(y, 4).float() + (torch.arange(4) == (y + 1) % 4).float())) for x, y in colour_items(48, 24, 40, 0)]
    dls = DataLoaders.from_dsets(items[:36], items[36:], bs=8, device='cpu')
    learn = Learner(dls, tiny_model(), loss_func=BCEWithLogitsLossFlat())
    for batch in recorded_fit(learn, MixUp(.4, seed=0)):
        lam = batch['lam'].view(-1, 1)
        own = F.binary_cross_entropy_with_logits(batch['pred'].double(), batch['y'].double(), reduction='none')
        partner = F.binary_cross_entropy_with_logits(batch['pred'].double(), batch['y'][batch['perm']].double(), reduction='none')
        assert torch.allclose(batch['loss'].double(), (lam * own + (1 - lam) * partner).mean(), rtol=1e-5)

@pytest.mark.parametrize('cb', [CutMix(1., seed=3), MixUp(.4, per_sample=False, seed=3)], ids=repr)
def test_one_lam_per_batch_weighs_a_loss_function_without_reduction(cb):
    "mixup_criterion literally: lam * loss(pred, y) + (1 - lam) * loss(pred, y[perm]) on whatever the loss returns, here a squared hinge with no reduction to set."
    squared_hinge = lambda pred, y: (F.relu(1 - pred.gather(1, y[:, None]) + pred) ** 2).mean()
    learn = make_learner(loss_func=squared_hinge)
    for batch in recorded_fit(learn, cb):
        pred, y = batch['pred'].double(), batch['y']
        expected = batch['lam'] * squared_hinge(pred, y) + (1 - batch['lam']) * squared_hinge(pred, y[batch['perm']])
        assert isinstance(batch['lam'], float) and torch.allclose(batch['loss'].double(), expected, rtol=1e-5)

FILL = torch.tensor([1., 2., 3.]).view(1, 3, 1, 1)  # 2 and 3 are out of the generated images' range [0, 0.9]: only erased pixels hold them

def erased_rectangles(raw, augmented, fill=FILL) -> list[tuple]:
    """From the pixels alone, each sample's erased region (pixels holding `fill`, (1, channels, 1, 1)) as (top, left, bottom, right), after
    checking that it is one filled rectangle and that every other pixel is untouched."""
    erased = (augmented == fill).all(1)
    assert torch.equal(augmented.masked_select(~erased[:, None]), raw.masked_select(~erased[:, None]))
    rectangles = []
    for region in erased:
        rows, columns = region.any(1).nonzero()[:, 0], region.any(0).nonzero()[:, 0]
        assert len(rows) > 0  # a hole's centre is in the image, so no hole is clipped away
        t, l, b, r = rows[0].item(), columns[0].item(), rows[-1].item() + 1, columns[-1].item() + 1
        assert region[t:b, l:r].all() and region.sum() == (b - t) * (r - l)  # a filled rectangle, nothing else
        rectangles.append((t, l, b, r))
    return rectangles

# (length, the side in pixels worked out by hand for the 24 x 40 images): an int is pixels, a float the fraction of the shorter side
@pytest.mark.parametrize('length,side', [(7, 7), (.5, 12), (1, 1), (.25, 6)])
def test_cutout_holes_have_the_exact_side_from_the_pixels(learn, length, side):
    "Each erased region, found from the pixels alone, is a square of `side` around a pixel of the image, clipped at the border; each sample has its own."
    cb = Cutout(n_holes=1, length=length, fill=(1., 2., 3.), seed=0)
    batches, interior = recorded_fit(learn, cb, epochs=2), 0
    for batch in batches:
        height, width = batch['raw'].shape[-2:]
        rectangles = erased_rectangles(batch['raw'], batch['augmented'])
        for t, l, b, r in rectangles:
            assert possible_centres(t, b, height, side) and possible_centres(l, r, width, side)
            interior += 0 < t and b < height and 0 < l and r < width
        assert len(set(rectangles)) > 1  # holes drawn per sample, not once for the batch
        assert [tuple(h) for h in batch['draw'].holes[:, 0].tolist()] == rectangles  # the holes exposed are the ones erased
        assert batch['lam'] is None and batch['perm'] is None and torch.equal(batch['y_after'], batch['y'])
        assert torch.equal(batch['loss'], F.cross_entropy(batch['pred'], batch['y']))  # Cutout leaves the loss alone
    assert interior > len(batches)  # the exact side was seen away from the border, where clipping cannot hide it

def test_cutout_with_several_holes_erases_their_union(learn):
    cb = Cutout(n_holes=3, length=5, fill=(1., 2., 3.), seed=1)
    for batch in recorded_fit(learn, cb):
        height, width = batch['raw'].shape[-2:]
        inside = torch.zeros(len(batch['raw']), height, width, dtype=torch.bool)
        for i, holes in enumerate(batch['draw'].holes.tolist()):
            for t, l, b, r in holes:
                assert possible_centres(t, b, height, 5) and possible_centres(l, r, width, 5)
                inside[i, t:b, l:r] = True
        assert torch.equal((batch['augmented'] == FILL).all(1), inside)
        assert torch.equal(batch['augmented'].masked_select(~inside[:, None]), batch['raw'].masked_select(~inside[:, None]))

def test_p_batch_leaves_the_other_batches_plain():
    learn = make_learner(make_dls(n=160, bs=4, num_workers=0))
    batches = recorded_fit(learn, CutMix(1., p_batch=.5, seed=0))
    plain = [b for b in batches if b['lam'] is None]
    assert 0 < len(plain) < len(batches)  # the rate itself is tested below, on thousands of batches
    for b in plain:
        assert torch.equal(b['augmented'], b['raw'])
        assert torch.equal(b['loss'], F.cross_entropy(b['pred'], b['y']))
    check_every_batch_augmented([b for b in batches if b['lam'] is not None], len(batches) - len(plain))

def draws_over_batches(cb, n_batches:int, bs:int=2) -> list:
    "`cb`'s draw for each of `n_batches` training batches of one fit (None: not augmented), driven through its batch events as fastai's loop does."
    learn = SimpleNamespace(cbs=[cb], loss_func=CrossEntropyLossFlat(), epoch=0, n_epoch=1)
    cb.learn = learn
    cb.before_fit()
    draws = []
    for _ in range(n_batches):
        learn.xb, learn.yb = (torch.rand(bs, 1, 4, 4),), (torch.zeros(bs, dtype=torch.long),)
        cb.before_batch()
        draws.append(cb.draw)
    return draws

RATE_BATCHES, FALSE_FAILURE = 4000, 1e-6

def binomial_bounds(n:int, p:float) -> tuple[int, int]:
    "The central range of Binomial(n, p) that holds a count with probability at least 1 - FALSE_FAILURE."
    law = stats.binom(n, p)
    return int(law.ppf(FALSE_FAILURE / 2)), int(law.isf(FALSE_FAILURE / 2)) + 1

def check_rate(count:int, n:int, p:float, wrong_rates:tuple):
    "`count` of `n` is what rate `p` gives, within bounds that a run at the right rate leaves with probability < FALSE_FAILURE and that any of `wrong_rates` would not meet."
    low, high = binomial_bounds(n, p)
    assert all(not low <= n * q <= high for q in wrong_rates)  # the bounds are tight enough to tell p from the wrong rates
    assert low <= count <= high, f"{count} of {n} at rate {p}: expected {low} to {high}"

# the decision is drawn from the callback's seeded generator, so each test sees the same counts on every run; the bounds say how likely
# a correct callback with another seed would be to fail (FALSE_FAILURE), and that a callback at a wrong rate (.4 or .6 for .5) fails
@pytest.mark.parametrize('make_cb', [lambda p: MixUp(p_batch=p, seed=0), lambda p: CutMix(p_batch=p, seed=0),
                                     lambda p: MixUpCutMix(p_batch=p, seed=0), lambda p: Cutout(p_batch=p, seed=0)],
                         ids=['MixUp', 'CutMix', 'MixUpCutMix', 'Cutout'])
@pytest.mark.parametrize('p_batch,wrong_rates', [(.5, (.4, .45, .55, .6)), (.1, (.05, .15)), (.9, (.85, .95))])
def test_p_batch_is_the_rate_of_augmented_batches(make_cb, p_batch, wrong_rates):
    draws = draws_over_batches(make_cb(p_batch), RATE_BATCHES)
    check_rate(sum(d is not None for d in draws), RATE_BATCHES, p_batch, wrong_rates)

@pytest.mark.parametrize('switch_prob', [0., .25, 1.])
def test_switch_prob_is_the_rate_of_cutmix_batches(switch_prob):
    draws = draws_over_batches(MixUpCutMix(switch_prob=switch_prob, seed=0), RATE_BATCHES)
    assert all(d is not None for d in draws)
    cutmix = sum(isinstance(d, CutMixDraw) for d in draws)
    if switch_prob in (0., 1.): assert cutmix == switch_prob * RATE_BATCHES  # exactly: never, always
    else: check_rate(cutmix, RATE_BATCHES, switch_prob, wrong_rates=(1 - switch_prob, .2, .3))

def zero_p_batch_fit(make_cb=None):
    "Losses, validation values and final weights of a 2-epoch fit after `set_seed(0)`, and each training batch recorded around `make_cb()`."
    set_seed(0)
    learn, cb = make_learner(make_dls(num_workers=0)), make_cb() if make_cb else None
    before = RecordBefore()
    learn.fit(2, 1e-2, cbs=[before] + ([cb, RecordAfter(cb, before.batches)] if cb else []))
    return learn.recorder.losses, learn.recorder.values, [p.detach().clone() for p in learn.model.parameters()], before.batches

ZERO_P_BATCH = [lambda seed: MixUp(p_batch=0., seed=seed), lambda seed: CutMix(p_batch=0., seed=seed),
                lambda seed: CutMix(p_batch=0., per_sample=True, seed=seed), lambda seed: MixUpCutMix(p_batch=0., seed=seed),
                lambda seed: Cutout(p_batch=0., seed=seed)]

@pytest.mark.parametrize('seed', [None, 0])
@pytest.mark.parametrize('make_cb', ZERO_P_BATCH, ids=['MixUp', 'CutMix', 'CutMix-per-sample', 'MixUpCutMix', 'Cutout'])
def test_p_batch_zero_is_bit_identical_to_no_callback(make_cb, seed):
    plain_losses, plain_values, plain_weights, plain_batches = zero_p_batch_fit()
    losses, values, weights, batches = zero_p_batch_fit(lambda: make_cb(seed))
    assert losses == plain_losses and values == plain_values and all(torch.equal(a, b) for a, b in zip(weights, plain_weights))
    assert len(batches) == len(plain_batches)
    for batch, plain in zip(batches, plain_batches):
        assert batch['draw'] is None and torch.equal(batch['augmented'], batch['raw']) and torch.equal(batch['raw'], plain['raw'])
        assert torch.equal(batch['loss'], F.cross_entropy(batch['pred'], batch['y']))

def test_batch_of_one_is_left_alone():
    dls = make_dls(n=12, bs=8, drop_last=False)  # 9 training items: batches of 8 and 1
    for batch in recorded_fit(make_learner(dls), MixUp(seed=0)):
        assert (batch['lam'] is None) == (len(batch['raw']) == 1)

def test_validate_get_preds_predict_and_show_results_are_untouched(folder_dls):
    import matplotlib; matplotlib.use('Agg')
    learn = Learner(folder_dls, tiny_model(2), loss_func=CrossEntropyLossFlat()); learn.fit(1)
    item = folder_dls.valid_ds.items[0]
    def outputs():
        set_seed(0); learn.show_results(max_n=2)
        return learn.validate(), learn.get_preds()[0], learn.predict(item)[2]
    plain = outputs()
    for cbs in ([MixUp(), Cutout()], [CutMix()]):  # one pairing callback at a time: two are refused (test_interplay.py)
        learn.add_cbs(cbs)
        with_cbs = outputs()
        assert plain[0] == with_cbs[0] and torch.equal(plain[1], with_cbs[1]) and torch.equal(plain[2], with_cbs[2])
        learn.remove_cbs(cbs)

class Boom(Exception): pass  # fastai re-raises callback errors with their first argument

@pytest.mark.parametrize('event,error', [('after_pred', Boom), ('before_backward', KeyboardInterrupt), ('after_loss', CancelFitException),
                                         ('before_batch', CancelBatchException)])
@pytest.mark.parametrize('make_cb', ALL_CALLBACKS)
def test_every_exit_path_leaves_the_learner_as_it_was(make_cb, event, error):
    learn, cb = make_learner(), make_cb()
    loss_func, cbs = learn.loss_func, list(learn.cbs)
    fired = []
    def fail(self): fired.append((self.training, self.iter)); raise error('mid-batch')
    fails = type('Fails', (Callback,), {'order': 5, event: fail})
    if error in (Boom, KeyboardInterrupt):  # these end the fit and reach the caller
        with pytest.raises(error, match='mid-batch'): learn.fit(1, cbs=[cb, fails()])
    else: learn.fit(1, cbs=[cb, fails()])  # fastai handles its cancellations inside the fit
    # the failure fired: once, in the first training batch, except a cancelled batch, after which the fit goes on to the next, validation included
    every_batch = [(True, i) for i in range(len(learn.dls.train))] + [(False, i) for i in range(len(learn.dls.valid))]
    assert fired == (every_batch if error is CancelBatchException else [(True, 0)])
    assert learn.loss_func is loss_func and learn.loss_func.reduction == 'mean' and list(learn.cbs) == cbs
    learn.fit(1, cbs=cb)  # the same callback object trains again
    assert learn.loss_func is loss_func

def test_same_seed_same_losses_different_seed_different_losses():
    def losses(**kwargs):
        set_seed(0); learn = make_learner(); learn.fit(1, 1e-2, cbs=CutMix(**kwargs)); return learn.recorder.losses
    assert losses(seed=3) == losses(seed=3) != losses(seed=4)
    assert losses() == losses()  # seeded by set_seed through torch's global generator

def test_skip_last_epochs_and_the_switch(learn):
    batches = recorded_fit(learn, MixUpCutMix(switch_prob=.5, skip_last_epochs=1, seed=0), epochs=3)
    per_epoch = len(batches) // 3
    assert all(b['lam'] is not None for b in batches[:2 * per_epoch]) and all(b['lam'] is None for b in batches[2 * per_epoch:])
    kinds = {isinstance(b["draw"], MixUpDraw) for b in batches[:2 * per_epoch]}
    assert kinds == {True, False}  # both MixUp and CutMix batches occurred

@pytest.mark.parametrize('make,message', [
    (lambda: MixUp(0.), "alpha must be"), (lambda: CutMix(float('inf')), "alpha must be"), (lambda: MixUp(p_batch=-.1), "p_batch must be"),
    (lambda: Cutout(n_holes=0), "n_holes must be"), (lambda: Cutout(length=0), "length must be"), (lambda: Cutout(length=2.), "length must be"),
    (lambda: Cutout(fill='zero'), "fill must be"), (lambda: MixUpCutMix(switch_prob=1.5), "switch_prob must be"),
    (lambda: CutMix(skip_last_epochs=-1), "skip_last_epochs must be"), (lambda: MixUp(seed=1.5), "seed must be")])
def test_bad_parameters_are_rejected_at_construction(make, message):
    with pytest.raises(ValueError, match=message): make()

def test_bad_batches_and_losses_are_rejected_at_fit_time():
    tabular = DataLoaders.from_dsets([(torch.randn(5), 0)] * 8, [(torch.randn(5), 0)] * 8, bs=4, device='cpu')
    with pytest.raises(TypeError, match=r'shape \(4, 5\)'): Learner(tabular, torch.nn.Linear(5, 2), loss_func=CrossEntropyLossFlat()).fit(1, cbs=CutMix())
    as_bytes = DataLoaders.from_dsets([(torch.zeros(3, 8, 8, dtype=torch.uint8), 0)] * 8, [(torch.zeros(3, 8, 8, dtype=torch.uint8), 0)] * 8, bs=4, device='cpu')
    with pytest.raises(TypeError, match='torch.uint8'): Learner(as_bytes, tiny_model(), loss_func=CrossEntropyLossFlat()).fit(1, cbs=MixUp())
    for per_sample in (MixUp(), CutMix(per_sample=True), MixUpCutMix()):  # a per-sample lam weighs the loss of each sample
        with pytest.raises(TypeError, match='reduction'): make_learner(loss_func=lambda pred, y: F.cross_entropy(pred, y)).fit(1, cbs=per_sample)
    # a per-channel fill that does not fit the images fails on the first training batch, even one p_batch leaves alone
    with pytest.raises(ValueError, match=r'fill must be one value per channel \(3 channels\)'): make_learner().fit(1, cbs=Cutout(fill=(0., 1.), p_batch=0.))

def folder_dls_seeded(path):
    "Image-folder DataLoaders built after `set_seed(0)`: two built so shuffle their training batches alike."
    from fastai.vision.all import ImageDataLoaders
    set_seed(0)
    return ImageDataLoaders.from_folder(path, valid_pct=.25, seed=0, bs=6, device='cpu', num_workers=0)

def train_on(learn, cb, dls):
    "Go on training `learn` (its callback `cb` attached) on `dls` from a fresh optimizer after `set_seed(0)`; the recorded training batches."
    learn.dls, before = dls, RecordBefore()
    set_seed(0)
    learn.fit(2, 1e-2, reset_opt=True, cbs=[before, RecordAfter(cb, before.batches)])
    return before.batches

@pytest.mark.parametrize('make_cb', [lambda: CutMix(.7, p_batch=.6, seed=5), lambda: MixUp(.3, p_batch=.6, seed=5),
                                     lambda: MixUpCutMix(.3, .7, switch_prob=.4, p_batch=.6, seed=5), lambda: Cutout(2, 5, p_batch=.6, seed=5)],
                         ids=['CutMix', 'MixUp', 'MixUpCutMix', 'Cutout'])
def test_export_load_learner_and_train_on(make_cb, tmp_path):
    "The callback survives `export`/`load_learner` with its settings, and the loaded learner trains on with it exactly as the original does."
    path = write_image_folder(tmp_path / 'images')
    learn = Learner(folder_dls_seeded(path), tiny_model(2), loss_func=CrossEntropyLossFlat(), cbs=make_cb()); learn.fit(1)
    learn.export(tmp_path / 'model.pkl')
    loaded = load_learner(tmp_path / 'model.pkl')
    original, cb = (next(c for c in l.cbs if isinstance(c, MixAugmentation)) for l in (learn, loaded))
    settings = lambda c: {k: v for k, v in vars(c).items() if k in ('alpha', 'p_batch', 'seed', 'switch_prob', 'n_holes', 'length', 'fill')}
    assert type(cb) is type(original) and cb is not original and settings(cb) == settings(original) and settings(cb)
    item = path / 'red' / '0.png'
    assert torch.equal(loaded.predict(item)[2], learn.predict(item)[2])  # inference: the callback does not run
    assert settings(pickle.loads(pickle.dumps(cb))) == settings(original)
    expected, batches = train_on(learn, original, folder_dls_seeded(path)), train_on(loaded, cb, folder_dls_seeded(path))
    assert loaded.recorder.losses == learn.recorder.losses and loaded.recorder.values == learn.recorder.values
    augmented = [b for b in batches if b['draw'] is not None]
    assert 0 < len(augmented) < len(batches)  # the loaded callback augments, at its p_batch
    check_every_batch_augmented(augmented, len(augmented))
    for batch, same in zip(batches, expected): assert torch.equal(batch['augmented'], same['augmented'])
