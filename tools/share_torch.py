"""Hard-link the installed PyTorch build into another virtual environment, so that it holds no second copy of it.

    .venv/bin/python tools/share_torch.py DEST_VENV

On x86_64, torch 2.14.1 is a CUDA build: with torchvision, triton and the nvidia-* libraries it takes about 5.5 GB
in each environment (../shared/guide/FACTS.md). `make test` makes two environments besides the development one
(.venv-newest and the wheel check's fresh venv); three copies filled a CI machine's disk ("No space left on device").
Run before the destination's `pip install`: pip then finds torch already installed at the pinned release and only
installs what is missing. Every file of these distributions that lies in site-packages is hard-linked (no bytes copied);
console scripts outside it are left out and dropped from the destination's RECORD, so the RECORD lists what is there.
Both environments must be on one filesystem; where they are not, nothing is linked, it says so, and pip installs its
own copy as before.
"""
import csv, io, os, re, sys
from importlib.metadata import distributions
from pathlib import Path

# distribution names as their METADATA spells them, after PEP 503 normalisation
SHARED = re.compile(r'(torch|torchvision|triton|nvidia-.+)')

def normalised(name): return re.sub(r'[-_.]+', '-', name).lower()

def site_packages(venv):
    "The site-packages folder of a venv made by an interpreter of this Python version."
    return Path(venv) / 'lib' / f'python{sys.version_info.major}.{sys.version_info.minor}' / 'site-packages'

def shared_distributions(source_site):
    "The distributions in `source_site` whose files are shared, sorted by name."
    found = [d for d in distributions(path=[str(source_site)]) if SHARED.fullmatch(normalised(d.metadata['Name']))]
    return sorted(found, key=lambda d: normalised(d.metadata['Name']))

def _inside(path, folder): return os.path.normpath(folder / path).startswith(str(folder) + os.sep)

def link_distribution(dist, source_site, dest_site):
    "Hard-link `dist`'s files under `source_site` into `dest_site`; its RECORD is written anew, without the files left out."
    record = next(f for f in dist.files if f.name == 'RECORD' and f.parent.name.endswith('.dist-info'))
    kept = [f for f in dist.files if _inside(f, source_site) and f != record]
    for file in kept:
        target = dest_site / file
        if target.exists(): continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(source_site / file, target)
    listed = {str(f) for f in kept} | {str(record)}
    rows = [row for row in csv.reader(io.StringIO((source_site / record).read_text())) if row and row[0] in listed]
    with open(dest_site / record, 'w', newline='') as out: csv.writer(out, lineterminator='\n').writerows(rows)

def same_filesystem(a, b) -> bool: return Path(a).stat().st_dev == Path(b).stat().st_dev

def share(source_site, dest_site):
    "Link every shared distribution from `source_site` into `dest_site`. Returns 'name version' of each one linked."
    source_site, dest_site = Path(source_site).resolve(), Path(dest_site).resolve()
    if not dest_site.is_dir(): raise SystemExit(f"dest: no site-packages folder at {dest_site}; make the venv first (python -m venv)")
    linked = []
    for dist in shared_distributions(source_site):
        link_distribution(dist, source_site, dest_site)
        linked.append(f"{dist.metadata['Name']} {dist.version}")
    return linked

def main():
    if len(sys.argv) != 2: raise SystemExit(__doc__)
    if sys.prefix == sys.base_prefix: raise SystemExit(f"run this with the Python of the environment to share from, not {sys.executable}")
    source, dest = site_packages(sys.prefix), site_packages(sys.argv[1])
    if dest.is_dir() and not same_filesystem(source, dest):
        print(f"share_torch: {source} and {dest} are on different filesystems; nothing linked, pip installs its own copy")
        return
    linked = share(source, dest)
    print(f"share_torch: hard-linked {len(linked)} distributions into {dest}: {', '.join(linked) or 'none found'}")

if __name__ == '__main__': main()
