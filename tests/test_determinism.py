"Same seed, same training: bit-identical losses on the CPU, in the main process and with DataLoader worker processes."
import functools
import pytest, torch
from fastai.vision.all import set_seed
from conftest import make_dls, make_learner
from test_callbacks import ALL_CALLBACKS
from test_precision import CALLBACK_NAMES

def training_record(make_cb, num_workers:int):
    "Every training loss, validation value and final weight of a fit after `set_seed(0)`, with unseeded callbacks."
    set_seed(0)
    learn = make_learner(make_dls(num_workers=num_workers))
    learn.fit(1, 1e-2, cbs=make_cb() if make_cb else None)
    return ([loss.item() for loss in learn.recorder.losses], learn.recorder.values,
            [p.detach().clone() for p in learn.model.parameters()])

@functools.cache
def losses_without_callback(num_workers:int) -> list: return training_record(None, num_workers)[0]

def identical(a, b) -> bool:
    return a[0] == b[0] and a[1] == b[1] and all(torch.equal(x, y) for x, y in zip(a[2], b[2]))

@pytest.mark.parametrize('num_workers', [0, 2], ids=['main-process', '2-workers'])
@pytest.mark.parametrize('make_cb', ALL_CALLBACKS, ids=CALLBACK_NAMES)
def test_same_seed_gives_bit_identical_losses(make_cb, num_workers):
    first, second = training_record(make_cb, num_workers), training_record(make_cb, num_workers)
    assert identical(first, second)
    assert first[0] != losses_without_callback(num_workers)  # and the callback did change the training
