"""tools/share_torch.py on made-up distributions: torch's build is hard-linked, nothing else is, console scripts outside
site-packages are left out of the files and of the RECORD, and the destination's Python finds the linked release installed
(importlib.metadata, which is how pip finds installed distributions)."""
import os, subprocess, sys
from pathlib import Path
import pytest

TOOLS = Path(__file__).resolve().parents[1] / 'tools'
sys.path.insert(0, str(TOOLS))
import share_torch

def make_distribution(site, name, version, files):
    "A distribution as pip leaves it: `files` (path: text) plus a dist-info whose RECORD lists them and itself."
    info = f"{name.replace('-', '_')}-{version}.dist-info"
    (site / info).mkdir(parents=True)
    (site / info / 'METADATA').write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)
    listed = [*files, f'{info}/METADATA', f'{info}/RECORD']
    (site / info / 'RECORD').write_text(''.join(f'{path},,\n' for path in listed))
    return info

def test_links_torch_builds_only_and_drops_scripts_outside_site_packages(tmp_path):
    source, dest = tmp_path / 'src' / 'lib' / 'site-packages', tmp_path / 'dest' / 'lib' / 'site-packages'
    dest.mkdir(parents=True)
    torch_info = make_distribution(source, 'torch', '2.14.1', {'torch/__init__.py': 'x = 1\n', 'torch/lib/libtorch.so': 'binary',
                                                               '../../bin/torchrun': '#!python\n'})
    make_distribution(source, 'nvidia-cublas', '13.1', {'nvidia/cublas/lib/libcublas.so': 'binary'})
    make_distribution(source, 'Triton', '3.8.0', {'triton/__init__.py': ''})
    make_distribution(source, 'fastai', '2.8.7', {'fastai/__init__.py': ''})
    make_distribution(source, 'torchmetrics', '1.0', {'torchmetrics/__init__.py': ''})

    assert share_torch.share(source, dest) == ['nvidia-cublas 13.1', 'torch 2.14.1', 'Triton 3.8.0']
    for path in ('torch/__init__.py', 'torch/lib/libtorch.so', 'nvidia/cublas/lib/libcublas.so', 'triton/__init__.py', f'{torch_info}/METADATA'):
        assert (dest / path).stat().st_ino == (source / path).stat().st_ino, path
    assert not (dest / 'fastai').exists() and not (dest / 'torchmetrics').exists()
    assert not (tmp_path / 'dest' / 'bin').exists()
    assert (dest / torch_info / 'RECORD').read_text().splitlines() == [
        'torch/__init__.py,,', 'torch/lib/libtorch.so,,', f'{torch_info}/METADATA,,', f'{torch_info}/RECORD,,']
    assert (dest / torch_info / 'RECORD').stat().st_ino != (source / torch_info / 'RECORD').stat().st_ino
    assert share_torch.share(source, dest) == ['nvidia-cublas 13.1', 'torch 2.14.1', 'Triton 3.8.0'], "a second run must not fail on what is there"

def test_the_destination_finds_the_linked_release_installed(tmp_path):
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', venv], check=True)
    site = share_torch.site_packages(venv)
    make_distribution(tmp_path / 'src', 'torch', '2.14.1', {'torch/__init__.py': "__version__ = '2.14.1'\n"})
    share_torch.share(tmp_path / 'src', site)
    python = venv / 'bin' / 'python'
    found = subprocess.run([python, '-c', "import importlib.metadata as m, torch; print(m.version('torch'), torch.__version__)"],
                           capture_output=True, text=True, check=True, env={k: v for k, v in os.environ.items() if k != 'PYTHONPATH'})
    assert found.stdout.split() == ['2.14.1', '2.14.1']

def test_refuses_a_destination_without_site_packages(tmp_path):
    with pytest.raises(SystemExit, match=r'no site-packages folder at .*nowhere; make the venv first'): share_torch.share(tmp_path, tmp_path / 'nowhere')

def test_between_filesystems_nothing_is_linked_and_it_says_so(tmp_path, monkeypatch, capsys):
    "Hard links cannot cross filesystems: the tool steps aside and pip installs its own copy."
    venv = tmp_path / 'venv'; share_torch.site_packages(venv).mkdir(parents=True)
    monkeypatch.setattr(share_torch, 'same_filesystem', lambda a, b: False)
    monkeypatch.setattr(share_torch, 'share', lambda *a: pytest.fail('share() ran across filesystems'))
    monkeypatch.setattr(sys, 'argv', ['share_torch.py', str(venv)])
    share_torch.main()
    assert 'are on different filesystems; nothing linked, pip installs its own copy' in capsys.readouterr().out
