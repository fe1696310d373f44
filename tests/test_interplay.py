"Each callback next to the rest of fastai: fine_tune, lr_find, GradientAccumulation, early stopping and saving, summary, TTA, and other mixing callbacks."
import pytest, torch
from fastai.vision.all import (Callback, Learner, CrossEntropyLossFlat, GradientAccumulation, EarlyStoppingCallback, SaveModelCallback,
                               set_seed)
from fastai.callback.mixup import MixUp as FastaiMixUp, CutMix as FastaiCutMix
from mixaug_fastai.core import erase_
from mixaug_fastai.callbacks import MixUp, CutMix, MixUpCutMix, Cutout
from conftest import make_dls, quick_learner, tiny_model
from test_callbacks import ALL_CALLBACKS, RecordBefore, RecordAfter, naive_mix
from test_precision import CALLBACK_NAMES, expected_loss

each_callback = pytest.mark.parametrize('make_cb', ALL_CALLBACKS, ids=CALLBACK_NAMES)

class CountAugmented(Callback):
    "Per fit: the parameter group the optimizer is frozen up to, and how many training batches `cb` augmented."
    order, run_valid = 1, False
    def __init__(self, cb): super().__init__(); self.cb, self.fits = cb, []
    def before_fit(self): self.fits.append(dict(frozen_idx=self.learn.opt.frozen_idx, augmented=0))
    def after_batch(self): self.fits[-1]['augmented'] += self.cb.draw is not None

@each_callback
def test_fine_tune_augments_both_the_frozen_and_the_unfrozen_fit(make_cb):
    torch.manual_seed(0)
    model = tiny_model()
    learn = Learner(make_dls(num_workers=0), model, loss_func=CrossEntropyLossFlat(), splitter=lambda m: [list(m[0].parameters()), list(m[4].parameters())])
    loss_func, cb = learn.loss_func, make_cb()
    counter = CountAugmented(cb)
    learn.fine_tune(1, freeze_epochs=1, cbs=[cb, counter])
    batches = len(learn.dls.train)
    assert counter.fits == [dict(frozen_idx=1, augmented=batches), dict(frozen_idx=0, augmented=batches)]
    assert learn.loss_func is loss_func and cb not in learn.cbs

@each_callback
def test_lr_find_with_the_callback_attached(make_cb, tmp_path):
    cb = make_cb()
    learn = quick_learner(cbs=cb, path=tmp_path)
    loss_func, weights = learn.loss_func, [p.detach().clone() for p in learn.model.parameters()]
    suggestion = learn.lr_find(num_it=20, show_plot=False)
    assert 0 < suggestion.valley < 10 and cb.draw is not None  # it augmented while searching
    assert all(torch.equal(p, w) for p, w in zip(learn.model.parameters(), weights))  # lr_find put the weights back
    assert learn.loss_func is loss_func and not list((tmp_path / 'models').glob('*'))
    learn.fit(1)
    assert all(torch.isfinite(torch.tensor(v)).all() for v in learn.recorder.values)

class SeeBackward(Callback):
    "What is back-propagated, and how many optimizer steps are taken."
    order, run_valid = 20, False
    def __init__(self, batches): super().__init__(); self.batches, self.steps = batches, 0
    def before_backward(self): self.batches[-1]['loss_grad'] = self.learn.loss_grad.detach().clone()
    def after_step(self): self.steps += 1

@each_callback
def test_gradient_accumulation_scales_the_weighed_loss(make_cb):
    "GradientAccumulation (order 6) divides the loss our after_loss (order 0) weighed, not the plain one; steps every 16 samples."
    learn, cb, before = quick_learner(), make_cb(), RecordBefore()
    seen = SeeBackward(before.batches)
    learn.fit(1, 1e-3, cbs=[before, cb, RecordAfter(cb, before.batches), GradientAccumulation(n_acc=16), seen])
    for batch in before.batches:
        expected = expected_loss(batch)
        assert torch.allclose(batch['loss'].double(), expected, rtol=1e-5)
        assert torch.allclose(batch['loss_grad'].double(), expected * len(batch['y']) / 16, rtol=1e-5)
    assert seen.steps == len(before.batches) * 8 // 16

@each_callback
def test_early_stopping_and_save_model_see_the_plain_validation_loss(make_cb, tmp_path):
    learn = quick_learner(path=tmp_path)
    # min_delta=10: no epoch after the first counts as an improvement for early stopping, so the fit stops after 2 of 5 epochs;
    # SaveModelCallback (listed first, so it sees epoch 2 before the fit stops) then reloads the better of the two
    learn.fit(5, 1e-2, cbs=[make_cb(), SaveModelCallback(fname='best'), EarlyStoppingCallback(min_delta=10., patience=1)])
    assert len(learn.recorder.values) == 2 and (tmp_path / 'models' / 'best.pth').exists()
    best = min(valid_loss for _, valid_loss in learn.recorder.values)  # rows are (train_loss, valid_loss)
    assert abs(learn.validate()[0] - best) < 1e-6  # the trackers saw the unaugmented validation loss

@each_callback
def test_summary_lists_the_callback_and_augments_nothing(make_cb):
    cb = make_cb()
    learn = quick_learner(cbs=cb)
    loss_func, text = learn.loss_func, learn.summary()
    assert 'Total params' in text and f'  - {type(cb).__name__}' in text
    assert cb.draw is None and learn.loss_func is loss_func

@each_callback
def test_tta_is_not_augmented(make_cb, folder_dls):
    learn = Learner(folder_dls, tiny_model(2), loss_func=CrossEntropyLossFlat())
    learn.fit(1)
    set_seed(0); plain = learn.tta(n=2)
    cb = make_cb()
    learn.add_cb(cb)
    set_seed(0); with_cb = learn.tta(n=2)
    assert torch.equal(plain[0], with_cb[0]) and torch.equal(plain[1], with_cb[1]) and cb.draw is None

class RecordDraws(Callback):
    "The augmented batch and each callback's draw, next to RecordBefore's raw batch."
    order, run_valid = 1, False
    def __init__(self, cbs, batches): super().__init__(); self.cbs, self.batches = cbs, batches
    def before_batch(self): self.batches[-1].update(augmented=self.learn.xb[0].clone(), draws=[cb.draw for cb in self.cbs])
    def after_loss(self): self.batches[-1].update(pred=self.learn.pred.detach(), loss=self.learn.loss.detach())

@pytest.mark.parametrize('make_pairing', [lambda: MixUp(seed=1), lambda: CutMix(per_sample=True, seed=1)], ids=['MixUp', 'CutMix'])
@pytest.mark.parametrize('cutout_first', [False, True], ids=['mix-then-erase', 'erase-then-mix'])
def test_cutout_with_a_pairing_callback_in_either_order(make_pairing, cutout_first):
    pairing, cutout, before = make_pairing(), Cutout(n_holes=2, length=.3, fill=(1., 2., 3.), seed=2), RecordBefore()
    ours = [cutout, pairing] if cutout_first else [pairing, cutout]
    quick_learner().fit(1, 1e-3, cbs=[before, *ours, RecordDraws(ours, before.batches)])
    erase = lambda images, draw: erase_(images.clone(), draw.holes, (1., 2., 3.))
    for batch in before.batches:
        draws = dict(zip(map(type, ours), batch['draws']))
        mix_draw, cutout_draw = draws[type(pairing)], draws[Cutout]
        expected = (naive_mix(erase(batch['raw'], cutout_draw), mix_draw) if cutout_first else erase(naive_mix(batch['raw'], mix_draw), cutout_draw))
        assert torch.equal(batch['augmented'], expected)
        batch.update(lam=mix_draw.lam, perm=mix_draw.perm)
        assert torch.allclose(batch['loss'].double(), expected_loss(batch), rtol=1e-5)  # the pairing's lam, holes or not

PAIRS = [(MixUp, FastaiMixUp, True), (CutMix, FastaiCutMix, False), (MixUpCutMix, FastaiMixUp, False), (CutMix, FastaiMixUp, True),
         (MixUp, CutMix, True), (MixUpCutMix, MixUp, False)]

@pytest.mark.parametrize('ours,theirs,ours_first', PAIRS, ids=[f"{o.__name__}-{'fastai' if t.__module__.startswith('fastai') else 'our'}-{t.__name__}" for o, t, _ in PAIRS])
def test_two_pairing_callbacks_are_refused_before_training(ours, theirs, ours_first):
    learn = quick_learner()
    loss_func, cbs, weights = learn.loss_func, list(learn.cbs), [p.detach().clone() for p in learn.model.parameters()]
    ours, other = ours(), theirs()
    with pytest.raises(ValueError, match=r"both mix each image with a partner.*attach one of them") as error:
        learn.fit(1, cbs=[ours, other] if ours_first else [other, ours])
    fastais = "fastai's " if isinstance(other, (FastaiMixUp, FastaiCutMix)) else ''
    assert type(ours).__name__ in str(error.value) and f'{fastais}{theirs.__name__}' in str(error.value)
    assert learn.loss_func is loss_func and list(learn.cbs) == cbs
    assert all(torch.equal(p, w) for p, w in zip(learn.model.parameters(), weights))  # refused before any step
    learn.fit(1, cbs=ours)
    assert ours.draw is not None and learn.loss_func is loss_func

def test_cutout_next_to_fastais_mixup_is_allowed():
    learn, cutout = quick_learner(), Cutout(seed=0)
    learn.fit(1, cbs=[cutout, FastaiMixUp()])
    assert cutout.holes is not None and all(torch.isfinite(torch.tensor(v)).all() for v in learn.recorder.values)
