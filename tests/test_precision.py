"Mixed precision: bf16 autocast on the CPU, half-precision batches, extreme lam; fp16 training on a GPU when there is one."
import math
import pytest, torch
from fastai.vision.all import Callback, CrossEntropyLossFlat, set_seed
from mixaug_fastai.all import *
from conftest import make_dls, make_learner, quick_learner
from test_callbacks import ALL_CALLBACKS, recorded_fit, expected_loss

CALLBACK_NAMES = ['MixUp', 'CutMix', 'MixUpCutMix', 'Cutout']

class CPUAutocast(Callback):
    "fastai's `MixedPrecision` for the CPU in bfloat16 (fastai's own asks for CUDA): forward pass and loss under `torch.autocast`."
    order = 10  # as MixedPrecision: after the augmentation, which therefore sees the batch as the data loader made it
    def before_batch(self): self.autocast = torch.autocast('cpu', dtype=torch.bfloat16); self.autocast.__enter__()
    def after_pred(self): self.pred_dtype = self.learn.pred.dtype
    def after_loss(self): self.autocast.__exit__(None, None, None)

@pytest.mark.parametrize('make_cb', ALL_CALLBACKS, ids=CALLBACK_NAMES)
def test_bf16_autocast_on_the_cpu(make_cb):
    autocast = CPUAutocast()
    learn = quick_learner(cbs=autocast)
    batches = recorded_fit(learn, make_cb())
    assert autocast.pred_dtype == torch.bfloat16  # autocast was on
    for batch in batches:
        assert batch['augmented'].dtype == torch.float32 and torch.isfinite(batch['loss'])
        assert torch.allclose(batch['loss'].double(), expected_loss(batch), rtol=1e-2)
    assert all(torch.isfinite(torch.tensor(v)).all() for v in learn.recorder.values)

class ToDtype(Callback):
    "Casts the training images to `dtype` (and channels_last) before the augmentation, as a half-precision pipeline would."
    order = -5
    def __init__(self, dtype, channels_last): super().__init__(); self.dtype, self.channels_last = dtype, channels_last
    def before_batch(self):
        images = self.learn.xb[0].to(self.dtype)
        if self.channels_last: images = images.contiguous(memory_format=torch.channels_last)
        self.learn.xb = (images,)
    def after_pred(self): self.learn.pred = self.learn.pred.float()

@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('make_cb', ALL_CALLBACKS, ids=CALLBACK_NAMES)
def test_augmented_batches_keep_dtype_and_memory_format_in_a_fit(make_cb, dtype):
    "A half-precision channels_last model and batch (test_fuzz.py covers every dtype and layout through the batch events)."
    learn = quick_learner(cbs=ToDtype(dtype, channels_last=True))
    learn.model.to(dtype)
    for batch in recorded_fit(learn, make_cb()):
        images = batch['augmented']
        assert images.dtype == dtype and images.is_contiguous(memory_format=torch.channels_last)
        assert torch.isfinite(images).all() and torch.isfinite(batch['loss'])

EXTREME_LAMS = [0., 1e-12, 1e-6, .5, 1 - 1e-6, 1 - 1e-12, 1.]

@pytest.mark.parametrize('size', [(6, 5), (100, 90)], ids=['batch-wide', 'per-sample'])
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float32])
def test_extreme_lam_introduces_no_nan_or_inf(dtype, size):
    "MixUp at lam near 0 and 1 on images near the edge of the dtype's range stays between the two images it blends; the loss stays finite."
    own = torch.full((7, 3, *size), torch.finfo(dtype).max / 4).to(dtype)
    partner = -own
    images = torch.cat([own[:1], partner[:1]]).repeat(4, 1, 1, 1)[:7]  # alternating extremes
    lam = torch.tensor(EXTREME_LAMS, dtype=torch.float64)
    perm = torch.tensor([1, 2, 3, 4, 5, 6, 0])
    for draw in (MixUpDraw(lam, perm), MixUpDraw(1e-12, perm), MixUpDraw(1 - 1e-12, perm)):
        mixed = mix_images_(images.clone(), draw)
        assert mixed.dtype == dtype and torch.isfinite(mixed).all()
        low, high = torch.minimum(images, images[perm]), torch.maximum(images, images[perm])
        assert ((low <= mixed) & (mixed <= high)).all()
    pred = (torch.randn(7, 4, generator=torch.Generator().manual_seed(0)) * 30).to(dtype)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    for weights in (lam, 0., 1.):
        loss = mixed_loss(CrossEntropyLossFlat(), pred, (y,), perm, weights)
        assert loss.dtype == dtype and torch.isfinite(loss)

@pytest.mark.parametrize('make_cb', [lambda: MixUp(SMALLEST_ALPHA, own_dominates=False), lambda: CutMix(SMALLEST_ALPHA, per_sample=True),
                                     lambda: MixUpCutMix(SMALLEST_ALPHA, SMALLEST_ALPHA)], ids=['MixUp', 'CutMix', 'MixUpCutMix'])
def test_smallest_alpha_trains_with_lam_at_0_or_1(make_cb):
    "Beta(1e-300, 1e-300) puts all its weight on 0 and 1: MixUp keeps or swaps whole images, CutMix boxes are empty or image-sized before clipping."
    learn = quick_learner(cbs=CPUAutocast())
    for batch in recorded_fit(learn, make_cb()):
        draw, (height, width) = batch['draw'], batch['raw'].shape[-2:]
        if isinstance(draw, MixUpDraw): assert ((torch.as_tensor(draw.lam) == 0) | (torch.as_tensor(draw.lam) == 1)).all()
        else:  # a box of the image's size around any centre keeps at least half of each side after clipping
            sides = torch.stack([draw.boxes[:, 2] - draw.boxes[:, 0], draw.boxes[:, 3] - draw.boxes[:, 1]], 1)
            assert ((sides == 0).all(1) | ((sides[:, 0] >= height // 2) & (sides[:, 1] >= width // 2))).all()
        assert torch.isfinite(batch['loss']) and torch.allclose(batch['loss'].double(), expected_loss(batch), rtol=1e-2)

@pytest.mark.parametrize('make_cb', [lambda: MixUp(LARGEST_ALPHA, own_dominates=False), lambda: CutMix(LARGEST_ALPHA, per_sample=True)], ids=['MixUp', 'CutMix'])
def test_largest_alpha_trains_with_lam_at_one_half(make_cb):
    "Beta(1e300, 1e300) is 1/2 in float64: MixUp blends two halves, CutMix boxes have sides floor(sqrt(1/2) * side), of which clipping keeps at least half."
    learn = quick_learner(cbs=CPUAutocast())
    for batch in recorded_fit(learn, make_cb()):
        draw, (height, width) = batch['draw'], batch['raw'].shape[-2:]
        if isinstance(draw, MixUpDraw): assert (torch.as_tensor(draw.lam) == .5).all()
        else:
            full = torch.tensor([math.floor(math.sqrt(.5) * height), math.floor(math.sqrt(.5) * width)])
            sides = torch.stack([draw.boxes[:, 2] - draw.boxes[:, 0], draw.boxes[:, 3] - draw.boxes[:, 1]], 1)
            assert ((full // 2 <= sides) & (sides <= full)).all()
        assert torch.isfinite(batch['loss']) and torch.allclose(batch['loss'].double(), expected_loss(batch), rtol=1e-2)

@pytest.mark.skipif(not torch.cuda.is_available(), reason="learn.to_fp16() needs a CUDA GPU; none here (bf16 on the CPU is tested above)")
@pytest.mark.parametrize('make_cb', ALL_CALLBACKS, ids=CALLBACK_NAMES)
def test_fp16_on_a_gpu(make_cb):
    set_seed(0)
    learn = make_learner(make_dls().to('cuda')).to_fp16()
    learn.model.cuda()
    batches = recorded_fit(learn, make_cb())
    for batch in batches:
        assert batch['augmented'].device.type == 'cuda' and batch['augmented'].dtype == torch.float32
        assert torch.isfinite(batch['loss']) and torch.allclose(batch['loss'].double(), expected_loss(batch), rtol=1e-2)
