"The callbacks inside real fastai Learners on small generated image sets."
import pickle
import pytest, torch
import torch.nn.functional as F
from fastai.vision.all import (Callback, Learner, CancelFitException, CancelBatchException, BCEWithLogitsLossFlat, CrossEntropyLossFlat,
                               DataLoaders, TensorImage, TensorMultiCategory, set_seed, vision_learner, load_learner, accuracy)
from mixaug_fastai.all import *
from conftest import make_dls, make_learner, colour_items, tiny_model

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
    if draw.boxes is None: return torch.lerp(raw, partners, partner_weight)
    out, rows = raw.clone(), draw.boxes.tolist() * (len(raw) if len(draw.boxes) == 1 else 1)
    for i, (t, l, b, r) in enumerate(rows): out[i, :, t:b, l:r] = partners[i, :, t:b, l:r]
    return out

@pytest.mark.parametrize('make_cb', ALL_CALLBACKS)
def test_fit_learner_cbs_and_fine_tune_with_a_timm_architecture(make_cb):
    make_learner().fit(1, cbs=make_cb())
    make_learner(cbs=make_cb()).fit(1)
    learn = vision_learner(make_dls(), 'resnet10t', pretrained=False, n_out=4, loss_func=CrossEntropyLossFlat())
    learn.fine_tune(1, cbs=make_cb(), freeze_epochs=1)
    assert all(torch.isfinite(torch.tensor(v[0])) for v in learn.recorder.values)

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

def test_cutout_erases_holes_and_leaves_labels_and_loss_alone(learn):
    cb = Cutout(n_holes=2, length=7, fill=(1., 2., 3.), seed=0)
    for batch in recorded_fit(learn, cb):
        expected = batch['raw'].clone()
        for i, holes in enumerate(batch['draw'].holes.tolist()):
            for t, l, b, r in holes: expected[i, :, t:b, l:r] = torch.tensor([1., 2., 3.]).view(3, 1, 1)
        assert torch.equal(batch['augmented'], expected) and batch['lam'] is None and batch['perm'] is None
        assert torch.allclose(batch['loss'], F.cross_entropy(batch['pred'], batch['y']))

def test_p_batch_augments_that_fraction_and_leaves_the_rest_plain():
    learn = make_learner(make_dls(n=400, bs=4))
    batches = recorded_fit(learn, CutMix(1., p_batch=.5, seed=0))
    augmented = [b for b in batches if b['lam'] is not None]
    assert 30 <= len(augmented) <= 70  # 75 batches, Binomial(75, .5): mean 37.5, 6 sd from 30 to 70
    for b in batches:
        if b['lam'] is None:
            assert torch.equal(b['augmented'], b['raw'])
            assert torch.equal(b['loss'], F.cross_entropy(b['pred'], b['y']))

@pytest.mark.parametrize('seed', [None, 0])
def test_p_batch_zero_is_bit_identical_to_no_callback(seed):
    set_seed(0); plain = make_learner(); plain.fit(2, 1e-2)
    set_seed(0); zero = make_learner(); zero.fit(2, 1e-2, cbs=MixUp(p_batch=0., seed=seed))
    assert plain.recorder.losses == zero.recorder.losses and plain.recorder.values == zero.recorder.values

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
    fails = type('Fails', (Callback,), {'order': 5, event: lambda self: (_ for _ in ()).throw(error('mid-batch'))})
    try: learn.fit(1, cbs=[cb, fails()])
    except (Boom, KeyboardInterrupt): pass
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
    kinds = {b['draw'].boxes is None for b in batches[:2 * per_epoch]}
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

def test_export_and_load_learner_with_the_callback_attached(folder_dls, tmp_path):
    learn = Learner(folder_dls, tiny_model(2), loss_func=CrossEntropyLossFlat(), cbs=CutMix(.7, p_batch=.3, seed=5)); learn.fit(1)
    learn.export(tmp_path / 'model.pkl')
    loaded = load_learner(tmp_path / 'model.pkl')
    cb = next(c for c in loaded.cbs if isinstance(c, CutMix))
    assert (cb.alpha, cb.p_batch, cb.seed) == (.7, .3, 5)
    item = folder_dls.valid_ds.items[0]
    assert torch.equal(loaded.predict(item)[2], learn.predict(item)[2])
    assert pickle.loads(pickle.dumps(cb)).alpha == .7
