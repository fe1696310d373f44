"Two-process data-parallel training on the CPU (torchrun, gloo), with each callback; bounded in time, its processes cleaned up."
import json, math, os, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
import torch.distributed as dist
from test_precision import CALLBACK_NAMES

WORKER = Path(__file__).with_name('ddp_worker.py')
TIMEOUT_S = 240  # about 30 s on two busy cores; a hung rank is killed well before CI's budget

def kill_everything(launcher:subprocess.Popen, out_dir:Path):
    "SIGKILL the launcher's process group and each worker's: torchrun starts every worker in a session of its own (workers write pid{rank})."
    for group in [launcher.pid] + [int(path.read_text()) for path in out_dir.glob('pid*')]:
        try: os.killpg(group, signal.SIGKILL)
        except ProcessLookupError: pass

def launch(out_dir:Path) -> str:
    "Run the worker on 2 processes under torchrun; kill every process it started if it outlives TIMEOUT_S. Returns the output."
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', str(WORKER), str(out_dir)]
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join(filter(None, [str(WORKER.parent), os.environ.get('PYTHONPATH')]))}
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try: output, _ = launcher.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        kill_everything(launcher, out_dir)
        output, _ = launcher.communicate()
        pytest.fail(f"the two-process run did not finish within {TIMEOUT_S} s (a rank hung?); all its processes were killed. Output:\n{output[-4000:]}")
    finally: kill_everything(launcher, out_dir)  # nothing is left after a normal exit; this only catches strays
    assert launcher.returncode == 0, f"torchrun exited with {launcher.returncode}:\n{output[-4000:]}"
    return output

@pytest.fixture(scope='module')
def ranks(tmp_path_factory):
    "What each of the two ranks recorded."
    out_dir = tmp_path_factory.mktemp('ddp')
    launch(out_dir)
    return [json.loads((out_dir / f'rank{rank}.json').read_text()) for rank in (0, 1)]

needs_gloo = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="this torch build has no torch.distributed gloo backend")

@needs_gloo
@pytest.mark.parametrize('name', CALLBACK_NAMES)
def test_training_finishes_with_finite_losses_and_synchronised_weights(ranks, name):
    for seeding in ('unseeded', 'seeded'):
        rank0, rank1 = ranks[0][name][seeding], ranks[1][name][seeding]
        assert len(rank0['losses']) == len(rank1['losses']) == 6  # 2 epochs of 3 batches on each rank's 24 items
        assert all(math.isfinite(loss) for loss in rank0['losses'] + rank1['losses'] + rank0['recorded'])
        assert rank0['losses'] != rank1['losses']  # each rank trained on its own shard
        assert rank0['recorded'] == rank1['recorded']  # fastai's Recorder gathers the ranks' losses
        assert torch.allclose(torch.tensor(rank0['weights']), torch.tensor(rank1['weights']))  # DDP averaged the gradients

@needs_gloo
@pytest.mark.parametrize('name', CALLBACK_NAMES)
def test_ranks_draw_differently_unless_given_the_same_seed(ranks, name):
    unseeded = [ranks[rank][name]['unseeded']['draws'] for rank in (0, 1)]
    seeded = [ranks[rank][name]['seeded']['draws'] for rank in (0, 1)]
    assert all(draw is not None for draw in unseeded[0] + unseeded[1] + seeded[0] + seeded[1])
    assert all(a != b for a, b in zip(*unseeded))  # set_seed alike on both ranks, yet every batch's draw differs
    assert seeded[0] == seeded[1]  # seed=7 on both ranks: the same draws (documented; vary the seed per rank to avoid it)

def is_gone(pid:int) -> bool:
    "Whether process `pid` has ended (a zombie nobody has reaped yet counts as ended)."
    try: return Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] in ('Z', 'X')
    except FileNotFoundError: return True

@pytest.mark.skipif(not Path('/proc').is_dir(), reason="needs /proc to check that the killed processes are gone")
def test_a_hung_run_is_killed_with_all_its_processes(tmp_path, monkeypatch):
    "The timeout path itself: workers that never finish, each with a child, are all killed, and the test fails with a clear message."
    hang = tmp_path / 'hang.py'
    hang.write_text("import os, subprocess, sys, time\nfrom pathlib import Path\nout, rank = Path(sys.argv[1]), os.environ['RANK']\n"
                    "(out / f'pid{rank}').write_text(str(os.getpid()))\n"
                    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
                    "(out / f'child{rank}').write_text(str(child.pid))\ntime.sleep(600)\n")
    monkeypatch.setattr(sys.modules[__name__], 'WORKER', hang)
    monkeypatch.setattr(sys.modules[__name__], 'TIMEOUT_S', 15)
    with pytest.raises(pytest.fail.Exception, match='did not finish within 15 s'): launch(tmp_path)
    pids = [int(path.read_text()) for pattern in ('pid*', 'child*') for path in tmp_path.glob(pattern)]
    assert len(pids) == 4
    time.sleep(.5)
    assert all(is_gone(pid) for pid in pids)
