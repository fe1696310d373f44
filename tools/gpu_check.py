"""The GPU check: on a CUDA machine, within about 8 minutes, the numbers no CPU can give, written under runs/gpu/
(ignored by git; `--out results/gpu` publishes them):

- the benchmark's GPU column (bench/bench_augment.py --device cuda, fewer repeats): time per batch beside fastai, timm,
  torchvision and kornia, and host-device synchronisations per batch counted with torch.cuda.set_sync_debug_mode
  (the target is 0 for every callback of ours; fastai's are counted beside them);
- the tutorial's GPU setting (python -m mixaug_fastai.course.tutorial --device cuda: 224 px, 1 + 8 epochs, 5 seeds,
  mixed precision).

    python tools/gpu_check.py                   # what `make gpu-check` runs: both steps, runs/gpu/
    python tools/gpu_check.py --only bench      # one step

Each step runs in its own process with its share of --budget-s; summary.md in the results folder gives each step's command,
exit status and time. It refuses to run without CUDA (exit status 2): its numbers are GPU numbers.
"""
import argparse, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARES = {'bench': .4, 'tutorial': .6}  # of the budget: the tutorial's 25 runs take the larger part

def step_commands(out:Path) -> dict:
    "The command of each step, writing under `out`."
    return {'bench': [sys.executable, 'bench/bench_augment.py', '--device', 'cuda', '--repeats', '10', '--rounds', '2',
                      '--resnet-rounds', '1', '--out', str(out / 'bench.md')],
            'tutorial': [sys.executable, '-m', 'mixaug_fastai.course.tutorial', '--device', 'cuda', '--out', str(out / 'tutorial')]}

def budget(text:str) -> int:
    "--budget-s: whole seconds, at least 60."
    try: value = int(text)
    except ValueError: value = None
    if value is None or value < 60: raise argparse.ArgumentTypeError(f"must be a whole number of seconds >= 60; got {text!r}")
    return value

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python tools/gpu_check.py', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, default=ROOT / 'runs' / 'gpu', help='results folder (default: runs/gpu, ignored by git; results/gpu publishes them)')
    parser.add_argument('--only', choices=sorted(SHARES), help='run one step (default: both)')
    parser.add_argument('--budget-s', type=budget, default=480, help='seconds for all steps together (default: %(default)s, 8 minutes)')
    return parser.parse_args(argv)

def cuda_missing() -> str|None:
    "Why this machine cannot run the check, or None when it has a CUDA GPU."
    import torch
    if torch.cuda.is_available(): return None
    return (f"gpu_check needs a CUDA GPU, and torch.cuda.is_available() is False here (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda or 'none'}): its numbers are GPU numbers, so it does not run on the CPU")

def run_step(name:str, command:list, seconds:float) -> tuple:
    "Run one step; (exit status or 'timed out', seconds taken)."
    started = time.perf_counter()
    try: status = subprocess.run(command, cwd=ROOT, timeout=seconds).returncode
    except subprocess.TimeoutExpired: status = f'timed out after {seconds:.0f} s'
    return status, time.perf_counter() - started

def main(argv=None):
    args = parse_args(argv)
    reason = cuda_missing()
    if reason: print(reason, file=sys.stderr); sys.exit(2)
    args.out.mkdir(parents=True, exist_ok=True)
    names = [args.only] if args.only else list(SHARES)
    commands, lines, failed = step_commands(args.out), [], False
    for name in names:
        seconds = args.budget_s * (1 if args.only else SHARES[name])
        status, taken = run_step(name, commands[name], seconds)
        failed |= status != 0
        lines.append(f"| {name} | `{' '.join(Path(c).name if c == sys.executable else c for c in commands[name])}` | {status} | {taken:.0f} |")
    (args.out / 'summary.md').write_text("# GPU check\n\n| step | command | exit status | seconds |\n|---|---|---|---|\n" + '\n'.join(lines) + '\n')
    print((args.out / 'summary.md').read_text())
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
