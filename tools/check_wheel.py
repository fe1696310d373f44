"""The package as a user installs it without a clone: build the sdist and the wheel, check what they hold,
install the wheel into a fresh virtual environment with only its declared dependencies, and fit one batch
with each callback there, from a folder outside the repository.

    python tools/check_wheel.py            # what `make test-wheel` runs; everything in a temporary folder
    python tools/check_wheel.py --keep DIR # the same in DIR, kept afterwards (dist/, venv/, outside/)

The build runs on a copy of the working tree (tracked files and untracked ones git does not ignore), so it
writes nothing into the repository. The fresh environment is made with `python -m venv` (no system site
packages) and `pip install <wheel>`: pip resolves fastai and torch from the package index. Only torch's build
(torch, torchvision, triton, nvidia-*) is hard-linked in first from the environment running this check
(tools/share_torch.py): pip then finds the declared `torch` satisfied, as it would by the release on this disk
where /etc/xdg/pip caps it (../shared/guide/FACTS.md). Each step prints its duration.
"""
import argparse, configparser, shlex, shutil, subprocess, sys, tarfile, tempfile, time, zipfile
from pathlib import Path
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'mixaug_fastai'
# every module a user imports: the library and the course
MODULES = ('__init__', 'core', 'loss', 'callbacks', 'all', 'course/__init__', 'course/data', 'course/pretrained', 'course/tutorial')
# what must never ship: tests, notebooks, docs sources and build leftovers
JUNK = ('tests/', 'nbs/', '.ipynb', '__pycache__', '.pyc', 'examples/', 'bench/', 'tools/', 'results/', 'runs/', '_docs/', '_proc/')

# Run by the fresh environment's Python from a folder outside the repository: the import must come from the wheel
FIT_SCRIPT = '''
import sys
from pathlib import Path
import mixaug_fastai
venv = Path(sys.argv[1]).resolve()
assert Path(mixaug_fastai.__file__).resolve().is_relative_to(venv), f"mixaug_fastai imported from {mixaug_fastai.__file__}, not from {venv}"
import torch
from torch import nn
from fastai.vision.all import DataLoaders, Learner, Callback, TensorImage, TensorCategory, CrossEntropyLossFlat, set_seed
from mixaug_fastai.all import MixUp, CutMix, MixUpCutMix, Cutout

class Batches(Callback):
    "Keeps a training batch's images as they come from the DataLoader (order -1) and as the model gets them (order 1)."
    def __init__(self, order): self.order, self.images = order, []
    def before_batch(self):
        if self.training: self.images.append(self.xb[0].detach().clone())

def learner():
    set_seed(0)
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(12, 3, 32, 32, generator=g), torch.randint(0, 2, (12,), generator=g)
    items = [(TensorImage(x), TensorCategory(y)) for x, y in zip(images, labels)]
    dls = DataLoaders.from_dsets(items[:8], items[8:], bs=8, device='cpu', num_workers=0)  # 8 training items: one batch
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    return Learner(dls, model, loss_func=CrossEntropyLossFlat())

for callback in (MixUp(seed=0), CutMix(seed=0), MixUpCutMix(seed=0), Cutout(seed=0)):
    learn, before, after = learner(), Batches(-1), Batches(1)
    weights = [p.detach().clone() for p in learn.model.parameters()]
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2, cbs=[before, callback, after])
    name = type(callback).__name__
    assert len(before.images) == len(after.images) == 1, f"{name}: {len(after.images)} training batches, expected 1"
    changed = (before.images[0] != after.images[0]).float().mean().item()
    assert changed > 0, f"{name} left the batch unchanged"
    train_loss = learn.recorder.values[-1][0]
    assert torch.isfinite(torch.tensor(train_loss)), f"{name}: training loss {train_loss}"
    assert any(not torch.equal(w, p) for w, p in zip(weights, learn.model.parameters())), f"{name}: no optimiser step"
    print(f"{name:12} one batch: {changed:.0%} of the pixels changed, training loss {train_loss:.3f}")
print(f"imported from {Path(mixaug_fastai.__file__).parent}")
'''

COURSE_SCRIPT = '''
import mixaug_fastai.course.data
from mixaug_fastai.course.pretrained import packaged_lite0_weights
from mixaug_fastai.course.tutorial import tutorial_parser
assert '--no-download' in tutorial_parser().format_help()
print(f"course modules import, the tutorial's command line builds; offline Lite0 weights: {packaged_lite0_weights().name}")
'''

def step(title:str, command:list, **kwargs) -> subprocess.CompletedProcess:
    "Run `command`, print its duration; stop with its output if it fails."
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    print(f"{title}: {time.perf_counter() - started:.0f} s", flush=True)
    if done.returncode != 0:
        sys.exit(f"FAILED ({done.returncode}): {shlex.join(map(str, command))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done

def copy_source(dest:Path) -> Path:
    "The working tree's files that git tracks or would track, copied into `dest`."
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split('\0')):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest

def declared_requirements() -> set:
    "The requirements settings.ini declares: the library's, and the `tutorial` and `dev` extras'."
    parser = configparser.ConfigParser(); parser.read(ROOT / 'settings.ini')
    cfg = parser['DEFAULT']
    extras = {extra: shlex.split(cfg[f'{extra}_requirements']) for extra in ('tutorial', 'dev')}
    return ({Requirement(r) for r in shlex.split(cfg['requirements'])} |
            {Requirement(f'{r}; extra == "{extra}"') for extra, listed in extras.items() for r in listed})

def check_wheel_contents(wheel:Path):
    "The wheel holds every module, nothing outside the package and its metadata, no junk, and the declared requirements."
    names = zipfile.ZipFile(wheel).namelist()
    missing = [m for m in MODULES if f'{PACKAGE}/{m}.py' not in names]
    outside = [n for n in names if not (n.startswith(f'{PACKAGE}/') or '.dist-info/' in n)]
    junk = [n for n in names if any(j in n for j in JUNK)]
    assert not (missing or outside or junk), f"wheel {wheel.name}: missing {missing}, outside the package {outside}, junk {junk}"
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
    required = {Requirement(line.split(':', 1)[1]) for line in metadata.splitlines() if line.startswith('Requires-Dist:')}
    expected = declared_requirements()
    assert required == expected, f"wheel requirements {sorted(map(str, required))} differ from settings.ini's {sorted(map(str, expected))}"
    print(f"wheel {wheel.name}: {len(names)} files, every module, no junk; requires {sorted(map(str, required))}")

def check_sdist_contents(sdist:Path):
    "The sdist holds what building the wheel from it needs (setup.py reads settings.ini) and no tests or notebooks."
    names = [n.split('/', 1)[1] for n in tarfile.open(sdist).getnames() if '/' in n]
    missing = [n for n in ('setup.py', 'settings.ini', 'pyproject.toml', 'README.md', *(f'{PACKAGE}/{m}.py' for m in MODULES)) if n not in names]
    junk = [n for n in names if any(j in n for j in JUNK)]
    assert not (missing or junk), f"sdist {sdist.name}: missing {missing}, junk {junk}"
    print(f"sdist {sdist.name}: {len(names)} entries, settings.ini included, no junk")

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--keep', type=Path, help='work in this folder and keep it (default: a temporary folder, removed)')
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix='check_wheel_'))
    started = time.perf_counter()
    try:
        for sub in ('src', 'dist', 'outside'): (work / sub).mkdir(parents=True, exist_ok=True)
        step('build sdist and wheel', [sys.executable, '-m', 'build', '--outdir', work / 'dist', copy_source(work / 'src')])
        wheel, sdist = next((work / 'dist').glob('*.whl')), next((work / 'dist').glob('*.tar.gz'))
        check_wheel_contents(wheel); check_sdist_contents(sdist)
        venv = work / 'venv'
        # from inside a virtual environment, venv still makes a plain one on the base interpreter, without system site packages
        step('fresh venv', [sys.executable, '-m', 'venv', '--clear', venv])
        # pip would find the same torch release on this disk; a link saves a third 5.5 GB copy during `make test`
        print(step('hard-link torch from this environment', [sys.executable, ROOT / 'tools' / 'share_torch.py', venv]).stdout.strip())
        python, outside = venv / 'bin' / 'python', dict(cwd=work / 'outside')
        step('pip install the wheel (its declared dependencies: fastai, torch)', [python, '-m', 'pip', 'install', '-q', '--disable-pip-version-check', wheel], **outside)
        step('pip check', [python, '-m', 'pip', 'check'], **outside)
        versions = step('versions', [python, '-c', 'import fastai, fastcore, torch; print(f"fastai {fastai.__version__}, fastcore {fastcore.__version__}, torch {torch.__version__}")'], **outside)
        print(versions.stdout.strip())
        (work / 'outside' / 'fit_one_batch.py').write_text(FIT_SCRIPT)
        fit = step('fit one batch with each callback', [python, 'fit_one_batch.py', venv], **outside)
        print(fit.stdout.strip())
        step('pip install the wheel with the tutorial extra', [python, '-m', 'pip', 'install', '-q', '--disable-pip-version-check', f'{wheel}[tutorial]'], **outside)
        course = step('course modules', [python, '-c', COURSE_SCRIPT], **outside)
        print(course.stdout.strip())
        print(f"wheel check passed in {time.perf_counter() - started:.0f} s")
    finally:
        if not args.keep: shutil.rmtree(work, ignore_errors=True)

if __name__ == '__main__': main()
