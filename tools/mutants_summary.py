"""The score of the last `mutmut run` and its surviving mutants, each with the line it changed: what `make mutants` prints at the end.

    python tools/mutants_summary.py 'mixaug_fastai.loss*'
"""
import collections, fnmatch, re, subprocess, sys
from pathlib import Path

MUTMUT = str(Path(sys.executable).with_name('mutmut'))
DETECTED = ('killed', 'timeout', 'segfault')  # a mutant that makes the tests fail, hang or crash is caught

def statuses(pattern:str) -> dict:
    "{mutant name: status} for the mutants matching `pattern`, from `mutmut results --all true`."
    lines = subprocess.run([MUTMUT, 'results', '--all', 'true'], capture_output=True, text=True, check=True).stdout.splitlines()
    pairs = (line.strip().rsplit(': ', 1) for line in lines if ': ' in line)
    return {name: status for name, status in pairs if fnmatch.fnmatch(name, pattern)}

def changed_line(name:str) -> str:
    "The line the mutant adds (`mutmut show`'s `+` line), stripped."
    diff = subprocess.run([MUTMUT, 'show', name], capture_output=True, text=True).stdout.splitlines()
    return next((l[1:].strip() for l in diff if l.startswith('+') and not l.startswith('+++')), '?')

def main(pattern='mixaug_fastai.*'):
    found = statuses(pattern)
    by_module = collections.defaultdict(collections.Counter)
    for name, status in found.items(): by_module[name.split('.x')[0]][status] += 1
    for module, counts in sorted(by_module.items()):
        checked = sum(n for status, n in counts.items() if status != 'not checked')
        caught = sum(counts[s] for s in DETECTED)
        print(f"{module}: {caught} of {checked} checked mutants caught ({100 * caught / max(checked, 1):.1f}%); {dict(counts)}")
    for name, status in found.items():
        if status in ('survived', 'no tests'): print(f"  {status}: {name}: {changed_line(name)}")

if __name__ == '__main__': main(*sys.argv[1:])
