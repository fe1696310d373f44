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
from mixaug_fastai.course import tutorial

ROOT = Path(__file__).resolve().parents[1]

def test_methods_and_their_callbacks():
    kinds = {m: [type(cb) for cb in method_callbacks(m, seed=3)] for m in METHODS}
    assert kinds == {'none': [], 'MixUp': [MixUp], 'CutMix': [CutMix], 'Cutout': [Cutout], 'CutMix p_batch=0.5': [CutMix]}
    assert method_callbacks('CutMix p_batch=0.5', 3)[0].p_batch == .5 and method_callbacks('MixUp', 3)[0].seed == 3
    with pytest.raises(ValueError, match=r"method must be one of .*; got method='mixup'"): method_callbacks('mixup', 0)

def test_command_line_overrides_the_device_defaults():
    settings = settings_from_args(parse_args(['--device', 'cpu', '--epochs', '4', '--seeds', '7', '8', '--methods', 'Cutout']))
    assert settings == TutorialSettings(epochs=4, seeds=(7, 8), methods=('Cutout',), device='cpu')

def refusal(argv, capsys) -> str:
    "What the command line prints when it refuses `argv`; it must exit with argparse's status 2 (pytest.raises(SystemExit) alone also passes on exit 0)."
    with pytest.raises(SystemExit) as exited: parse_args(argv)
    assert exited.value.code == 2, f"{argv}: exit status {exited.value.code}"
    return capsys.readouterr().err

@pytest.mark.parametrize('argv, message', [
    (['--methods', 'AugMix'], "argument --methods: invalid choice: 'AugMix' (choose from"),
    (['--bs', '0'], "argument --bs: got '0'; allowed: an integer >= 2"),
    (['--bs', 'many'], "argument --bs: got 'many'; allowed: an integer >= 2"),
    (['--epochs', '-1'], "argument --epochs: got '-1'; allowed: an integer >= 1"),
    (['--freeze-epochs', '0'], "argument --freeze-epochs: got '0'; allowed: an integer >= 1"),
    (['--size', '8'], "argument --size: got '8'; allowed: an integer >= 32"),
    (['--lr', '0'], "argument --lr: got '0'; allowed: a finite number > 0"),
    (['--lr', 'nan'], "argument --lr: got 'nan'; allowed: a finite number > 0"),
    (['--seeds', '1', '-2'], "argument --seeds: got '-2'; allowed: an integer >= 0"),
    (['--arch', 'resnet_18'], "argument --arch: got 'resnet_18'; allowed: a timm architecture name"),
    (['--device', 'gpu0'], "argument --device: got 'gpu0'; allowed: a torch device such as cpu, cuda or cuda:1"),
    (['--tf-flowers-url', 'flower_photos.tgz'], "argument --tf-flowers-url: got 'flower_photos.tgz'; allowed: an http(s), ftp or file URL"),
])
def test_command_line_refuses_bad_values_naming_option_value_and_what_is_allowed(argv, message, capsys):
    assert message in refusal(argv, capsys)

def test_command_line_refuses_missing_folders_and_a_file_as_results_folder(tmp_path, capsys):
    assert f"argument --data: got '{tmp_path / 'nowhere'}', which is not an existing folder; allowed: a folder holding roses/ and tulips/" in refusal(['--data', str(tmp_path / 'nowhere')], capsys)
    (tmp_path / 'notes.txt').write_text('x')
    assert f"argument --out: got '{tmp_path / 'notes.txt'}', which is a file; allowed: a folder" in refusal(['--out', str(tmp_path / 'notes.txt')], capsys)

def test_a_data_folder_without_roses_stops_the_main_job_before_training(tmp_path, capsys, monkeypatch):
    (tmp_path / 'photos' / 'daisy').mkdir(parents=True)
    monkeypatch.setattr(tutorial, 'run_comparison', lambda *args, **kwargs: pytest.fail('training started'))
    with pytest.raises(SystemExit) as exited: tutorial.main(['--data', str(tmp_path / 'photos'), '--out', str(tmp_path / 'out')])
    assert exited.value.code == 2 and "has no roses/ or rose/ subfolder (its subfolders: ['daisy'])" in capsys.readouterr().err

def test_the_command_exits_with_status_2_on_a_bad_value(tmp_path):
    # were the value let through, the run must still neither download nor write outside tmp_path
    env = dict(os.environ, FASTAI_HOME=str(tmp_path / 'fastai_home'), MIXAUG_WEIGHTS_DIR=str(tmp_path / 'weights'), HF_HUB_OFFLINE='1')
    done = subprocess.run([sys.executable, '-m', 'mixaug_fastai.course.tutorial', '--bs', '0', '--no-download', '--out', str(tmp_path / 'out')],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "error: argument --bs: got '0'; allowed: an integer >= 2" in done.stderr
    assert not (tmp_path / 'out').exists()

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

def test_the_recorded_command_runs_again_in_a_shell(tmp_path):
    "A course's recorded command is quoted as a shell reads it: a method name with a space stays one argument, and an absolute path is written portably."
    import argparse, shlex
    parser = argparse.ArgumentParser()
    parser.add_argument('--out'); parser.add_argument('--methods', nargs='+')
    recorded = {}
    run = lambda settings, data, out, progress, command: recorded.update(command=command, settings=settings)
    argv = ['--out', str(tmp_path / 'out'), '--methods', 'none', 'MixUp normaliser=count']
    tutorial.run_course_command('mixaug_fastai.course.detection', parser, lambda args: None, lambda args: args.methods, run, argv)
    words = shlex.split(recorded['command'])
    assert words[:3] == ['python', '-m', 'mixaug_fastai.course.detection'] and words[-3:] == ['--methods', 'none', 'MixUp normaliser=count']
    assert str(tmp_path) not in recorded['command'] and parser.parse_args(words[3:]).methods == recorded['settings']
