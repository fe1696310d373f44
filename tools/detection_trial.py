"""One detection training run (the course's `train_once`, seed and method as given) with settings the command line of
`python -m mixaug_fastai.course.detection` does not offer yet, for tuning the CPU setting toward the floor of issue 19:
`--freeze-bn` freezes the encoder's batch norms (statistics and affine, timm's `freeze_batch_norm_2d`). Prints each epoch's
metrics and the final AP@0.5. Needs the shared coco128 (../shared/data/coco128) or a folder in its layout.

    python tools/detection_trial.py --threads 1 --epochs 24 --lr 4e-3 --lr-mult 10 --freeze-bn
"""
import argparse, time
from dataclasses import replace
import torch, timm
from mixaug_fastai.course import detection, detector
from mixaug_fastai.course.coco import find_boxes

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--freeze-bn', action='store_true', help="freeze the encoder's batch norms")
    for name, kind, default in (('lr', float, 2e-3), ('lr-mult', float, 100), ('epochs', int, 8), ('freeze-epochs', int, 1), ('size', int, 224),
                                ('bs', int, 4), ('threads', int, 1), ('head-convs', int, 2), ('channels', int, 64), ('seed', int, 0)):
        parser.add_argument(f'--{name}', type=kind, default=default, help='default: %(default)s')
    parser.add_argument('--method', default='none', choices=detection.METHODS)
    return parser.parse_args(argv)

def with_frozen_batch_norms():
    "Make `Lite0FPN` freeze its encoder's batch norms when it is built."
    build = detector.Lite0FPN.__init__
    def build_frozen(self, *args, **kwargs):
        build(self, *args, **kwargs)
        self.body = timm.layers.freeze_batch_norm_2d(self.body)
    detector.Lite0FPN.__init__ = build_frozen

def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.freeze_bn: with_frozen_batch_norms()
    settings = replace(detection.default_settings('cpu'), lr=args.lr, lr_mult=args.lr_mult, epochs=args.epochs, freeze_epochs=args.freeze_epochs,
                       size=args.size, bs=args.bs, head_convs=args.head_convs, channels=args.channels, threads=args.threads)
    started = time.perf_counter()
    rows, _ = detection.train_once(find_boxes(None, download=False), args.method, args.seed, settings)
    for row in rows: print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()})
    print(vars(args), f'total {time.perf_counter() - started:.0f} s, final ap50 {rows[-1]["ap50"]:.3f}', flush=True)

if __name__ == '__main__': main()
