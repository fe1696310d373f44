"A one-minute fit on generated images with each callback (`make demo`)."
import torch
from fastai.vision.all import *
from mixaug_fastai.all import *

def colour_dls(n=256, size=32, bs=32, seed=0):
    "Four classes of generated images: a colour with a random check pattern."
    g = torch.Generator().manual_seed(seed)
    colours = torch.tensor([[.9, .2, .2], [.2, .7, .2], [.2, .3, .9], [.9, .8, .1]])
    labels = torch.randint(0, 4, (n,), generator=g)
    cells = torch.rand(n, 1, size // 8, size // 8, generator=g) * .5 + .5
    images = colours[labels][:, :, None, None] * F.interpolate(cells, size=(size, size))
    items = [(TensorImage(x), TensorCategory(y)) for x, y in zip(images, labels)]
    return DataLoaders.from_dsets(items[:n * 3 // 4], items[n * 3 // 4:], bs=bs, device='cpu')

print("Synthetic data: generated colour images, not photos.")
for name, cbs in [('none', []), ('MixUp', [MixUp(.4)]), ('CutMix', [CutMix(1.)]), ('Cutout', [Cutout(1, .5)]),
                  ('CutMix p_batch=.5', [CutMix(1., p_batch=.5)])]:
    set_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    learn = Learner(colour_dls(), model, loss_func=CrossEntropyLossFlat(), metrics=accuracy, cbs=cbs)
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(8, 3e-2)
    with learn.no_bar(): loss, acc = learn.validate()
    print(f"{name:18} valid loss {loss:.3f}  accuracy {acc:.3f}")
