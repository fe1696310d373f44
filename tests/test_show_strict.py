"""`show_mix_batch` against an independent reading of what it drew: the pixels shown are the augmented batch, and each title names the
right labels and weights, with the partner and lam worked out from the pixels alone (not from the draw the function made)."""
import re
import matplotlib; matplotlib.use('Agg')
import numpy as np, pytest, torch
from mixaug_fastai.callbacks import MixUp, CutMix, Cutout, show_mix_batch
from conftest import make_dls, make_learner, possible_centres
from test_callbacks import erased_rectangles

VOCAB = ['red', 'green', 'blue', 'yellow']  # make_dls's

def shown_batch(cb, max_n:int=8, seed:int=3):
    "The raw training batch and what `show_mix_batch` shows of it: a title and the pixels of each axis that holds an image."
    dls = make_dls(num_workers=0, shuffle=False)  # unshuffled: one_batch is the same batch each time it is asked for
    raw, y = dls.train.one_batch()
    axs = show_mix_batch(make_learner(dls), cb, max_n=max_n, seed=seed)
    shown = [ax for ax in axs if ax.get_images()]
    pixels = torch.stack([torch.from_numpy(np.asarray(ax.get_images()[0].get_array())).permute(2, 0, 1) for ax in shown])
    return raw.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor), [ax.get_title() for ax in shown], pixels

def parse_title(title:str) -> tuple:
    "'red 0.73 / blue 0.27' as ('red', 0.73, 'blue', 0.27)."
    match = re.fullmatch(r'(\w+) (\d\.\d\d) / (\w+) (\d\.\d\d)', title)
    assert match, title
    own, lam, partner, partner_weight = match.groups()
    return own, float(lam), partner, float(partner_weight)

def check_title(title:str, own_label:str, lam:float, partner_label:str):
    own, shown_lam, partner, partner_weight = parse_title(title)
    assert (own, partner) == (own_label, partner_label)
    assert abs(shown_lam - lam) <= .005 + 1e-6 and abs(partner_weight - (1 - lam)) <= .005 + 1e-6  # two decimals, rounded

@pytest.mark.parametrize('max_n', [8, 5])
def test_cutmix_titles_and_pixels(max_n):
    raw, y, titles, pixels = shown_batch(CutMix(1.), max_n=max_n)
    assert len(titles) == max_n
    changed = (pixels != raw[:max_n]).any(1)  # the box, from the pixels: where some image now differs from itself
    rows, columns = changed.any(0).any(1).nonzero()[:, 0], changed.any(0).any(0).nonzero()[:, 0]
    assert len(rows) > 0  # something was pasted: the pixels shown are the augmented ones
    t, l, b, r = rows[0], columns[0], rows[-1] + 1, columns[-1] + 1
    outside = torch.ones(raw.shape[-2:], dtype=torch.bool); outside[t:b, l:r] = False
    assert torch.equal(pixels[:, :, outside], raw[:max_n, :, outside])  # one box for the batch (CutMix's default), the rest untouched
    lam = 1 - ((b - t) * (r - l)).item() / outside.numel()
    for i, title in enumerate(titles):
        # the partner: the one other image of the batch whose box the shown image holds (images differ at every pixel across samples)
        partners = [j for j in range(len(raw)) if j != i and torch.equal(pixels[i, :, t:b, l:r], raw[j, :, t:b, l:r])]
        assert len(partners) == 1, (i, partners)
        check_title(title, VOCAB[y[i]], lam, VOCAB[y[partners[0]]])

def test_mixup_titles_and_pixels():
    raw, y, titles, pixels = shown_batch(MixUp(.4))
    assert len(titles) == 8
    for i, title in enumerate(titles):
        # lam and the partner from the pixels: the one other image j with pixels[i] = lam * raw[i] + (1 - lam) * raw[j] for some lam
        fits = []
        for j in range(len(raw)):
            if j == i: continue
            direction, offset = (raw[i] - raw[j]).double(), (pixels[i] - raw[j]).double()
            lam = ((offset * direction).sum() / (direction * direction).sum()).item()
            if (offset - lam * direction).abs().max() < 1e-5: fits.append((j, lam))
        assert len(fits) == 1, (i, fits)
        j, lam = fits[0]
        assert .5 <= lam < 1  # own_dominates: every image stays mostly itself, and it was mixed
        check_title(title, VOCAB[y[i]], lam, VOCAB[y[j]])

def test_cutout_titles_and_pixels():
    # a fill inside imshow's range [0, 1] (it clips what it keeps) and outside the generated images' [0.05, 0.9]
    raw, y, titles, pixels = shown_batch(Cutout(length=7, fill=(1., 0., 1.)))
    assert titles == [VOCAB[label] for label in y[:8]]  # Cutout weighs no partner: the label alone
    rectangles = erased_rectangles(raw[:8], pixels, fill=torch.tensor([1., 0., 1.]).view(1, 3, 1, 1))
    height, width = raw.shape[-2:]
    assert all(possible_centres(t, b, height, 7) and possible_centres(l, r, width, 7) for t, l, b, r in rectangles)
    assert len(set(rectangles)) > 1  # holes per sample
