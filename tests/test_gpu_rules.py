"""What a GPU enforces and the CPU does not, checked on the CPU (issue 21: the 9 mutants that only a GPU run caught).
CUDA has no batched product of integers; a GPU's sort may put equal keys in any order unless it is asked to be stable; a generator
draws only on its own device. The first two are emulated by a torch function mode, the third by recording the devices asked for,
so that a change which would break on a GPU fails on any machine."""
import torch
import pytest
from torch.overrides import TorchFunctionMode
from mixaug_fastai.core import CutoutDraw, compact_boxes, keep_mask

BATCHED_PRODUCTS = {torch.bmm, torch.baddbmm, torch.matmul, torch.Tensor.bmm, torch.Tensor.baddbmm, torch.Tensor.baddbmm_,
                    torch.Tensor.matmul, torch.Tensor.__matmul__}
SORTS = {torch.sort, torch.Tensor.sort}

def ties_reversed(x, dim=-1, descending=False, stable=None):
    "A sort whose equal keys come out last first: what a sort that was not asked to be stable may return."
    flipped = torch.sort(x.flip(dim), dim=dim, descending=descending, stable=True)
    return torch.return_types.sort((flipped.values, x.shape[dim] - 1 - flipped.indices))

class AsOnCuda(TorchFunctionMode):
    "Two of CUDA's rules on the CPU: a batched product of integer tensors is refused, and an unstable sort reverses ties."
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in BATCHED_PRODUCTS and any(isinstance(a, torch.Tensor) and not a.is_floating_point() for a in args):
            raise RuntimeError(f'"{func.__name__}_cuda" not implemented for {[a.dtype for a in args if isinstance(a, torch.Tensor)]}')
        if func in SORTS and kwargs.get('stable') is not True: return ties_reversed(*args, **kwargs)
        return func(*args, **kwargs)

def test_the_emulated_rules_are_live():
    "Without this the tests below could pass only because the mode intercepted nothing."
    with AsOnCuda():
        with pytest.raises(RuntimeError, match='baddbmm_cuda'): torch.baddbmm(torch.ones(1, 1, 1, dtype=torch.long), torch.ones(1, 1, 2, dtype=torch.long), torch.ones(1, 2, 1, dtype=torch.long))
        assert torch.sort(torch.tensor([1, 0, 1, 0])).indices.tolist() == [3, 1, 2, 0]
        assert torch.sort(torch.tensor([1, 0, 1, 0]), stable=True).indices.tolist() == [1, 3, 0, 2]

@pytest.mark.parametrize('dtype', [torch.int64, torch.uint8, torch.bool])
def test_holes_in_class_code_masks_need_no_integer_batched_product(dtype):
    "Cutout's keep mask for masks of class codes is counted in floats (CUDA refuses integer `baddbmm`) and returned in the masks' dtype."
    holes = torch.tensor([[[1, 2, 4, 5], [3, 0, 6, 3]], [[0, 0, 2, 2], [5, 5, 7, 6]]])  # top, left, bottom, right; the first two overlap
    expected = torch.ones(2, 1, 7, 6, dtype=dtype)
    for i, sample in enumerate(holes.tolist()):
        for top, left, bottom, right in sample: expected[i, 0, top:bottom, left:right] = 0
    with AsOnCuda(): kept = keep_mask(holes, 7, 6, like=torch.empty(0, dtype=dtype))
    assert kept.dtype == dtype and torch.equal(kept, expected)

def test_compacted_boxes_keep_their_order_whatever_a_sort_does_with_ties():
    "Real boxes first in their order, then padding: the sort that moves padding to the end must be asked to keep ties in order."
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (6, 9), generator=g)  # label 0 is padding, anywhere
    labels[0], labels[1] = 0, 2  # a sample of padding only, and one with no padding
    boxes, weights = torch.rand(6, 9, 4, generator=g), torch.rand(6, 9, generator=g)
    with AsOnCuda(): got_boxes, got_labels, got_weights = compact_boxes(boxes, labels, weights)
    for i in range(6):
        real = [j for j in range(9) if labels[i, j]]
        n = len(real)
        assert torch.equal(got_boxes[i, :n], boxes[i, real]) and not got_boxes[i, n:].any()
        assert got_labels[i, :n].tolist() == labels[i, real].tolist() and not got_labels[i, n:].any()
        assert torch.equal(got_weights[i, :n], weights[i, real]) and not got_weights[i, n:].any()

def test_noise_is_drawn_on_the_images_device_by_a_generator_made_there(monkeypatch):
    "On a GPU a generator on the host cannot draw a CUDA tensor, nor a CUDA generator a host one: both must be on the images' device."
    made, asked = [], []
    Generator, randn = torch.Generator, torch.randn
    monkeypatch.setattr(torch, 'Generator', lambda *args, **kwargs: made.append(args[0] if args else kwargs.get('device')) or Generator(*args, **kwargs))
    monkeypatch.setattr(torch, 'randn', lambda *args, **kwargs: asked.append(kwargs.get('device')) or randn(*args, **kwargs))
    images = torch.zeros(2, 3, 8, 8)
    holes = torch.tensor([[[0, 0, 4, 4]], [[2, 3, 6, 5]]])
    CutoutDraw(holes=holes, fill='noise', noise_seed=3).images_(images)
    assert made == [images.device] and asked == [images.device] * 2
    reference = Generator().manual_seed(3)
    assert torch.equal(images[0, :, 0:4, 0:4], randn((3, 4, 4), generator=reference))
    assert torch.equal(images[1, :, 2:6, 3:5], randn((3, 4, 2), generator=reference))
