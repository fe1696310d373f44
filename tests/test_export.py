"""Exporting a learner for a place without mixaug_fastai (the README's recipe): `with learn.removed_cbs(cb): learn.export(...)`
loads with `load_learner` in a process that cannot import the package, and predicts as the original does; a learner exported with
the callback attached cannot be loaded there, and fails as the README says. The callback given to one `fit` leaves nothing behind."""
import json, subprocess, sys
import pytest, torch
from fastai.vision.all import Learner, CrossEntropyLossFlat, ImageDataLoaders
from mixaug_fastai.callbacks import MixUp, CutMix, MixUpCutMix, Cutout
from conftest import write_image_folder, tiny_model

CALLBACKS = {'MixUp': lambda: MixUp(.4, seed=1), 'CutMix': lambda: CutMix(1., seed=1), 'MixUpCutMix': lambda: MixUpCutMix(seed=1),
             'Cutout': lambda: Cutout(1, .5, seed=1)}

# Run by a fresh Python that cannot import mixaug_fastai (as on a server where only fastai is installed): for each exported file,
# load_learner and predict one image, or the error it raised.
LOAD_WITHOUT_PACKAGE = r'''
import importlib.abc, json, sys
class NoMixaug(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'mixaug_fastai': raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoMixaug())
import warnings; warnings.simplefilter('ignore')
from fastai.vision.all import load_learner
image, results = sys.argv[1], {}
for path in sys.argv[2:]:
    try:
        learn = load_learner(path)
        results[path] = dict(probabilities=learn.predict(image)[2].tolist(), callbacks=[type(cb).__name__ for cb in learn.cbs])
    except Exception as error: results[path] = dict(error=f"{type(error).__name__}: {error}")
assert not any(name.startswith('mixaug_fastai') for name in sys.modules)
print(json.dumps(results))
'''

def load_elsewhere(image, *paths) -> dict:
    done = subprocess.run([sys.executable, '-c', LOAD_WITHOUT_PACKAGE, str(image), *map(str, paths)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])

def trained_learner(folder, **kwargs) -> Learner:
    torch.manual_seed(0)
    dls = ImageDataLoaders.from_folder(folder, valid_pct=.25, seed=0, bs=6, device='cpu', num_workers=0)
    return Learner(dls, tiny_model(2), loss_func=CrossEntropyLossFlat(), **kwargs)

def test_export_without_the_callback_loads_where_the_package_is_missing(tmp_path):
    folder, image = write_image_folder(tmp_path / 'images'), tmp_path / 'images' / 'red' / '0.png'
    exported, expected = {}, {}
    for name, make_cb in CALLBACKS.items():
        cb = make_cb()
        learn = trained_learner(folder, cbs=cb)
        learn.fit(1)
        with learn.removed_cbs(cb): learn.export(tmp_path / f'{name}-removed.pkl')
        assert cb in learn.cbs  # back on the learner for more training
        learn.export(tmp_path / f'{name}-attached.pkl')
        exported[name], expected[name] = tmp_path / f'{name}-removed.pkl', learn.predict(image)[2].tolist()
    # the callback given to one fit only: nothing of it stays on the learner, so a plain export loads anywhere
    learn = trained_learner(folder)
    learn.fit(1, cbs=CutMix(1., seed=1))
    learn.export(tmp_path / 'fit-only.pkl')
    results = load_elsewhere(image, *exported.values(), tmp_path / 'fit-only.pkl', *(tmp_path / f'{name}-attached.pkl' for name in CALLBACKS))
    for name, path in exported.items():
        assert 'error' not in results[str(path)], (name, results[str(path)])
        assert results[str(path)]['probabilities'] == pytest.approx(expected[name], abs=1e-6), name
        assert not {'MixUp', 'CutMix', 'MixUpCutMix', 'Cutout'} & set(results[str(path)]['callbacks'])
    assert 'error' not in results[str(tmp_path / 'fit-only.pkl')], results[str(tmp_path / 'fit-only.pkl')]
    for name in CALLBACKS:
        error = results[str(tmp_path / f'{name}-attached.pkl')].get('error', '')
        # fastai 2.8.7 swallows the ModuleNotFoundError and fails on its own variable; a later fastai may name the module
        assert "UnboundLocalError: cannot access local variable 'res'" in error or "No module named 'mixaug_fastai" in error, (name, error)
