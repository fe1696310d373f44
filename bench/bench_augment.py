"""Per-batch cost of MixUp, CutMix and Cutout: ours against fastai's, timm's, torchvision's and kornia's, as ratios to a batch copy,
plus the end-to-end overhead of our callbacks in a fastai training epoch. Writes a Markdown report.

    python bench/bench_augment.py --out bench/results/cpu.md        # what `make bench` runs
"""
import argparse, datetime, gc, os, platform, resource, statistics, time, warnings
from types import SimpleNamespace
import torch
from torch import nn
import fastai, timm, torchvision
from fastai.vision.all import Callback, Learner, DataLoaders, TensorImage, TensorCategory, CrossEntropyLossFlat
from fastai.callback.mixup import MixUp as FastaiMixUp, CutMix as FastaiCutMix
from mixaug_fastai.all import MixUp, CutMix, Cutout, make_generator

SHAPES = [(64, 3, 224, 224), (256, 3, 32, 32)]
NUM_CLASSES = 10
COPY_FLOOR = 'copy: copy_() into a preallocated batch'
PER_BATCH_ROUNDS = (1, 6) # back to back, then interleaved in 6 rounds
PER_SHAPE_COLUMNS = 4 # ms, ÷ clone, ÷ copy_, page faults

def copy_into_buffer():
    "A batch copy without allocation: the memory-traffic floor of rewriting every pixel (clone also pays for fresh pages)."
    buffers = {}
    def run(images, targets):
        buffer = buffers.setdefault(images.shape, torch.empty_like(images))
        buffer.copy_(images)
    return run

def ours(cb):
    "The callback's before_batch work: draw on the host, apply in place."
    generator = make_generator(0)
    def run(images, targets): cb.apply_(images, cb.draw_batch(images.shape, generator))
    return run

def ours_with_masks(cb):
    "The same on a segmentation batch: the images and a (bs, h, w) mask of class codes (no peer handles masks)."
    generator, masks = make_generator(0), {}
    def run(images, targets):
        mask = masks.setdefault(images.shape, torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.long, device=images.device))
        cb.apply_(images, cb.draw_batch(images.shape, generator), [('mask', (mask,))])
    return run

def ours_draw_only(cb):
    "The host-side half of the callback's work: drawing lam, partners and boxes, without touching the images."
    generator = make_generator(0)
    return lambda images, targets: cb.draw_for(images.shape, generator)

def one_tiny_op():
    "The fixed cost of one PyTorch call from Python (dispatch, no memory traffic): the unit of a per-batch overhead."
    scalar = torch.zeros(1)
    return lambda images, targets: scalar.add_(1)

def fastai_builtin(cb):
    "fastai's own callback's before_batch, on a stand-in learner holding the batch."
    cb.learn, cb.stack_y = SimpleNamespace(), True
    def run(images, targets):
        cb.learn.xb, cb.learn.yb, cb.learn.x, cb.learn.y = (images,), (targets,), images, targets
        cb.before_batch()
    return run

def timm_mixup(**kwargs):
    from timm.data import Mixup
    mixer = Mixup(num_classes=NUM_CLASSES, **kwargs)
    return lambda images, targets: mixer(images, targets)

def torchvision_v2(transform):
    return lambda images, targets: transform(images, targets)

def torchvision_v2_per_image(transform):
    "A v2 transform applied to each image of the batch in turn, as a Dataset transform applies it: a draw per image."
    def run(images, targets):
        for image in images: transform(image)
    return run

def kornia_aug(name, **kwargs):
    import kornia.augmentation as K
    aug = getattr(K, name)(data_keys=['input', 'class'], **kwargs)
    return lambda images, targets: aug(images, targets)

def methods():
    "(name, make) pairs; make() builds the callable lazily so a missing peer only loses its rows."
    from torchvision.transforms import v2
    yield 'copy: clone()', lambda: (lambda images, targets: images.clone())
    yield COPY_FLOOR, copy_into_buffer
    yield 'copy: copy_() again (noise floor: the row above, timed again)', copy_into_buffer
    yield 'ours MixUp (per-sample lam)', lambda: ours(MixUp(.4))
    yield 'ours MixUp (one lam per batch)', lambda: ours(MixUp(.4, per_sample=False))
    yield 'ours CutMix (one box per batch)', lambda: ours(CutMix(1.))
    yield 'ours CutMix (a box per sample)', lambda: ours(CutMix(1., per_sample=True))
    yield 'ours CutMix (a box for half the samples, p_sample=.5)', lambda: ours(CutMix(1., p_sample=.5))
    yield 'ours Cutout (1 hole, half the side)', lambda: ours(Cutout(1, .5))
    yield 'ours CutMix + mask (one box per batch)', lambda: ours_with_masks(CutMix(1.))
    yield 'ours CutMix + mask (a box per sample)', lambda: ours_with_masks(CutMix(1., per_sample=True))
    yield 'ours Cutout + mask_fill', lambda: ours_with_masks(Cutout(1, .5, mask_fill=0))
    yield 'ours MixUp: host draw only', lambda: ours_draw_only(MixUp(.4))
    yield 'ours CutMix: host draw only', lambda: ours_draw_only(CutMix(1.))
    yield 'one tiny torch op (add_ on 1 element)', one_tiny_op
    yield 'fastai MixUp', lambda: fastai_builtin(FastaiMixUp(.4))
    yield 'fastai CutMix', lambda: fastai_builtin(FastaiCutMix(1.))
    yield 'timm Mixup, MixUp batch mode', lambda: timm_mixup(mixup_alpha=.4, cutmix_alpha=0., mode='batch')
    yield 'timm Mixup, MixUp elem mode', lambda: timm_mixup(mixup_alpha=.4, cutmix_alpha=0., mode='elem')
    yield 'timm Mixup, CutMix batch mode', lambda: timm_mixup(mixup_alpha=0., cutmix_alpha=1., mode='batch')
    yield 'timm Mixup, CutMix elem mode', lambda: timm_mixup(mixup_alpha=0., cutmix_alpha=1., mode='elem')
    yield 'torchvision v2 MixUp', lambda: torchvision_v2(v2.MixUp(alpha=.4, num_classes=NUM_CLASSES))
    yield 'torchvision v2 CutMix', lambda: torchvision_v2(v2.CutMix(alpha=1., num_classes=NUM_CLASSES))
    yield 'torchvision v2 RandomErasing (one rectangle for the batch)', lambda: torchvision_v2(v2.RandomErasing(p=1.))
    yield 'torchvision v2 RandomErasing, per image (a rectangle per sample)', lambda: torchvision_v2_per_image(v2.RandomErasing(p=1., inplace=True))
    yield 'kornia RandomMixUpV2', lambda: kornia_aug('RandomMixUpV2')
    yield 'kornia RandomCutMixV2', lambda: kornia_aug('RandomCutMixV2')

def paired_timer(source, targets, device):
    """A function timing `run` on a fresh copy of `source` (refilled outside the timer, since most methods work in place)
    and then a plain clone of the batch, so that drifts in machine load hit both alike: (ms of `run`, ms of clone,
    page faults during `run`, each one the kernel handing the process a fresh page of memory)."""
    work = source.clone()
    synchronize = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    def timed(f):
        work.copy_(source); synchronize()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter(); f(); synchronize()
        return (time.perf_counter() - start) * 1e3, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    def pair(run):
        (ms, faults), (clone_ms, _) = timed(lambda: run(work, targets)), timed(work.clone)
        return ms, clone_ms, faults
    return pair

def paired_medians_ms(runs, timers, repeats, rounds):
    """{(name, shape): (median ms, median ms of the clone timed with it, median page faults)}. The `repeats` runs of each method are spread over
    `rounds` interleaved rounds of all methods, so that a burst of load on the machine cannot fall on one method's runs alone."""
    pairs = {(name, shape): [] for name in runs for shape in timers}
    for name, run in runs.items():
        for timer in timers.values():
            for _ in range(5): timer(run)  # warm-up
    gc.collect(); gc.disable()  # as timeit does: a collection of the whole process's objects would land on whichever run triggers it
    try:
        for round in range(rounds):
            for shape, timer in timers.items():
                for name, run in runs.items():
                    pairs[name, shape] += [timer(run) for _ in range(repeats // rounds)]
    finally: gc.enable()
    return {key: tuple(statistics.median(column) for column in zip(*ps)) for key, ps in pairs.items()}

def host_device_syncs(run, source, targets):
    "Number of synchronising CUDA calls one run makes after a first one (lazy initialisation), counted by torch's sync debug mode."
    work = source.clone()
    run(work, targets)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try: run(work, targets)
        finally: torch.cuda.set_sync_debug_mode('default')
    return sum('synchroniz' in str(w.message) for w in caught)

def per_batch_table(device, repeats, rounds):
    """Each method's median ms per shape, its ratio to a clone timed alternately with it, its ratio to the copy_() floor
    (both copies read and write the whole batch once; clone also pays for fresh pages), and its median page faults."""
    sources = {shape: (torch.rand(shape, device=device), torch.randint(0, NUM_CLASSES, (shape[0],), device=device)) for shape in SHAPES}
    runs, missing, syncs = {}, {}, {}
    for name, make in methods():
        try: runs[name] = make()
        except ImportError as e: missing[name] = f"not installed: {e.name}"; continue
        if device == 'cuda': syncs[name] = host_device_syncs(runs[name], *sources[SHAPES[0]])
    medians = paired_medians_ms(runs, {shape: paired_timer(*sources[shape], device) for shape in SHAPES}, repeats, rounds)
    timings = {name: missing.get(name) or [medians[name, shape] for shape in SHAPES] for name in [*runs, *missing]}
    floor = [ms for ms, _, _ in timings[COPY_FLOOR]]
    columns = PER_SHAPE_COLUMNS * len(SHAPES) + (device == 'cuda')
    rows = []
    for name, timing in timings.items():
        if isinstance(timing, str): rows.append(f"| {name} | {timing} |" + " |" * (columns - 1)); continue
        cells = [f"{ms:.3f} | {ms / clone_ms:.2f}× | {ms / floor_ms:.2f}× | {faults:.0f}" for (ms, clone_ms, faults), floor_ms in zip(timing, floor)]
        rows.append(f"| {name} | {' | '.join(cells)}" + (f" | {syncs[name]}" if device == 'cuda' else '') + " |")
    head = "| method | " + " | ".join(f"{'×'.join(map(str, s))} ms | ÷ clone | ÷ copy_ | page faults" for s in SHAPES) + (" | syncs/batch |" if device == 'cuda' else " |")
    return "\n".join([head, "|" + "---|" * (1 + columns)] + rows)

def generated_dls(n=2048, size=64, bs=64, device='cpu'):
    "One set of DataLoaders over generated images, shared by every setup so that only the callback differs."
    g = torch.Generator().manual_seed(0)
    images, labels = torch.rand(n, 3, size, size, generator=g), torch.randint(0, NUM_CLASSES, (n,), generator=g)
    items = [(TensorImage(x), TensorCategory(y)) for x, y in zip(images, labels)]
    return DataLoaders.from_dsets(items, items[:bs], bs=bs, device=device, num_workers=0)

def stopwatch():
    """Two callbacks that bracket every other one, and the totals they keep: the seconds of all callbacks' `before_batch`
    (the augmentation), and of the learner's loss call with all callbacks' `after_loss` (the loss, and our loss rule; fastai's
    callbacks put theirs inside the loss call)."""
    totals = dict(before_batch=0., loss=0., start=0.)
    class First(Callback):
        order, run_valid = -1000, False
        def before_batch(self): totals['start'] = time.perf_counter()
    class Last(Callback):
        order, run_valid = 1000, False
        def before_batch(self): totals['before_batch'] += time.perf_counter() - totals['start']
        def after_pred(self): totals['start'] = time.perf_counter()
        def after_loss(self): totals['loss'] += time.perf_counter() - totals['start']
    return [First(), Last()], totals

class LeastMixer(Callback):
    """The least work any mixer with the papers' loss rule does per batch, as a floor for the end-to-end tables: it gathers each
    image's partner once (a batch-sized copy; an in-place blend or paste must read the partners before overwriting them) and
    evaluates the loss once more, on the partners' labels, with `F.cross_entropy` on plain tensors (no fastai dispatch)."""
    order, run_valid = 0, False
    def before_batch(self):
        images = self.learn.xb[0].as_subclass(torch.Tensor)
        self.perm = torch.roll(torch.arange(len(images), device=images.device), 1)
        images.index_select(0, self.perm)
    def after_loss(self):
        pred, labels = self.learn.pred.as_subclass(torch.Tensor), self.learn.yb[0].as_subclass(torch.Tensor)
        nn.functional.cross_entropy(pred, labels[self.perm])

def tiny_cnn():
    "Two convolutions: a step so cheap that any fixed per-batch cost shows."
    return nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, NUM_CLASSES))

def resnet18():
    "torchvision's ResNet-18, untrained: the size of model people fine-tune with these augmentations."
    return torchvision.models.resnet18(num_classes=NUM_CLASSES)

def timed_epoch(dls, cbs, make_model):
    """One training epoch (after a warm-up epoch) of `make_model()` with callbacks `cbs`: its seconds, and the seconds spent
    in the callbacks' before_batch and in the loss (the learner's loss call and the callbacks' after_loss)."""
    torch.manual_seed(0)
    clocks, totals = stopwatch()
    learn = Learner(dls, make_model(), loss_func=CrossEntropyLossFlat(), cbs=cbs + clocks)
    with learn.no_bar(), learn.no_logging():
        learn.fit(1, 1e-3)  # warm-up
        gc.collect(); totals.update(before_batch=0., loss=0.)
        start = time.perf_counter(); learn.fit(1, 1e-3); seconds = time.perf_counter() - start
    return dict(epoch=seconds, before_batch=totals['before_batch'], loss=totals['loss'])

def end_to_end_table(device, make_model, n_images, rounds):
    """Interleaved rounds, each in a rotated order, so that drifts in machine load and order effects hit every setup alike;
    the baseline runs twice per round, and its second copy shows the noise floor of the epoch timings. The last column is
    measured inside the epochs rather than from their lengths: the time in before_batch and in the loss beyond the
    baseline's (the brackets themselves, and the plain loss the learner computes anyway), as a share of the epoch."""
    setups = [('no augmentation', lambda: []), ('no augmentation, again (noise floor)', lambda: []),
              ('ours MixUp (per-sample lam)', lambda: [MixUp(.4)]), ('ours MixUp (one lam per batch)', lambda: [MixUp(.4, per_sample=False)]),
              ('ours CutMix', lambda: [CutMix(1.)]), ('ours Cutout', lambda: [Cutout(1, .5)]),
              ('fastai MixUp', lambda: [FastaiMixUp(.4)]), ('fastai CutMix', lambda: [FastaiCutMix(1.)]),
              ('floor: gather the partners (a batch copy) and one more loss evaluation', lambda: [LeastMixer()])]
    dls = generated_dls(n_images, device=device)
    runs = {name: [] for name, _ in setups}
    for round in range(rounds):
        for name, cbs in setups[round % len(setups):] + setups[:round % len(setups)]:
            runs[name].append(timed_epoch(dls, cbs(), make_model))
    median = lambda name, key: statistics.median(run[key] for run in runs[name])
    batches, base = len(dls.train), {key: median('no augmentation', key) for key in ('epoch', 'before_batch', 'loss')}
    rows = []
    for name in runs:
        epoch, before_batch, loss = (median(name, key) for key in ('epoch', 'before_batch', 'loss'))
        cost = before_batch - base['before_batch'] + loss - base['loss']
        rows.append(f"| {name} | {n_images / epoch:.0f} | {100 * (epoch / base['epoch'] - 1):+.1f}% | {1e3 * before_batch / batches:.3f} | "
                    f"{1e3 * loss / batches:.3f} | {100 * cost / epoch:.2f}% |")
    head = (f"| callback | images/s (median of {rounds}) | epoch time overhead | before_batch, ms per batch | loss and after_loss, ms per batch | "
            "augmentation cost: before_batch and loss beyond the baseline's, share of the epoch |")
    return "\n".join([head, "|---|---|---|---|---|---|"] + rows)

def machine(device):
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor()) if os.path.exists('/proc/cpuinfo') else platform.processor()
    gpu = f", GPU {torch.cuda.get_device_name()}" if device == 'cuda' else ''
    versions = f"torch {torch.__version__}, fastai {fastai.__version__}, timm {timm.__version__}, torchvision {torchvision.__version__}"
    try:
        import kornia; versions += f", kornia {kornia.__version__}"
    except ImportError: versions += ", kornia not installed"
    return f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}{gpu}; Python {platform.python_version()}; {versions}"

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeats', type=int, default=30, help='timed runs per method and shape (after 5 warm-up runs)')
    parser.add_argument('--rounds', type=int, default=7, help="interleaved rounds of the tiny CNN's end-to-end epochs")
    parser.add_argument('--resnet-rounds', type=int, default=3, help="the same for ResNet-18, which takes about 14 times as long per image")
    parser.add_argument('--out', default='bench/results/cpu.md')
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    load_before = os.getloadavg()[0]
    per_batch = {rounds: per_batch_table(args.device, args.repeats, rounds) for rounds in PER_BATCH_ROUNDS}
    models = {'a tiny CNN': (tiny_cnn, 2048, args.rounds), 'ResNet-18': (resnet18, 512, args.resnet_rounds)}  # name: (model, images per epoch, rounds)
    end_to_end = "\n\n".join(f"## End to end, {name} (a fastai epoch of {n_images} generated 64×64 images, batch 64)\n\n"
                               + end_to_end_table(args.device, make_model, n_images, rounds) for name, (make_model, n_images, rounds) in models.items())
    report = f"""# Augmentation cost on {args.device}

- command: `python bench/bench_augment.py --device {args.device} --repeats {args.repeats} --rounds {args.rounds} --resnet-rounds {args.resnet_rounds} --out {args.out}`
- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {machine(args.device)}
- 1-minute load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (this machine has {os.cpu_count()} cores)

Per batch: float32, median of {args.repeats} runs after 5 warm-up runs, each run paired with a clone of the same batch for the ÷ clone ratio; ÷ copy_ divides by the median of a copy into a preallocated batch; page faults: the median number of fresh memory pages the kernel handed the process during one run (a method allocating a temporary pays for them when the allocator returns memory to the system between runs, which depends on what ran before); the batch is refilled outside the timer; garbage collection paused while timing, as timeit does. Two orders of the same runs:

## Per batch, back to back (each method's {args.repeats} runs in a row: its code and data stay in the caches, the best case)

{per_batch[1]}

## Per batch, interleaved (the runs spread over {PER_BATCH_ROUNDS[1]} rounds of all methods, {args.repeats // PER_BATCH_ROUNDS[1]} in a row: each method's turn starts with the caches holding the previous method's code and data, as a training step leaves them)

{per_batch[PER_BATCH_ROUNDS[1]]}

{end_to_end}
"""
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    open(args.out, 'w').write(report)
    print(report)

if __name__ == '__main__': main()
