"tools/gpu_check.py on the CPU: its arguments, its refusal to run without CUDA, and what each step would run."
import subprocess, sys
from pathlib import Path
import pytest, torch

TOOLS = Path(__file__).resolve().parents[1] / 'tools'
sys.path.insert(0, str(TOOLS))
import gpu_check

def run(*args):
    return subprocess.run([sys.executable, str(TOOLS / 'gpu_check.py'), *args], capture_output=True, text=True, timeout=120)

@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is only seen on a machine without CUDA")
def test_refuses_to_run_without_cuda_and_writes_nothing(tmp_path):
    result = run('--out', str(tmp_path / 'gpu'))
    assert result.returncode == 2, result
    assert 'needs a CUDA GPU' in result.stderr and 'torch.cuda.is_available() is False' in result.stderr
    assert not (tmp_path / 'gpu').exists()

@pytest.mark.parametrize('args, message', [(['--budget-s', '30'], "argument --budget-s: must be a whole number of seconds >= 60; got '30'"),
                                           (['--budget-s', 'ten'], "argument --budget-s: must be a whole number of seconds >= 60; got 'ten'"),
                                           (['--only', 'demo'], "argument --only: invalid choice: 'demo'")])
def test_bad_arguments_exit_2_naming_the_option(args, message):
    result = run(*args)
    assert result.returncode == 2 and message in result.stderr, result

def test_help_exits_0():
    result = run('--help')
    assert result.returncode == 0 and 'default: runs/gpu' in result.stdout

def test_the_steps_are_the_benchmark_on_cuda_and_the_tutorial_gpu_setting(tmp_path):
    commands = gpu_check.step_commands(tmp_path)
    assert commands['bench'][1:4] == ['bench/bench_augment.py', '--device', 'cuda'] and commands['bench'][-1] == str(tmp_path / 'bench.md')
    assert commands['tutorial'][1:] == ['-m', 'mixaug_fastai.course.tutorial', '--device', 'cuda', '--out', str(tmp_path / 'tutorial')]
    from mixaug_fastai.course.tutorial import default_settings
    settings = default_settings('cuda')  # what the tutorial step trains with on the GPU: no options override it
    assert (settings.size, settings.epochs, settings.freeze_epochs, len(settings.seeds), settings.fp16) == (224, 8, 1, 5, True)
    assert abs(sum(gpu_check.SHARES.values()) - 1) < 1e-9
    args = gpu_check.parse_args([])
    assert args.budget_s == 480 and args.only is None
