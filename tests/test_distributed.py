"Two-process data-parallel training on the CPU (torchrun, gloo), with each callback; bounded in time, its processes cleaned up."
import json, math, os, select, signal, subprocess, sys, time, uuid
from pathlib import Path
import pytest, torch
import torch.distributed as dist
from test_precision import CALLBACK_NAMES
from ddp_worker import running_thread_name, PF_EXITING

WORKER = Path(__file__).with_name('ddp_worker.py')
TIMEOUT_S = 240  # about 30 s on two busy cores; a hung rank is killed well before CI's budget
RUN_MARKER = 'MIXAUG_TEST_RUN'  # set to a fresh id in each launch's environment, which every process it starts inherits
CAN_FIND_PROCESSES = Path('/proc').is_dir() and hasattr(os, 'pidfd_open')  # Linux: read each process's environment, signal it by pidfd

def has_exited(pidfd:int, wait_s:float=0) -> bool:
    "Whether the process behind `pidfd` has ended (a zombie counts), waiting up to `wait_s` for it."
    return bool(select.select([pidfd], [], [], wait_s)[0])

def processes_of(run_id:str) -> dict:
    "{pid: pidfd} for every live process whose environment carries this run's marker."
    marker, found = f'{RUN_MARKER}={run_id}'.encode(), {}
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit(): continue
        try: pidfd = os.pidfd_open(int(entry.name))
        except (ProcessLookupError, PermissionError): continue
        try: marked = marker in (entry / 'environ').read_bytes().split(b'\0')
        except (FileNotFoundError, ProcessLookupError, PermissionError): marked = False
        # still alive after the read, so the pid was not reused meanwhile: the environment read was this very process's
        if marked and not has_exited(pidfd): found[int(entry.name)] = pidfd
        else: os.close(pidfd)
    return found

def kill_everything(launcher:subprocess.Popen, run_id:str, wait_s:float=60) -> list:
    """SIGKILL every process of this run and wait until each has ended; returns their pids. A process is recognised by the run's
    marker in its environment and signalled through a pidfd, so no recycled pid is ever hit, whatever session it started
    (torchrun starts every worker in a session of its own). Without /proc and pidfds, only the launcher's process group is
    killed, while the launcher is not yet reaped (its pid cannot have been reused)."""
    if not CAN_FIND_PROCESSES:
        if launcher.poll() is None: os.killpg(launcher.pid, signal.SIGKILL)
        return []
    killed = []
    while found := processes_of(run_id):  # again: a process may have started a child between the search and the kill
        for pid, pidfd in found.items(): signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        alive = [pid for pid, pidfd in found.items() if not has_exited(pidfd, wait_s)]
        for pidfd in found.values(): os.close(pidfd)
        if alive: pytest.fail(f"processes {alive} of the two-process run survived SIGKILL for {wait_s} s")
        killed += found
    return killed

def start(worker:Path, out_dir:Path) -> tuple[subprocess.Popen, str]:
    "Start `worker` on 2 processes under torchrun, marked with a fresh run id; the launcher and the id."
    run_id = uuid.uuid4().hex
    command = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', str(worker), str(out_dir)]
    env = {**os.environ, RUN_MARKER: run_id, 'OMP_NUM_THREADS': '1', 'PYTHONFAULTHANDLER': '1',  # a native abort prints every thread's Python stack
           'PYTHONPATH': os.pathsep.join(filter(None, [str(WORKER.parent), os.environ.get('PYTHONPATH')]))}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True), run_id

def finish(launcher:subprocess.Popen, run_id:str, timeout_s:float) -> str:
    "Wait for the run; kill every process it started if it outlives `timeout_s`. Returns the output of a successful run."
    try: output, _ = launcher.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        killed = kill_everything(launcher, run_id)
        output, _ = launcher.communicate()
        pytest.fail(f"the two-process run did not finish within {timeout_s} s (a rank hung?); its {len(killed)} processes were killed. Output:\n{output[-4000:]}")
    strays = kill_everything(launcher, run_id)
    assert launcher.returncode == 0, f"torchrun exited with {launcher.returncode}:\n{output[-4000:]}"
    assert not strays, f"torchrun finished but processes {strays} of its run were still running (now killed):\n{output[-4000:]}"
    return output

def launch(out_dir:Path) -> str:
    "Run the worker on 2 processes under torchrun within TIMEOUT_S. Returns the output."
    return finish(*start(WORKER, out_dir), timeout_s=TIMEOUT_S)

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

@needs_gloo
def test_each_rank_tears_down_before_interpreter_shutdown(ranks):
    "No gloo thread outlives destroy_process_group: left to interpreter shutdown, they died in a different order on each rank (SIGABRT)."
    if ranks[0]['threads_after_teardown'] is None: pytest.skip("no /proc/self/task here to list a process's threads")
    assert [rank['threads_after_teardown'] for rank in ranks] == [[], []]

HANG = """import os, subprocess, sys, time
from pathlib import Path
out, rank = Path(sys.argv[1]), os.environ['RANK']
child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
(out / f'pids{rank}.tmp').write_text(f'{os.getpid()} {child.pid}')
os.replace(out / f'pids{rank}.tmp', out / f'pids{rank}')  # whole or absent: the test reads it as soon as it appears
time.sleep(600)
"""

def started_processes(launcher:subprocess.Popen, out_dir:Path, bound_s:float=TIMEOUT_S) -> list:
    "The pids that both hanging ranks wrote (each its own and its child's), once both have; fails if the launch ends or stalls first."
    deadline = time.monotonic() + bound_s
    while len(files := sorted(out_dir.glob('pids[01]'))) < 2:
        if launcher.poll() is not None: pytest.fail(f"torchrun ended ({launcher.returncode}) before both hanging ranks started:\n{launcher.communicate()[0][-4000:]}")
        if time.monotonic() > deadline: pytest.fail(f"the hanging ranks had not started after {bound_s} s")
        time.sleep(.05)
    return [int(pid) for path in files for pid in path.read_text().split()]

@pytest.mark.skipif(not CAN_FIND_PROCESSES, reason="needs Linux /proc and pidfds to find and kill every process of a run")
def test_a_hung_run_is_killed_with_all_its_processes(tmp_path):
    "The timeout path itself: workers that never finish, each with a child, are all killed, and the test fails with a clear message."
    hang = tmp_path / 'hang.py'
    hang.write_text(HANG)
    # a process of another run (say a second pytest on the same machine), in a session of its own like a torchrun worker
    other_run = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], env={**os.environ, RUN_MARKER: 'another-run'}, start_new_session=True)
    try:
        launcher, run_id = start(hang, tmp_path)
        pids = started_processes(launcher, tmp_path)
        pidfds = [os.pidfd_open(pid) for pid in pids]  # handles on these very processes, taken while they run (they sleep 600 s)
        assert len(pidfds) == 4 and not any(has_exited(pidfd) for pidfd in pidfds)
        with pytest.raises(pytest.fail.Exception, match=r'did not finish within 1 s .* processes were killed'): finish(launcher, run_id, timeout_s=1)
        assert launcher.returncode == -signal.SIGKILL
        assert all(has_exited(pidfd) for pidfd in pidfds)  # kill_everything returns only once every process it killed has ended
        assert processes_of(run_id) == {}
        assert other_run.poll() is None  # left alone: had it been signalled, it would have ended before kill_everything returned
        for pidfd in pidfds: os.close(pidfd)
    finally: other_run.kill(); other_run.wait()

def fake_task(tmp_path:Path, name:str, state:str, flags:int) -> Path:
    "A /proc/<pid>/task/<tid> directory holding only a stat line with this name, state and flags (fields as proc(5) gives them)."
    task = tmp_path / name.replace('/', '_')
    task.mkdir()
    (task / 'stat').write_text(f"4242 ({name}) {state} 4000 4000 4000 0 -1 {flags} 15 0 0 0 0 0\n")
    return task

@pytest.mark.parametrize('name', ['gloo_tcp_loop', 'a (b) c'])  # comm may hold spaces and parentheses: stat is split after the last ')'
def test_a_thread_counts_until_it_begins_to_exit(tmp_path, name):
    "pthread_join can return while the joined thread is still listed in /proc, in do_exit with PF_EXITING set: it is not counted."
    assert running_thread_name(fake_task(tmp_path, name, 'S', 0x400040)) == name
    assert running_thread_name(fake_task(tmp_path, name + '2', 'R', 0x400040 | PF_EXITING)) is None
    assert running_thread_name(tmp_path / 'gone') is None  # unlisted between the directory listing and the read
