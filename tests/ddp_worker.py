"""One process of the two-process data-parallel test (tests/test_distributed.py launches it):

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py OUT_DIR

Every rank seeds alike with `set_seed(0)`, as a launched training script does, wraps a tiny model in `DistributedDataParallel`
(gloo backend, CPU) and trains on its own shard of the training set, with each callback unseeded and then seeded. It writes what
each callback drew, the losses, the final weights and the threads still running after teardown to OUT_DIR/rank{RANK}.json.

fastai's own route, `learn.distrib_ctx()`, assumes CUDA (see the Guarantees page), hence this hand-made one on the CPU.

Teardown is explicit. A `DistributedDataParallel` holds the process group, and a Learner sits in reference cycles (its callbacks
point back at it), so a finished Learner lives until some garbage collection; `destroy_process_group` then only drops the world's
reference, and gloo's threads (a socket loop and two work loops per rank) run on until the interpreter shuts down, when each rank
frees its group at a different moment. Hence: every Learner and its DDP wrapper are collected before the next fit (checked), both
ranks meet at a barrier after their last collective, and the group is destroyed with nothing else holding it, which joins its
threads; the rank records which threads are left (none should be) so that the test can check it."""
import gc, json, os, sys, weakref
from pathlib import Path
import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from fastai.vision.all import Callback, DataLoaders, Learner, CrossEntropyLossFlat, set_seed, rank_distrib
from mixaug_fastai.all import MixUp, CutMix, MixUpCutMix, Cutout
from conftest import colour_items, tiny_model

CALLBACKS = {'MixUp': MixUp, 'CutMix': CutMix, 'MixUpCutMix': MixUpCutMix, 'Cutout': Cutout}

class RecordDraws(Callback):
    "What `cb` drew for each training batch, as plain lists, and this rank's own loss (fastai's Recorder averages the ranks')."
    order, run_valid = 1, False
    def __init__(self, cb): super().__init__(); self.cb, self.draws, self.losses = cb, [], []
    def after_batch(self):
        self.losses.append(self.learn.loss.item())
        draw = self.cb.draw
        if draw is None: self.draws.append(None)
        elif hasattr(draw, 'holes'): self.draws.append(draw.holes.tolist())
        else: self.draws.append([torch.as_tensor(draw.lam).tolist(), draw.perm.tolist()])

def shard_learner(rank:int, world_size:int) -> Learner:
    "A Learner on this rank's shard of the training items (every world_size-th one), the model wrapped for data-parallel training."
    items = colour_items(64, 24, 40, seed=0)
    dls = DataLoaders.from_dsets(items[:48][rank::world_size], items[48:], bs=8, device='cpu', num_workers=0)
    return Learner(dls, DistributedDataParallel(tiny_model()), loss_func=CrossEntropyLossFlat())

def train(cb) -> tuple[dict, weakref.ref]:
    "Fit a fresh shard Learner with `cb`; what it recorded, as plain values, and a weak reference to its DDP wrapper."
    set_seed(0)  # the same on every rank: the model starts alike, and an unseeded callback must still differ per rank
    learn, record = shard_learner(dist.get_rank(), dist.get_world_size()), RecordDraws(cb)
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-2, cbs=[cb, record])
    weights = torch.cat([p.detach().flatten() for p in learn.model.parameters()])
    result = dict(draws=record.draws, losses=record.losses, recorded=[loss.item() for loss in learn.recorder.losses], weights=weights.tolist())
    return result, weakref.ref(learn.model)

def fit_with(cb) -> dict:
    "`train`, then free its Learner: only the plain values outlive the fit, nothing that holds the process group."
    result, ddp = train(cb)
    gc.collect()  # the Learner is unreachable once `train` returns, but only a collection frees its cycles
    if ddp() is not None: raise RuntimeError(f"a DistributedDataParallel outlived its fit with {type(cb).__name__}: something still refers to the Learner")
    return result

PF_EXITING = 0x4  # linux/sched.h: the task has entered do_exit and will never run user code again

def running_thread_name(task:Path) -> str|None:
    """The name of this /proc task if it is a thread that has not begun to exit, else None. pthread_join returns at the
    kernel's clear-tid wake-up, which comes before the kernel unlists the thread, so a thread joined a moment ago can still be
    listed, in its last steps of do_exit (PF_EXITING set); a C loop of 20,000 create/join pairs saw 10 such on a quiet 2-core
    machine. It has ended for every purpose that matters here, and its /proc entry may vanish while being read."""
    try: stat = (task / 'stat').read_text()
    except (FileNotFoundError, ProcessLookupError): return None
    name, fields = stat[stat.index('(') + 1:stat.rindex(')')], stat[stat.rindex(')') + 2:].split()
    return None if int(fields[6]) & PF_EXITING else name  # flags: field 9 of stat, after the state and five ids

def other_threads() -> list:
    "Names of this process's threads besides the main one that are still running (Linux /proc); None where /proc cannot tell."
    tasks = Path('/proc/self/task')
    if not tasks.is_dir(): return None
    names = (running_thread_name(task) for task in tasks.iterdir() if int(task.name) != os.getpid())
    return sorted(name for name in names if name is not None)

def main(out_dir:Path):
    dist.init_process_group('gloo')
    try:
        results = {name: dict(unseeded=fit_with(make()), seeded=fit_with(make(seed=7))) for name, make in CALLBACKS.items()}
        dist.barrier()  # both ranks are past their last collective before either closes its connections
    finally: dist.destroy_process_group()  # the last reference to the group: gloo's threads are joined here
    results['threads_after_teardown'] = other_threads()
    (out_dir / f'rank{rank_distrib()}.json').write_text(json.dumps(results))

if __name__ == '__main__': main(Path(sys.argv[1]))
