"The tutorial's command line on tiny settings, and what its results folder says."
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from PIL import Image
from mixaug_fastai.course.data import make_synthetic_photos, open_photos, SYNTHETIC_NOTE
from mixaug_fastai.course.tutorial import (TutorialSettings, write_results, parse_args, settings_from_args, method_callbacks, summarise,
                                    final_epochs, METHODS)
from mixaug_fastai.callbacks import MixUp, CutMix, Cutout

ROOT = Path(__file__).resolve().parents[1]

def test_methods_and_their_callbacks():
    kinds = {m: [type(cb) for cb in method_callbacks(m, seed=3)] for m in METHODS}
    assert kinds == {'none': [], 'MixUp': [MixUp], 'CutMix': [CutMix], 'Cutout': [Cutout], 'CutMix p_batch=0.5': [CutMix]}
    assert method_callbacks('CutMix p_batch=0.5', 3)[0].p_batch == .5 and method_callbacks('MixUp', 3)[0].seed == 3
    with pytest.raises(ValueError, match=r"method must be one of .*; got method='mixup'"): method_callbacks('mixup', 0)

def test_command_line_overrides_the_device_defaults():
    settings = settings_from_args(parse_args(['--device', 'cpu', '--epochs', '4', '--seeds', '7', '8', '--methods', 'Cutout']))
    assert settings == TutorialSettings(epochs=4, seeds=(7, 8), methods=('Cutout',), device='cpu')
    with pytest.raises(SystemExit): parse_args(['--methods', 'AugMix'])

def fake_epochs():
    "Two methods x two seeds x two epochs of made-up values."
    return pd.DataFrame([dict(method=m, seed=s, epoch=e, fit=e + 1, train_loss=.6, valid_loss=.5, accuracy=a, error_rate=1 - a, seconds=1.5)
                         for m, accuracies in (('none', (.8, .9)), ('CutMix', (.7, .7))) for s, a in enumerate(accuracies) for e in (0, 1)])

def test_results_folder_from_made_up_runs(tmp_path):
    photos = open_photos(make_synthetic_photos(tmp_path / 'drawn', per_class=2, size=32), 'generated')
    settings = TutorialSettings(seeds=(0, 1), methods=('none', 'CutMix'))
    write_results(tmp_path / 'out', settings, photos, fake_epochs(), 12.3, 'python -m mixaug_fastai.course.tutorial --out x')
    report = (tmp_path / 'out' / 'results.md').read_text()
    assert SYNTHETIC_NOTE in report
    assert '| none | 0.850 ± 0.071 | 0.150 ± 0.071 | 2 | 1.5 |' in report and '| CutMix | 0.700 ± 0.000 |' in report
    assert {p.name for p in (tmp_path / 'out').iterdir()} == {'results.md', 'accuracy.png', 'loss_curves.png', 'runs.csv', 'epochs.csv', 'settings.json'}
    recorded = json.loads((tmp_path / 'out' / 'settings.json').read_text())
    assert recorded['synthetic'] is True and recorded['seeds'] == [0, 1] and recorded['total_seconds'] == 12.3
    assert str(tmp_path) not in (tmp_path / 'out' / 'settings.json').read_text() + report

def test_summary_of_runs():
    summary = summarise(final_epochs(fake_epochs()))
    assert summary.accuracy.round(6).to_dict() == {'none': .85, 'CutMix': .7}
    assert summary.runs.to_dict() == {'none': 2, 'CutMix': 2}

def test_command_line_smoke_run(tmp_path):
    "The real pipeline end to end on 2 x 6 tiny drawings: 2 methods, 1 seed, 1 + 1 epochs at 32 px."
    photos = make_synthetic_photos(tmp_path / 'drawn', per_class=6, size=48)
    env = dict(os.environ, MIXAUG_WEIGHTS_DIR=str(tmp_path / 'weights'), HF_HUB_OFFLINE='1')
    command = [sys.executable, '-m', 'mixaug_fastai.course.tutorial', '--out', str(tmp_path / 'out'), '--data', str(photos), '--device', 'cpu',
               '--size', '32', '--epochs', '1', '--bs', '4', '--seeds', '0', '--methods', 'none', 'CutMix']
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'CutMix              seed 0: accuracy' in done.stdout and 'Total: 2 runs' in done.stdout
    runs = pd.read_csv(tmp_path / 'out' / 'runs.csv')
    assert runs.method.tolist() == ['none', 'CutMix'] and runs.accuracy.between(0, 1).all()
    epochs = pd.read_csv(tmp_path / 'out' / 'epochs.csv')
    assert epochs.groupby('method').size().to_dict() == {'none': 2, 'CutMix': 2}
    recorded = json.loads((tmp_path / 'out' / 'settings.json').read_text())
    assert recorded['size'] == 32 and recorded['methods'] == ['none', 'CutMix'] and recorded['command'].startswith('python -m mixaug_fastai.course.tutorial')
    assert recorded['synthetic'] and recorded['data'].startswith('SYNTHETIC drawings, NOT photos: ')  # found by its marker file
    assert recorded['data'].endswith('(argument): 6 roses, 6 tulips') and 'drawn' in recorded['data']
    assert str(tmp_path) not in (tmp_path / 'out' / 'settings.json').read_text()  # no machine-specific absolute path, command included
