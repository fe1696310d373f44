"""Failure paths mid-batch and mid-epoch, compared with the same failure in a fit without our callback.

test_callbacks.py::test_every_exit_path_leaves_the_learner_as_it_was covers one failure per event in the first batch; here the failures
come later (the second batch, after our callback has augmented a batch and weighed a loss), CancelEpochException is added, and the
learner after the failure (loss function, model mode, callbacks, optimizer state) must be exactly what fastai leaves without our callback."""
import functools
import pytest, torch
from fastai.vision.all import Callback, CancelBatchException, CancelEpochException
from conftest import quick_learner
from test_callbacks import ALL_CALLBACKS, RecordBefore, RecordAfter
from test_precision import CALLBACK_NAMES, expected_loss

class Boom(Exception): pass

class FailOnSecondBatch(Callback):
    "Raises `error` at `event` of the second training batch of each epoch (order 5: after our callbacks, before fastai's trackers)."
    order, run_valid = 5, False
    def __init__(self, event, error):
        super().__init__(); self.error = error
        setattr(self, event, self.fail_on_second_batch)
    def fail_on_second_batch(self):
        if self.iter == 1: raise self.error('failure from another callback')

# right after our in-place augmentation, right after our loss weighing, between batches, and the two cancellations
SCENARIOS = [('before_batch', Boom), ('after_loss', Boom), ('after_batch', KeyboardInterrupt),
             ('after_loss', CancelBatchException), ('after_pred', CancelEpochException)]

def learner_state(learn):
    return dict(loss_func=learn.loss_func, reduction=learn.loss_func.reduction, training=learn.model.training, cbs=list(learn.cbs),
                epoch=learn.epoch, opt_steps=[s.get('step') for s in learn.opt.state.values()] if learn.opt else None)

def fit_and_fail(learn, cbs):
    "Fit 2 epochs; an exception that ends the fit is caught and returned."
    try: learn.fit(2, 1e-3, cbs=cbs)
    except (Boom, KeyboardInterrupt) as e: return type(e)

@functools.cache
def without_our_callback(event, error) -> tuple:
    "What the failure raises and leaves behind in a fit without our callback (the same for every callback: computed once)."
    baseline = quick_learner()
    raised = fit_and_fail(baseline, [FailOnSecondBatch(event, error)])
    return raised, {k: v for k, v in learner_state(baseline).items() if k not in ('loss_func', 'cbs')}

@pytest.mark.parametrize('event,error', SCENARIOS, ids=[f'{e.__name__}-in-{ev}' for ev, e in SCENARIOS])
@pytest.mark.parametrize('make_cb', ALL_CALLBACKS, ids=CALLBACK_NAMES)
def test_a_later_failure_leaves_the_learner_as_fastai_would(make_cb, event, error):
    raised_without, expected = without_our_callback(event, error)
    learn, cb = quick_learner(), make_cb()
    loss_func, cbs = learn.loss_func, list(learn.cbs)
    raised_with = fit_and_fail(learn, [cb, FailOnSecondBatch(event, error)])
    state = learner_state(learn)
    assert raised_with == raised_without and state.pop('loss_func') is loss_func and state.pop('cbs') == cbs
    assert state == expected
    # the same callback object trains again, and every batch of the next fit has the papers' loss
    before = RecordBefore()
    learn.fit(1, 1e-3, cbs=[before, cb, RecordAfter(cb, before.batches)])
    for batch in before.batches: assert torch.allclose(batch['loss'].double(), expected_loss(batch), rtol=1e-5)
    assert learn.loss_func is loss_func and list(learn.cbs) == cbs

@pytest.mark.parametrize('make_cb', ALL_CALLBACKS[:3], ids=CALLBACK_NAMES[:3])
def test_a_cancelled_batch_does_not_leak_its_draw_into_the_next(make_cb):
    "CancelBatchException after our after_loss on batch 2 of each epoch: every batch that trains is weighed with its own draw."
    learn, cb, before = quick_learner(), make_cb(), RecordBefore()
    learn.fit(2, 1e-3, cbs=[before, cb, RecordAfter(cb, before.batches), FailOnSecondBatch('after_loss', CancelBatchException)])
    assert len(before.batches) == 2 * len(learn.dls.train)
    assert all(batch['draw'] is not None for batch in before.batches)
    for batch in before.batches: assert torch.allclose(batch['loss'].double(), expected_loss(batch), rtol=1e-5)
