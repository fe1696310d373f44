"The detection course: the weighted FCOS loss against torchvision's and against its definitions, AP against hand counts, the data readers, the results folder, and the command line in quick mode."
import json, math, os, subprocess, sys
from dataclasses import asdict, replace
from pathlib import Path
import pandas as pd
import pytest, torch
from PIL import Image
from torchvision.models.detection.fcos import FCOSHead
from mixaug_fastai.course import coco
from mixaug_fastai.course.coco import (PERSON, SYNTHETIC_BOXES_NOTE, BoxPhotos, box_dls, find_boxes, make_synthetic_boxes, open_coco_json,
                                       open_yolo_folder, read_yolo_boxes, shared_coco128_path)
from mixaug_fastai.course.detector import (ConstantWeightLoss, DetectionLoss, WeightedFCOSHead, box_ap, lite0_fcos, torchvision_targets)
from mixaug_fastai.course.detection import (METHODS, DetectionSettings, Examples, default_settings, method_setup, parse_args, settings_from_args, final_epochs,
                                            run_comparison, summarise, write_results, main)

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='module')
def model():
    torch.manual_seed(1)
    return lite0_fcos(pretrained=False).eval()

def random_batch(seed:int, bs:int=3, n:int=4, size:int=64) -> tuple:
    "Head outputs of an untrained model on random images, and fastai box targets: 0 to n boxes an image, padding (label 0) anywhere, random weights."
    generator = torch.Generator().manual_seed(seed)
    corners = torch.rand(bs, n, 2, 2, generator=generator) * 2 - 1
    boxes = torch.cat([corners.min(dim=2).values, corners.max(dim=2).values], dim=-1)
    labels = (torch.rand(bs, n, generator=generator) < .6).long()
    labels[0] = 0  # an image without boxes
    return torch.randn(bs, 3, size, size, generator=generator), boxes, labels, torch.rand(bs, n, generator=generator)

def stock_terms(loss:DetectionLoss, pred, boxes, labels) -> dict:
    "torchvision's own FCOSHead.compute_loss on the same points and targets."
    head = loss.model.fcos.head
    head.__class__ = FCOSHead
    try: return loss.terms(pred, boxes, labels)
    finally: head.__class__ = WeightedFCOSHead

@pytest.mark.parametrize('seed', [0, 1, 2])
def test_weights_of_one_give_torchvisions_loss_bit_for_bit(model, seed):
    images, boxes, labels, _ = random_batch(seed)
    loss, pred = DetectionLoss(model), model(images)
    stock = stock_terms(loss, pred, boxes, labels)
    for normaliser in ('weight', 'count'):
        model.fcos.head.normaliser = normaliser
        for weighted in (loss.terms(pred, boxes, labels), loss.terms(pred, boxes, labels, torch.ones_like(labels, dtype=torch.float))):
            assert all(torch.equal(weighted[k], stock[k]) for k in stock), (normaliser, weighted, stock)
    model.fcos.head.normaliser = 'weight'

def matching(model, pred, targets) -> list:
    "torchvision's matching of points to boxes (the part of FCOS.compute_loss before the head's loss)."
    head = model.fcos.head
    head.compute_loss = lambda targets, head_outputs, anchors, matched_idxs: matched_idxs
    try: return model.fcos.compute_loss(targets, None, [pred[3]] * len(targets), pred[4].tolist())
    finally: del head.compute_loss

def loss_from_definitions(model, pred, boxes, labels, weights, normaliser:str) -> float:
    "The weighted FCOS loss from the formulas, in float64 tensors: focal loss (alpha 0.25, gamma 2), GIoU loss of the decoded box, centerness BCE; each matched point times its box's weight, background points times 1."
    logits, regression, ctrness, anchors = (p.double() for p in pred[:4])
    targets = torchvision_targets(boxes, labels, 64, 64, weights)
    centres, sizes = (anchors[:, :2] + anchors[:, 2:]) / 2, anchors[:, 2] - anchors[:, 0]
    total, weight_sum, count = 0., 0., 0
    for i, matched in enumerate(matching(model, pred, targets)):
        fg = matched >= 0
        w = torch.ones(len(matched), dtype=torch.float64)
        w[fg] = targets[i]['weights'][matched[fg]].double()
        p = torch.sigmoid(logits[i, :, 0])
        focal = torch.where(fg, -.25 * (1 - p) ** 2 * torch.log(p), -.75 * p ** 2 * torch.log(1 - p))
        total += (w * focal).sum().item()
        if not fg.any(): continue
        g, c, s, d = targets[i]['boxes'][matched[fg]].double(), centres[fg], sizes[fg, None], regression[i, fg]
        predicted = torch.cat([c - d[:, :2] * s, c + d[:, 2:] * s], dim=1)
        low, high = torch.maximum(predicted[:, :2], g[:, :2]), torch.minimum(predicted[:, 2:], g[:, 2:])
        inter = (high - low).clamp(min=0).prod(dim=1)
        area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        union = area(predicted) + area(g) - inter
        hull = (torch.maximum(predicted[:, 2:], g[:, 2:]) - torch.minimum(predicted[:, :2], g[:, :2])).prod(dim=1)
        giou = 1 - inter / union + (hull - union) / hull
        left, top, right, bottom = c[:, 0] - g[:, 0], c[:, 1] - g[:, 1], g[:, 2] - c[:, 0], g[:, 3] - c[:, 1]
        truth = torch.sqrt(torch.minimum(left, right) / torch.maximum(left, right) * torch.minimum(top, bottom) / torch.maximum(top, bottom))
        q = torch.sigmoid(ctrness[i, fg, 0])
        bce = -(truth * torch.log(q) + (1 - truth) * torch.log(1 - q))
        total += (w[fg] * (giou + bce)).sum().item()
        weight_sum += w[fg].sum().item(); count += int(fg.sum())
    return total / max(1., weight_sum if normaliser == 'weight' else count)

@pytest.mark.parametrize('seed', [3, 4])
@pytest.mark.parametrize('normaliser', ['weight', 'count'])
def test_weighted_loss_equals_its_definition(model, seed, normaliser):
    images, boxes, labels, weights = random_batch(seed)
    pred = model(images)
    assert (labels[1:] != 0).any()  # some boxes to weigh
    model.fcos.head.normaliser = normaliser
    try: found = DetectionLoss(model)(pred, boxes, labels, weights).item()
    finally: model.fcos.head.normaliser = 'weight'
    assert found == pytest.approx(loss_from_definitions(model, pred, boxes, labels, weights, normaliser), rel=1e-5)

def test_uniform_weights_keep_the_foreground_terms_with_the_summed_weight(model):
    images, boxes, labels, _ = random_batch(5)
    loss, pred = DetectionLoss(model), model(images)
    half, full = loss.terms(pred, boxes, labels, torch.full(labels.shape, .5)), loss.terms(pred, boxes, labels, torch.ones(labels.shape))
    assert torch.allclose(half['bbox_regression'], full['bbox_regression']) and torch.allclose(half['bbox_ctrness'], full['bbox_ctrness'])
    model.fcos.head.normaliser = 'count'
    try: counted = loss.terms(pred, boxes, labels, torch.full(labels.shape, .5))
    finally: model.fcos.head.normaliser = 'weight'
    assert torch.allclose(counted['bbox_regression'], full['bbox_regression'] / 2)

def test_constant_weight_rule_halves_mixed_batches_only(model):
    images, boxes, labels, weights = random_batch(6)
    loss, pred = DetectionLoss(model), model(images)
    rule = ConstantWeightLoss(loss)
    assert torch.equal(rule(pred, boxes, labels), loss(pred, boxes, labels)) and torch.equal(rule(pred, boxes, labels, weights), .5 * loss(pred, boxes, labels))
    with pytest.raises(ValueError, match=r"factor must be a number in \(0, 1\]; got factor=0"): ConstantWeightLoss(loss, 0)
    with pytest.raises(ValueError, match=r"normaliser must be one of \['weight', 'count'\]; got normaliser='mean'"): lite0_fcos(normaliser='mean', pretrained=False)

def detection(boxes, scores): return dict(boxes=torch.tensor(boxes, dtype=torch.float), scores=torch.tensor(scores), labels=torch.ones(len(scores), dtype=torch.long))
def truth(boxes): return dict(boxes=torch.tensor(boxes, dtype=torch.float).reshape(-1, 4), labels=torch.ones(len(boxes), dtype=torch.long))

def test_ap_against_hand_counts():
    # a confident detection on a photo without the class ranks first: precision 0 then 1/2 at recall 1, so 1/2 at every recall point
    found = box_ap([detection([[50, 50, 60, 60]], [.9]), detection([[0, 0, 10, 10]], [.6])], [truth([]), truth([[0, 0, 10, 10]])])
    assert found == pytest.approx(dict(ap50=.5, ap=.5), abs=1e-6)
    # one of two true boxes found: precision 1 up to recall 0.5, nothing beyond: 51 of the 101 recall points
    found = box_ap([detection([[0, 0, 10, 10]], [.8])], [truth([[0, 0, 10, 10], [20, 20, 40, 40]])])
    assert found == pytest.approx(dict(ap50=51 / 101, ap=51 / 101), abs=1e-6)
    # the only detection, 8x8 inside the true 10x10, has IoU 64 / 100: correct at thresholds 0.5, 0.55 and 0.6, wrong at the seven above
    found = box_ap([detection([[0, 0, 8, 8]], [.7])], [truth([[0, 0, 10, 10]])])
    assert found == pytest.approx(dict(ap50=1., ap=3 / 10), abs=1e-6)

def test_yolo_lines_are_read_into_pixel_corners(tmp_path):
    (tmp_path / 'a.txt').write_text('0 0.5 0.5 1.0 1.0\n3 0.25 0.75 0.5 0.5\n')
    assert read_yolo_boxes(tmp_path / 'a.txt', 40, 20, 0) == ((0., 0., 40., 20.),) and read_yolo_boxes(tmp_path / 'a.txt', 40, 20, 3) == ((0., 10., 20., 20.),)
    (tmp_path / 'a.txt').write_text('person 0.5 0.5 1 1 extra\n')
    with pytest.raises(ValueError, match=r"line 1: .* has 6 fields; a YOLO label line has 5"): read_yolo_boxes(tmp_path / 'a.txt', 40, 20, 0)

def test_synthetic_scenes_and_their_dataloaders(tmp_path):
    photos = open_yolo_folder(make_synthetic_boxes(tmp_path / 'scenes', 6, 3, size=64), 'generated')
    assert photos.synthetic and photos.target == PERSON and photos.description.startswith('SYNTHETIC scenes with boxes, NOT photos: ')
    assert photos.subset(2, 1).train == photos.train[:2] and photos.subset(2, 1).valid == photos.valid[:1]
    images, boxes, labels = box_dls(photos, size=64, bs=3, device='cpu').one_batch()
    assert images.shape == (3, 3, 64, 64) and boxes.shape[:2] == labels.shape and boxes.shape[-1] == 4 and labels.dtype == torch.int64
    with pytest.raises(ValueError, match=r"n_train must be None or an int >= 1; got n_train=0"): photos.subset(0)
    with pytest.raises(ValueError, match=r"target must be one of the classes of the data: \['person', 'box'\]; got target='cat'"):
        open_yolo_folder(tmp_path / 'scenes', target='cat')
    (tmp_path / 'scenes' / 'names.txt').unlink()
    with pytest.raises(FileNotFoundError, match=r"has no names.txt"): open_yolo_folder(tmp_path / 'scenes')
    with pytest.raises(FileNotFoundError, match=r"does not exist or is not a folder"): open_yolo_folder(tmp_path / 'nothing')

needs_coco128 = pytest.mark.skipif(not shared_coco128_path().is_dir(), reason=f"../shared/data/coco128 absent ({shared_coco128_path()}): the shared COCO photos are on development and CI machines only")

@needs_coco128
def test_shared_coco128_has_the_person_counts_of_its_source_notes():
    photos = find_boxes()
    assert photos.origin == 'shared coco128' and photos.target == PERSON and (len(photos.train), len(photos.valid)) == (128, 128)
    assert photos.count(photos.train) == (254, 61) and photos.count(photos.valid) == (350, 73)
    trained_on = photos.with_boxes()  # the course trains on the photos with a person, and evaluates on every validation photo
    assert len(trained_on.train) == 61 and trained_on.count(trained_on.train) == (254, 61) and trained_on.valid == photos.valid

@needs_coco128
def test_coco_json_without_crowds_gives_the_yolo_person_boxes():
    path = shared_coco128_path()
    from_json = open_coco_json(path / 'instances_train2017.json', path / 'images' / 'train2017', 'test', valid_pct=.5)
    assert sum(len(b) for b in from_json.boxes.values()) == 254 and from_json.count(from_json.train)[0] + from_json.count(from_json.valid)[0] == 254

def test_without_any_data_the_command_line_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(coco, 'shared_coco128_path', lambda: tmp_path / 'absent')
    monkeypatch.delenv(coco.COCO_ENV_VAR, raising=False)
    with pytest.raises(SystemExit) as exited: main(['--out', str(tmp_path / 'out'), '--no-download'])
    message = capsys.readouterr().err
    assert exited.value.code == 2 and not (tmp_path / 'out').exists()
    for advice in ('No photos with boxes', '--data FOLDER', '$MIXAUG_COCO', 'leave out --no-download'): assert advice in message, message

def test_methods_and_settings():
    kinds = {m: [type(cb).__name__ for cb in method_setup(m, 3).callbacks] for m in METHODS}
    assert kinds == {'none': [], 'MixUp': ['MixUp'], 'MixUp normaliser=count': ['MixUp'], 'MixUp 0.5 constant': ['MixUp'], 'CutMix': ['CutMix'], 'Cutout': ['Cutout']}
    fixed = method_setup('MixUp 0.5 constant', 0).callbacks[0]
    assert fixed.alpha == 1e12 and not fixed.per_sample
    with pytest.raises(ValueError, match=r"method must be one of .*; got method='mixup'"): method_setup('mixup', 0)
    settings = settings_from_args(parse_args(['--device', 'cpu', '--size', '96', '--epochs', '2', '--seeds', '7', '8', '--threads', '1', '--lr-mult', '10']))  # 30 by default
    assert settings == DetectionSettings(size=96, epochs=2, seeds=(7, 8), threads=1, jobs=2, valid_every=4, lr_mult=10., device='cpu') and settings.bs == 4
    for bad in (['--bs', '1'], ['--lr-mult', '0.5'], ['--methods', 'AugMix']):
        with pytest.raises(SystemExit): parse_args(bad)

def test_results_folder_from_made_up_runs(tmp_path):
    photos = open_yolo_folder(make_synthetic_boxes(tmp_path / 'scenes', 2, 2, size=32), 'generated')
    epochs = pd.DataFrame([dict(method=m, seed=s, epoch=e, fit=e + 1, train_loss=1., valid_loss=.9, ap50=a, ap=a / 2, seconds=3.)
                           for m, values in (('none', (.2, .4)), ('CutMix', (.3, .3))) for s, a in enumerate(values) for e in (0, 1)])
    runs = final_epochs(epochs)
    assert summarise(runs).ap50.round(6).to_dict() == {'none': .3, 'CutMix': .3}
    found = [dict(boxes=torch.tensor([[1., 1., 20., 20.]]), scores=torch.tensor([.9]), labels=torch.tensor([1]))] * 2
    examples = Examples(torch.rand(2, 32, 32, 3), [torch.tensor([[2., 2., 18., 18.]])] * 2, {'none': found, 'CutMix': found})
    write_results(tmp_path / 'out', DetectionSettings(seeds=(0, 1), methods=('none', 'CutMix')), photos, epochs, runs, examples, 12.3,
                  'python -m mixaug_fastai.course.detection --out x')
    report = (tmp_path / 'out' / 'results.md').read_text()
    assert SYNTHETIC_BOXES_NOTE in report and '- Command: `python -m mixaug_fastai.course.detection --out x`' in report and 'COCO' not in report.split('- Command')[0]
    assert '| none | 0.300 ± 0.141 | 0.150 ± 0.071 | 2 | 3.0 |' in report and '| CutMix | 0.300 ± 0.000 | 0.150 ± 0.000 | 2 | 3.0 |' in report
    assert {p.name for p in (tmp_path / 'out').iterdir()} == {'results.md', 'metrics.png', 'predictions.png', 'loss_curves.png', 'runs.csv', 'epochs.csv', 'settings.json'}
    recorded = json.loads((tmp_path / 'out' / 'settings.json').read_text())
    assert recorded['synthetic'] is True and recorded['size'] == 224 and recorded['total_seconds'] == 12.3 and recorded['credit'] is None
    assert str(tmp_path) not in (tmp_path / 'out' / 'settings.json').read_text() + report

def test_runs_in_worker_processes_give_what_runs_here_give(tmp_path, monkeypatch):
    "`jobs=2` trains the same runs in two spawned processes: the same metrics and example detections as `jobs=1`, in the same order."
    monkeypatch.setenv('MIXAUG_WEIGHTS_DIR', str(tmp_path / 'weights'))
    photos = open_yolo_folder(make_synthetic_boxes(tmp_path / 'scenes', 8, 4, size=64), 'generated')
    settings = replace(default_settings('cpu', quick=True), methods=('none', 'MixUp'), seeds=(0, 1))
    (_, here, examples_here), (_, workers, examples_workers) = (run_comparison(replace(settings, jobs=jobs), photos, n_examples=2) for jobs in (1, 2))
    assert workers.method.tolist() == here.method.tolist() == ['none', 'MixUp', 'none', 'MixUp'] and workers.seed.tolist() == [0, 0, 1, 1]
    columns = [c for c in here.columns if c not in ('seconds', 'seconds_per_epoch')]
    pd.testing.assert_frame_equal(workers[columns], here[columns])
    assert examples_workers.predictions.keys() == examples_here.predictions.keys() == {'none', 'MixUp'}
    for method, found in examples_here.predictions.items():
        for mine, theirs in zip(found, examples_workers.predictions[method]): assert all(torch.equal(mine[k], theirs[k]) for k in mine), method
    assert all(torch.equal(a, b) for a, b in zip(examples_workers.truth, examples_here.truth)) and torch.equal(examples_workers.photos, examples_here.photos)

QUICK_METHODS = list(METHODS)

def test_quick_command_line_run(tmp_path):
    "The CI quick mode end to end on generated scenes: 8 + 4 scenes at 64 px, 1 + 1 epochs, one seed."
    scenes = make_synthetic_boxes(tmp_path / 'scenes', 8, 4, size=64)
    env = dict(os.environ, MIXAUG_WEIGHTS_DIR=str(tmp_path / 'weights'), HF_HUB_OFFLINE='1')
    command = [sys.executable, '-m', 'mixaug_fastai.course.detection', '--quick', '--out', str(tmp_path / 'out'), '--data', str(scenes),
               '--no-download', '--device', 'cpu', '--threads', '1', '--methods', *QUICK_METHODS]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f'Total: {len(QUICK_METHODS)} runs' in done.stdout and SYNTHETIC_BOXES_NOTE in done.stdout
    runs = pd.read_csv(tmp_path / 'out' / 'runs.csv')
    assert runs.method.tolist() == QUICK_METHODS and runs.ap50.between(0, 1).all() and runs.ap.between(0, 1).all()
    epochs = pd.read_csv(tmp_path / 'out' / 'epochs.csv')
    assert epochs.groupby('method').size().to_dict() == {m: 2 for m in QUICK_METHODS} and set(epochs.fit) == {1, 2}
    recorded = json.loads((tmp_path / 'out' / 'settings.json').read_text())
    assert recorded['size'] == 64 and recorded['train_images'] == 8 and recorded['synthetic']
    assert recorded['command'].startswith('python -m mixaug_fastai.course.detection --quick') and str(tmp_path) not in json.dumps(recorded)
    for name in ('metrics.png', 'predictions.png', 'loss_curves.png'):
        with Image.open(tmp_path / 'out' / name) as picture: assert picture.width > 200 and picture.height > 150  # one method: a narrow loss figure

LONG = {'epochs': 48, 'all_train_photos': True, 'valid_every': 8}  # the tuning table's schedule that reached the floor

@pytest.mark.parametrize('folder, schedule', [('detection', {}), ('detection_long', LONG)])
def test_the_published_cpu_runs_are_whole_default_comparisons(folder, schedule):
    """results/detection/ is one whole run of the CPU default on the shared coco128: the settings default_settings('cpu') gives, every default method with every seed;
    results/detection_long/ the same but for the schedule that reached the floor (1 + 48 epochs, all 128 training photos)."""
    published = ROOT / 'results' / folder
    recorded = json.loads((published / 'settings.json').read_text())
    cpu = {**json.loads(json.dumps(asdict(default_settings('cpu')))), **schedule}  # tuples as JSON lists, as settings.json has them
    assert {name: recorded[name] for name in cpu} == cpu
    assert not recorded['synthetic'] and 'coco128' in recorded['data']
    runs = pd.read_csv(published / 'runs.csv')
    assert list(zip(runs.method, runs.seed)) == [(m, s) for s in cpu['seeds'] for m in cpu['methods']]
    assert runs.ap50.between(0, 1).all() and (runs.ap <= runs.ap50).all()

UNDER_THE_FLOOR = pytest.mark.xfail(strict=True, reason="issue 19: the published CPU default is under the floor (no mixing: AP@0.5 0.203, 0.189, 0.172 over 3 seeds, "
                                     "mean 0.188 < 0.20); strict, so that this test fails loudly, and its mark goes, once a run reaches it")

@pytest.mark.parametrize('folder', [pytest.param('detection', marks=UNDER_THE_FLOOR), 'detection_long'])
def test_the_published_cpu_runs_reach_the_floor(folder):
    "Issue 19's floor for the CPU setting: without mixing, AP@0.5 for person >= 0.20 on the 128 validation photos (mean of the published seeds), on the default schedule and on the long one."
    runs = pd.read_csv(ROOT / 'results' / folder / 'runs.csv')
    plain = runs[runs.method == 'none']
    assert len(plain) == 3 and plain.ap50.mean() >= .20, plain

VARY = {'methods', 'command', 'device_description', 'total_seconds'}  # what two runs of the same settings may record differently

def test_the_published_normaliser_runs_differ_from_the_comparison_in_the_normaliser_alone():
    "results/detection_normaliser/ holds MixUp with the stock normaliser, trained as the published comparison's MixUp runs (same settings, same seeds), so the two read side by side."
    published, alone = (json.loads((ROOT / 'results' / name / 'settings.json').read_text()) for name in ('detection', 'detection_normaliser'))
    assert alone['methods'] == ['MixUp normaliser=count'] and not alone['synthetic']
    assert {k: v for k, v in alone.items() if k not in VARY} == {k: v for k, v in published.items() if k not in VARY}
    runs = pd.read_csv(ROOT / 'results' / 'detection_normaliser' / 'runs.csv')
    assert list(zip(runs.method, runs.seed)) == [('MixUp normaliser=count', s) for s in published['seeds']] and runs.ap50.between(0, 1).all()

COCO_PAGES = ('09_coco.ipynb', '11_detector.ipynb', '12_detection_tutorial.ipynb')

@pytest.mark.parametrize('page', COCO_PAGES)
def test_committed_coco_pages_hold_no_photo(page):
    "The COCO pages run on the shared photos (Flickr licences, some NonCommercial or NoDerivatives: never in the repository), so a picture in their committed outputs may only be a results figure without photos."
    import base64
    allowed = {base64.b64encode((ROOT / 'results' / folder / name).read_bytes()).decode() for folder in ('detection', 'detection_long') for name in ('metrics.png', 'loss_curves.png')}
    notebook = json.loads((ROOT / 'nbs' / 'course' / page).read_text())
    pictures = [(cell.get('id'), ''.join(output['data'][kind]).replace('\n', '')) for cell in notebook['cells'] for output in cell.get('outputs', [])
                for kind in ('image/png', 'image/jpeg') if kind in output.get('data', {})]
    assert [cell for cell, picture in pictures if picture not in allowed] == []
