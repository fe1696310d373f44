"Property tests of the pure tensor functions, against independently computed expectations."
import math
import numpy as np, pytest, torch
from hypothesis import given, settings, example, strategies as st
from scipy import stats
from mixaug_fastai.core import *
from conftest import possible_centres

shapes = st.tuples(st.integers(2, 6), st.integers(1, 4), st.integers(1, 19), st.integers(1, 23)) | st.tuples(st.integers(2, 3), st.just(3), st.integers(70, 90), st.integers(60, 100))  # small: batch-wide path, large: per-sample loop
alphas = st.floats(.05, 50.)
seeds = st.integers(0, 2**32)

def naive_cutmix(images, perm, boxes):
    "Out-of-place reference: gather the whole batch, copy each sample's box."
    partners, out = images[perm].clone(), images.clone()
    rows = boxes.tolist() * (len(images) if len(boxes) == 1 else 1)
    for i, (t, l, b, r) in enumerate(rows): out[i, :, t:b, l:r] = partners[i, :, t:b, l:r]
    return out

@settings(max_examples=60, deadline=None)
@given(shapes, alphas, st.booleans(), seeds)
def test_cutmix_pastes_exactly_one_minus_lam_of_the_pixels(shape, alpha, per_sample, seed):
    bs, c, h, w = shape
    g = make_generator(seed)
    draw = draw_cutmix(bs, h, w, alpha, per_sample, g)
    images = torch.arange(bs * c * h * w, dtype=torch.float32).view(shape)  # every pixel distinct
    mixed = mix_images_(images.clone(), draw)
    assert torch.equal(mixed, naive_cutmix(images, draw.perm, draw.boxes))
    changed = (mixed != images).any(1).double().mean((1, 2))  # fraction of pixels taken from the partner
    lam = torch.as_tensor(draw.lam, dtype=torch.float64).expand(bs)
    assert torch.allclose(changed, 1 - lam, atol=1e-12)
    assert ((0 <= lam) & (lam <= 1)).all()

@settings(max_examples=60, deadline=None)
@given(shapes, alphas, st.booleans(), st.booleans(), seeds)
def test_mixup_is_the_lerp_with_the_partner(shape, alpha, per_sample, own_dominates, seed):
    bs = shape[0]
    g = make_generator(seed)
    draw = draw_mixup(bs, alpha, per_sample, own_dominates, g)
    images = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    lam = torch.as_tensor(draw.lam, dtype=torch.float64).expand(bs)
    expected = lam.view(-1, 1, 1, 1) * images.double() + (1 - lam.view(-1, 1, 1, 1)) * images[draw.perm].double()
    assert torch.allclose(mix_images_(images.clone(), draw).double(), expected, atol=1e-5)
    assert ((0 <= lam) & (lam <= 1)).all() and (not own_dominates or (lam >= .5).all())

@settings(max_examples=60, deadline=None)
@given(shapes, st.integers(1, 4), st.one_of(st.integers(1, 40), st.floats(.01, 1.)), seeds)
@example((2, 1, 1, 1), 1, 1, 0).via('a one-pixel image: every hole is the whole image')
@example((3, 3, 70, 60), 4, 1., 0).via('holes of the shorter side, per-sample loop')
def test_cutout_erases_only_its_holes(shape, n_holes, length, seed):
    bs, c, h, w = shape
    draw = draw_cutout(bs, h, w, n_holes, length, make_generator(seed))
    images = torch.rand(shape) + 1
    erased = erase_(images.clone(), draw.holes, 0.)
    inside = torch.zeros(bs, h, w, dtype=torch.bool)
    side = length if isinstance(length, int) else max(1, round(length * min(h, w)))  # the documented rule, restated
    for i, sample_holes in enumerate(draw.holes.tolist()):
        for t, l, b, r in sample_holes:  # a square of `side` around a pixel of the image, clipped: exact, not just at most `side`
            assert possible_centres(t, b, h, side) and possible_centres(l, r, w, side)
            inside[i, t:b, l:r] = True
    assert torch.equal(erased == 0, inside[:, None].expand(shape))

def test_centred_boxes_by_hand():
    "Worked by hand on a 20 x 20 image: a box of size s starts s // 2 before its centre (the centre is its middle pixel, or the one after the middle), then is clipped."
    centres = np.array([[5, 7], [0, 0], [19, 19], [10, 3], [0, 19]])
    sizes = np.array([[3, 4], [5, 5], [4, 4], [1, 1], [40, 2]])
    expected = [[4, 5, 7, 9], [0, 0, 3, 3], [17, 17, 20, 20], [10, 3, 11, 4], [0, 18, 20, 20]]
    assert centred_boxes(centres, sizes, 20, 20).tolist() == expected

@pytest.mark.parametrize('height,width,side', [(5, 7, 3), (6, 4, 2), (4, 4, 1)])
def test_cutout_covers_each_pixel_as_often_as_uniform_centres_do(height, width, side):
    """How often Cutout erases each pixel, against the exact probability for a centre uniform over the pixels: the share of centres whose
    square covers its row times the share that covers its column. Catches holes shifted by a pixel, drawn once per batch (all samples
    alike), or from a skewed centre law. Seeded: the same counts every run; bounds a correct draw with another seed leaves with
    probability < 1e-6 over all pixels together."""
    n = 20_000
    holes = draw_cutout(n, height, width, 1, side, make_generator(0)).holes[:, 0]
    counts = torch.zeros(height, width, dtype=torch.long)
    for t, l, b, r in holes.tolist(): counts[t:b, l:r] += 1
    covers = lambda pixel, size: sum(c - side // 2 <= pixel < c - side // 2 + side for c in range(size)) / size
    for (row, column), count in np.ndenumerate(counts.numpy()):
        law = stats.binom(n, covers(row, height) * covers(column, width))
        bound = 1e-6 / (2 * height * width)
        assert law.ppf(bound) <= count <= law.isf(bound), (row, column, count, law.mean())

def test_pairing_is_one_random_cycle_with_uniform_partners():
    g = make_generator(0)
    partner_counts, cycles_seen = torch.zeros(5, 5), set()
    for _ in range(4000):
        perm = random_derangement(5, g)
        assert len(cycles_of(perm)) == 1  # a single cycle: no fixed point, one saved sample when mixing in place
        partner_counts[torch.arange(5), perm] += 1
        cycles_seen.add(tuple(perm.tolist()))
    assert len(cycles_seen) == 24  # all (5 - 1)! cyclic permutations occur
    off_diagonal = partner_counts[~torch.eye(5, dtype=torch.bool)]
    assert partner_counts.diag().sum() == 0 and (off_diagonal - 1000).abs().max() < 4 * math.sqrt(1000)
    with pytest.raises(ValueError, match='n=1'): random_derangement(1, g)

@pytest.mark.parametrize('alpha', [.2, 1., 5.])
def test_beta_sampler_matches_the_beta_law(alpha):
    from scipy import stats
    draws = sample_beta(alpha, 20_000, make_generator(7))
    assert stats.kstest(draws, stats.beta(alpha, alpha).cdf).pvalue > 1e-3

def test_sampling_is_reproducible_and_depends_on_the_seed():
    a, b, c = (draw_cutmix(8, 20, 30, 1., True, make_generator(s)) for s in (1, 1, 2))
    assert torch.equal(a.boxes, b.boxes) and torch.equal(a.perm, b.perm) and not torch.equal(a.boxes, c.boxes)

@pytest.mark.parametrize('dtype', [torch.float32, torch.float16, torch.bfloat16, torch.float64])
@pytest.mark.parametrize('channels_last', [False, True])
def test_dtype_and_memory_format_preserved(dtype, channels_last):
    g = make_generator(0)
    images = torch.rand(4, 3, 10, 12).to(dtype)
    if channels_last: images = images.contiguous(memory_format=torch.channels_last)
    for apply in (lambda x: mix_images_(x, draw_mixup(4, .4, True, True, g)),
                  lambda x: mix_images_(x, draw_cutmix(4, 10, 12, 1., True, g)),
                  lambda x: erase_(x, draw_cutout(4, 10, 12, 2, 5, g).holes, 'noise', torch.Generator().manual_seed(0))):
        x = images.clone(memory_format=torch.preserve_format)
        out = apply(x)
        assert out is x and out.dtype == dtype and out.is_contiguous(memory_format=torch.channels_last) == channels_last

def test_non_square_boxes_use_height_and_width_from_the_right_axes():
    # lam = 0.75 gives sides of half the image: 5 rows by 20 columns on a 10 x 40 image (swapped axes would give 20 x 5, clipped)
    boxes = cutmix_boxes(np.full(200, .75), 10, 40, make_generator(0))
    heights, widths = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert heights.max() == 5 and widths.max() == 20

def test_bad_parameters_name_themselves():
    with pytest.raises(ValueError, match=r"alpha must be .*; got alpha=0"): sample_beta(0, 3, make_generator(0))
    with pytest.raises(TypeError, match=r"shape \(8, 10\)"): check_image_batch(torch.zeros(8, 10), 'MixUp')
    with pytest.raises(TypeError, match='IntToFloatTensor'): check_image_batch(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), 'MixUp')

@pytest.mark.parametrize('shape', [(8, 3, 32, 32), (8, 3, 224, 160)])
def test_applying_a_draw_never_reads_device_values(shape):
    "The accelerator path on the meta device, where any read of a device value (.item(), .tolist(), bool(), .cpu()) raises: no host-device sync."
    g, (bs, _, height, width) = make_generator(0), shape
    images = torch.empty(shape, device='meta')
    for draw in (draw_mixup(bs, .4, True, True, g), draw_mixup(bs, .4, False, False, g),
                 draw_cutmix(bs, height, width, 1., False, g), draw_cutmix(bs, height, width, 1., True, g)):
        assert mix_images_(images, draw).shape == shape
    holes = draw_cutout(bs, height, width, 2, .3, g).holes
    for fill in (0., (1., 2., 3.), 'noise'): assert erase_(images, holes, fill, torch.Generator().manual_seed(0)).device.type == 'meta'
