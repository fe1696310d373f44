"""The README's main jobs, run as `make` runs them in a fresh clone, with and without ../shared beside it: they write under runs/,
which git ignores, so `git status --porcelain` stays empty and the published results/ that the pages show (and tools/check_docs.py
compares them with) stay as committed. Quick settings (`ARGS='--quick ...'`): the folders and files are those of a full run."""
import os, shutil, stat, subprocess, sys
from pathlib import Path
import pytest
from mixaug_fastai.course.camvid import make_synthetic_scenes

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / 'shared' / 'data'

def git(folder:Path, *args) -> str:
    done = subprocess.run(['git', '-c', 'user.name=test', '-c', 'user.email=test@example.invalid', *args], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout

def fresh_clone(folder:Path) -> Path:
    "This working tree as a fresh clone of it would be: every file git tracks or would track, committed; no ../shared beside it."
    for name in git(ROOT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard').split('\0'):
        source = ROOT / name
        if name and (source.is_file() or source.is_symlink()):  # a tracked file deleted from the tree is not in a clone of it either
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name, follow_symlinks=False)
    git(folder, 'init', '-q'); git(folder, 'add', '-A'); git(folder, 'commit', '-q', '-m', 'the working tree')
    return folder

def venv_running_this_python(folder:Path) -> Path:
    "A stand-in for make's .venv: its python is the one running the tests, and `.installed` is newer than the requirements, so `make env` has nothing to do."
    python = folder / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    (folder / '.installed').touch()
    return folder

def make(clone:Path, venv:Path, target:str, args:str, **environment) -> subprocess.CompletedProcess:
    "`make target ARGS=args` in `clone`, importing the clone's package, with none of this machine's data folders unless given."
    env = {k: v for k, v in os.environ.items() if not k.startswith('MIXAUG_') or k == 'MIXAUG_WEIGHTS_DIR'}
    env.update(PYTHONPATH=str(clone), HF_HUB_OFFLINE='1', **environment)
    return subprocess.run(['make', '--no-print-directory', target, f'VENV={venv}', f'ARGS={args}'], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=2400)  # minutes on a loaded 2-core machine

@pytest.fixture
def clone(tmp_path): return fresh_clone(tmp_path / 'clone')

@pytest.fixture
def venv(tmp_path): return venv_running_this_python(tmp_path / 'venv')

def assert_ran_into_runs_and_left_the_tree_clean(done, clone:Path, course:str):
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert git(clone, 'status', '--porcelain', '--untracked-files=all') == '', "the main job changed the clone's tracked or unignored files"
    assert (clone / 'runs' / course / 'results.md').exists() and (clone / 'runs' / course / 'settings.json').exists()
    assert f"Results in runs/{course}/results.md" in done.stdout

photo_sources = [pytest.param({}, id='no-shared'),
                 pytest.param(dict(MIXAUG_ROSES_TULIPS=str(SHARED_DATA / 'roses_tulips')), id='shared', marks=pytest.mark.skipif(
                     not (SHARED_DATA / 'roses_tulips').is_dir(), reason=f"no shared photos at {SHARED_DATA / 'roses_tulips'} (optional)"))]

@pytest.mark.parametrize('data', photo_sources)
def test_make_tutorial_leaves_a_fresh_clone_clean(clone, venv, data):
    done = make(clone, venv, 'tutorial', '--quick --no-download', **data)
    assert_ran_into_runs_and_left_the_tree_clean(done, clone, 'tutorial')
    assert ('SYNTHETIC' in (clone / 'runs' / 'tutorial' / 'results.md').read_text()) == (not data)

def test_make_segmentation_leaves_a_fresh_clone_clean(clone, venv, tmp_path):
    scenes = make_synthetic_scenes(tmp_path / 'scenes', n_train=8, n_valid=4, height=48, width=64)
    done = make(clone, venv, 'segmentation', f'--quick --no-download --methods none CutMix --data {scenes}')
    assert_ran_into_runs_and_left_the_tree_clean(done, clone, 'segmentation')

@pytest.mark.skipif(not (SHARED_DATA / 'camvid_segnet_subset').is_dir(), reason=f"no shared CamVid subset at {SHARED_DATA / 'camvid_segnet_subset'} (optional)")
def test_make_segmentation_on_the_shared_scenes_leaves_a_fresh_clone_clean(clone, venv):
    done = make(clone, venv, 'segmentation', '--quick --no-download --methods none', MIXAUG_CAMVID=str(SHARED_DATA / 'camvid_segnet_subset'))
    assert_ran_into_runs_and_left_the_tree_clean(done, clone, 'segmentation')
