"""One process of the two-process data-parallel test (tests/test_distributed.py launches it):

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_worker.py OUT_DIR

Every rank seeds alike with `set_seed(0)`, as a launched training script does, wraps a tiny model in `DistributedDataParallel`
(gloo backend, CPU) and trains on its own shard of the training set, with each callback unseeded and then seeded. It writes what
each callback drew, the losses and the final weights to OUT_DIR/rank{RANK}.json.

fastai's own route, `learn.distrib_ctx()`, assumes CUDA (see the Guarantees page), hence this hand-made one on the CPU."""
import json, os, sys
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

def fit_with(cb) -> dict:
    set_seed(0)  # the same on every rank: the model starts alike, and an unseeded callback must still differ per rank
    learn, record = shard_learner(dist.get_rank(), dist.get_world_size()), RecordDraws(cb)
    with learn.no_bar(), learn.no_logging(): learn.fit(2, 1e-2, cbs=[cb, record])
    weights = torch.cat([p.detach().flatten() for p in learn.model.parameters()])
    return dict(draws=record.draws, losses=record.losses, recorded=[loss.item() for loss in learn.recorder.losses], weights=weights.tolist())

def main(out_dir:Path):
    (out_dir / f'pid{rank_distrib()}').write_text(str(os.getpid()))  # torchrun puts each worker in its own session: the test kills it by this
    dist.init_process_group('gloo')
    try:
        results = {name: dict(unseeded=fit_with(make()), seeded=fit_with(make(seed=7))) for name, make in CALLBACKS.items()}
        (out_dir / f'rank{rank_distrib()}.json').write_text(json.dumps(results))
    finally: dist.destroy_process_group()

if __name__ == '__main__': main(Path(sys.argv[1]))
