"Shared fixtures: small generated image data and a tiny model, so Learner tests run in seconds on the CPU."
import os, sys
import pytest, torch
from hypothesis import settings
from torch import nn
import torch.nn.functional as F
from fastai.vision.all import DataLoaders, TensorImage, TensorCategory, Learner, CrossEntropyLossFlat

# Hypothesis profiles. 'ci' (the default) draws the same cases on every run, so that a CI failure is reproducible and a pass means
# the same thing each time; `HYPOTHESIS_PROFILE=explore` draws fresh cases for exploration during development (and keeps failures
# in .hypothesis/ to replay them). A case that fails under either profile is added to its test as an explicit `@example`.
# The tests set their own `max_examples` (their share of the suite's time); the profile sets how the cases are drawn.
settings.register_profile('ci', derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile('explore', derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))

COLOURS = torch.tensor([[.9, .2, .2], [.2, .7, .2], [.2, .3, .9], [.9, .8, .1]])

def colour_items(n, height, width, seed):
    "`n` (image, label) pairs: four colour classes with a random check pattern, float images in [0, 1]."
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    cells = torch.rand(n, 1, max(1, height // 8), max(1, width // 8), generator=g) * .5 + .5
    images = COLOURS[labels][:, :, None, None] * F.interpolate(cells, size=(height, width))
    return [(TensorImage(x), TensorCategory(y)) for x, y in zip(images, labels)]

def make_dls(n=48, height=24, width=40, bs=8, seed=0, **kwargs):
    items = colour_items(n, height, width, seed)
    split = n * 3 // 4
    dls = DataLoaders.from_dsets(items[:split], items[split:], bs=bs, device='cpu', **kwargs)
    dls.vocab = ['red', 'green', 'blue', 'yellow']
    return dls

def tiny_model(n_out=4):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, n_out))

def make_learner(dls=None, loss_func=None, **kwargs):
    torch.manual_seed(0)
    return Learner(dls or make_dls(), tiny_model(), loss_func=loss_func or CrossEntropyLossFlat(), **kwargs)

def quick_learner(**kwargs):
    "`make_learner` on DataLoaders without worker processes, which start a fit several times faster on 2 cores."
    return make_learner(make_dls(num_workers=0), **kwargs)

@pytest.fixture
def learn(): return make_learner()

def write_image_folder(path, per_class=12, size=(40, 24), seed=0):
    "A `path/train/{red,yellow}/*.png` folder of generated images, for DataBlock-based DataLoaders (predict, export)."
    from PIL import Image
    g = torch.Generator().manual_seed(seed)
    for name, colour in (('red', COLOURS[0]), ('yellow', COLOURS[3])):
        (path / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = colour[:, None, None] * (torch.rand(1, size[1], size[0], generator=g) * .5 + .5)
            Image.fromarray((image.permute(1, 2, 0) * 255).byte().numpy()).save(path / name / f'{i}.png')
    return path

@pytest.fixture
def folder_dls(tmp_path):
    from fastai.vision.all import ImageDataLoaders
    return ImageDataLoaders.from_folder(write_image_folder(tmp_path / 'images'), valid_pct=.25, seed=0, bs=6, device='cpu', num_workers=0)

def possible_centres(start:int, end:int, size:int, side:int) -> list[int]:
    """The centres `c` in `range(size)` whose span of `side` pixels, `[c - side // 2, c - side // 2 + side)`, clipped to `[0, size)`,
    is exactly `[start, end)`: empty when no box of that side could have given the span (one pixel short, shifted, or too small at a border)."""
    return [c for c in range(size) if (max(0, c - side // 2), min(size, c - side // 2 + side)) == (start, end)]

def pytest_terminal_summary(terminalreporter):
    "Say how many generated cases the fuzz tests ran (tests/test_fuzz.py counts them)."
    fuzz = sys.modules.get('test_fuzz')
    if fuzz is not None and fuzz.CASES:
        counts = ', '.join(f'{name}: {n}' for name, n in sorted(fuzz.CASES.items()))
        terminalreporter.write_line(f"fuzz cases run: {sum(fuzz.CASES.values())} ({counts}); "
                                    f"hypothesis profile: {os.environ.get('HYPOTHESIS_PROFILE', 'ci')}")
