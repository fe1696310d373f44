"""The base class's rules, as a user meets them: a loss refused only where it would be weighed, NumPy numbers accepted, a fit whose
epochs are all skipped said aloud, and in place but never on the loader's data."""
import warnings
import numpy as np
import pytest, torch
import torch.nn.functional as F
from torch import nn
from fastai.vision.all import Learner, DataLoaders, DataLoader, TensorImage, TensorMask, TensorCategory, CrossEntropyLossFlat
from mixaug_fastai.callbacks import MixUp, CutMix, Cutout, MixUpCutMix
from conftest import make_learner, quick_learner

def no_reduction_loss(pred, target):
    "Cross-entropy plus a soft Dice term: a loss with no `reduction`, as segmentation users write them."
    probs = pred.softmax(1)
    one_hot = F.one_hot(target.long(), pred.shape[1]).movedim(-1, 1).float()
    dice = 1 - (2 * (probs * one_hot).sum() + 1) / (probs.sum() + one_hot.sum() + 1)
    return F.cross_entropy(pred, target.long()) + dice

def mask_learner(loss_func, n=16, size=12, bs=4):
    g = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 3, (n, size, size), generator=g)
    items = [(TensorImage(torch.rand(3, size, size, generator=g)), TensorMask(m)) for m in masks]
    dls = DataLoaders.from_dsets(items[:12], items[12:], bs=bs, device='cpu', num_workers=0)
    torch.manual_seed(0)
    return Learner(dls, nn.Conv2d(3, 3, 3, padding=1), loss_func=loss_func)

def fit(learn, cb, epochs=1):
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs, 1e-3, cbs=cb)

@pytest.mark.parametrize('make_cb', [lambda: CutMix(per_sample=True), lambda: CutMix(p_sample=.5), lambda: MixUpCutMix(switch_prob=1.),
                                     lambda: MixUpCutMix(mixup_per_sample=False), lambda: MixUp(per_sample=False), lambda: Cutout(mask_fill=2)])
def test_a_loss_with_no_reduction_is_accepted_where_nothing_is_weighed_per_sample(make_cb):
    fit(mask_learner(no_reduction_loss), make_cb())  # CutMix pastes masks; one lam per batch weighs the loss as it comes

@pytest.mark.parametrize('make_cb', [lambda: MixUp(), lambda: MixUp(per_sample=False, p_sample=.5), lambda: MixUpCutMix()])
def test_a_loss_with_no_reduction_is_refused_on_the_first_batch_where_it_would_be_weighed_per_sample(make_cb):
    learn = mask_learner(no_reduction_loss)
    weights = [p.detach().clone() for p in learn.model.parameters()]
    with pytest.raises(TypeError, match="cannot weigh two labels' losses per sample"): fit(learn, make_cb())
    assert all(torch.equal(a, b) for a, b in zip(weights, learn.model.parameters()))  # refused before the first step
    assert learn.train_iter == 0 if hasattr(learn, 'train_iter') else True

def test_mixupcutmix_with_one_lam_per_batch_weighs_a_classification_loss_with_no_reduction():
    learn = quick_learner(loss_func=lambda pred, y: F.cross_entropy(pred, y))
    cb = MixUpCutMix(mixup_per_sample=False, switch_prob=0., seed=0)
    fit(learn, cb)
    assert isinstance(cb.lam, float)

@pytest.mark.parametrize('make_cb, name, value', [
    (lambda v: CutMix(alpha=v), 'alpha', np.float32(1.)), (lambda v: MixUp(v), 'alpha', np.float64(.4)),
    (lambda v: MixUp(p_batch=v), 'p_batch', np.float32(.5)), (lambda v: CutMix(p_sample=v), 'p_sample', np.float16(.5)),
    (lambda v: MixUp(skip_first_epochs=v), 'skip_first_epochs', np.int64(1)), (lambda v: Cutout(n_holes=v), 'n_holes', np.int32(2)),
    (lambda v: Cutout(length=v), 'length', np.int64(4)), (lambda v: Cutout(length=v), 'length', np.float32(.25)),
    (lambda v: MixUp(seed=v), 'seed', np.int64(3)), (lambda v: MixUpCutMix(switch_prob=v), 'switch_prob', np.float32(.25))])
def test_numpy_numbers_are_accepted_as_python_numbers(make_cb, name, value):
    cb = make_cb(value)
    stored = getattr(cb, name) if name != 'switch_prob' else cb.switch_prob
    assert stored == value and type(stored) in (int, float)
    if name == 'length': assert isinstance(stored, int) == np.issubdtype(type(value), np.integer)

@pytest.mark.parametrize('make', [lambda: MixUp(alpha=np.bool_(True)), lambda: MixUp(p_batch=True), lambda: Cutout(n_holes=np.bool_(True)),
                                  lambda: MixUp(skip_last_epochs=np.float32(1.))])
def test_booleans_and_fractional_counts_stay_refused(make):
    with pytest.raises(ValueError, match='must be'): make()

def test_a_fit_that_the_skipped_epochs_cover_warns_once_per_fit():
    learn = quick_learner()
    with pytest.warns(UserWarning, match=r"augments no batch of this fit: skip_first_epochs=0 and skip_last_epochs=1 cover all its 1 epoch") as record:
        fit(learn, MixUp(skip_last_epochs=1))
    assert sum('augments no batch' in str(w.message) for w in record) == 1
    with warnings.catch_warnings():
        warnings.filterwarnings('error', message='.*augments no batch.*')
        fit(learn, MixUp(skip_last_epochs=1), epochs=2)  # one of two epochs augmented: no warning

class SlicingLoader:
    "A custom loader over stored tensors that yields views of them (slices), as some users write: no collation, no copy."
    def __init__(self, *tensors, bs=4): self.tensors, self.bs, self.device = tensors, bs, 'cpu'
    def __iter__(self):
        for start in range(0, len(self.tensors[0]), self.bs): yield tuple(t[start:start + self.bs] for t in self.tensors)
    def __len__(self): return len(self.tensors[0]) // self.bs

def view_dls(images, *targets):
    train = DataLoader(list(zip(images, *targets)), bs=4, num_workers=0)  # placeholder for fastai's DataLoaders machinery
    dls = DataLoaders(train, train)
    dls.train, dls.valid = SlicingLoader(images, *targets), SlicingLoader(images[:4], *(t[:4] for t in targets))
    return dls

@pytest.mark.parametrize('make_cb', [lambda: MixUp(seed=0), lambda: CutMix(seed=0), lambda: CutMix(per_sample=True, seed=0),
                                     lambda: Cutout(seed=0), lambda: Cutout(mask_fill=0, seed=0)])
def test_a_loader_that_yields_views_of_stored_data_never_sees_it_changed(make_cb):
    "The copies are what the learner trains on: fastai's types kept, and the masks the loss sees are the copies, not the stored data."
    g = torch.Generator().manual_seed(0)
    images, masks = TensorImage(torch.rand(16, 3, 10, 12, generator=g)), TensorMask(torch.randint(0, 3, (16, 10, 12), generator=g))
    stored_images, stored_masks = images.clone(), masks.clone()
    torch.manual_seed(0)
    learn = Learner(view_dls(images, masks), nn.Conv2d(3, 3, 3, padding=1), loss_func=CrossEntropyLossFlat(axis=1))
    seen = []
    cb = make_cb()
    from fastai.callback.core import Callback
    class Seen(Callback):
        order, run_valid = 1, False
        def before_batch(self):
            mask = self.learn.yb[0]
            seen.append((cb.draw is not None, type(self.learn.xb[0]), type(mask), mask.untyped_storage().data_ptr() == masks.untyped_storage().data_ptr()))
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=[cb, Seen()])
    augmented = [s for s in seen if s[0]]
    assert augmented  # batches were augmented ...
    assert torch.equal(images, stored_images) and torch.equal(masks, stored_masks)  # ... on copies
    assert all(image_type is TensorImage and mask_type is TensorMask for _, image_type, mask_type, _ in augmented)
    masks_touched = not (isinstance(cb, Cutout) and cb.mask_fill is None)  # a Cutout without mask_fill leaves the masks alone, uncopied
    assert all(on_stored_data is not masks_touched for *_, on_stored_data in augmented)

def test_fastais_collated_batches_are_changed_in_place_without_a_copy():
    learn = quick_learner()
    from fastai.callback.core import Callback
    class Same(Callback):
        order, run_valid = -1, False
        def before_batch(self): self.ptr = self.learn.xb[0].data_ptr()
        def after_pred(self): assert self.learn.xb[0].data_ptr() == self.ptr
    with learn.no_bar(), learn.no_logging(): learn.fit(1, cbs=[MixUp(seed=0), Same()])

def test_seeded_noise_erases_with_the_same_pixels_in_two_fits():
    "The noise comes from a torch generator seeded by the callback's own: a seeded Cutout(fill='noise') writes the same noise fit after fit, whatever torch's global state (which here also shuffles the batches differently)."
    from fastai.callback.core import Callback
    runs = []
    for global_seed in (5, 6):
        cb, noise = Cutout(length=.5, fill='noise', seed=7), []
        class Keep(Callback):
            order, run_valid = 1, False
            def before_batch(self): noise.append([x[:, t:b, l:r].clone() for x, (t, l, b, r) in zip(self.learn.xb[0], cb.holes[:, 0].tolist())])
        learn = quick_learner()  # seeds torch's global generator itself
        torch.manual_seed(global_seed)
        fit(learn, [cb, Keep()])
        runs.append(noise)
    assert len(runs[0]) > 1 and all(torch.equal(a, b) for first, second in zip(*runs) for a, b in zip(first, second))

def test_cutout_holes_on_non_square_images_have_the_side_of_the_shorter_side_and_stay_inside():
    "Images 24 high and 40 wide: a hole of length .5 is 12 pixels on each side (of the shorter side), centred anywhere, clipped at each border."
    from conftest import make_dls
    learn = make_learner(make_dls(height=24, width=40, num_workers=0))
    cb, seen = Cutout(length=.5, fill=7., seed=0), []
    from fastai.callback.core import Callback
    class Holes(Callback):
        order, run_valid = 1, False
        def before_batch(self): seen.append((cb.holes.clone(), self.learn.xb[0].clone()))
    fit(learn, [cb, Holes()], epochs=3)
    for holes, images in seen:
        top, left, bottom, right = holes.unbind(-1)
        assert ((0 <= top) & (bottom <= 24) & (0 <= left) & (right <= 40)).all()
        assert ((bottom - top <= 12) & (right - left <= 12)).all() and ((bottom - top == 12) | (top == 0) | (bottom == 24)).all()
        assert ((right - left == 12) | (left == 0) | (right == 40)).all()
        for image, (t, l, b, r) in zip(images, holes[:, 0].tolist()):
            erased = (image == 7.).all(0)
            expected = torch.zeros(24, 40, dtype=torch.bool); expected[t:b, l:r] = True
            assert torch.equal(erased, expected)
    assert (torch.cat([h[:, 0, 3] for h, _ in seen]) > 24).any()  # holes reach columns a square 24 x 24 image does not have

def test_a_target_that_is_no_tensor_is_named_by_its_type():
    from mixaug_fastai.core import target_groups
    with pytest.raises(TypeError, match=r"cannot mix a target with a list for images of shape \(4, 3, 6, 8\)"): target_groups([[1, 2, 3, 4]], (4, 3, 6, 8))
