"The benchmark script runs and writes tables of the right shape (one timed run each: timings themselves are never asserted on)."
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / 'bench'))
import bench_augment as bench

def table(markdown):
    "The body rows of a Markdown table, as lists of stripped cells."
    lines = [l for l in markdown.splitlines() if l.startswith('|')]
    return [[c.strip() for c in l.strip('|').split('|')] for l in lines[2:]]

def test_per_batch_table_has_every_method_with_ratios_or_a_reason():
    rows = table(bench.per_batch_table('cpu', repeats=1, rounds=1))
    assert [row[0] for row in rows] == [name for name, _ in bench.methods()]
    for row in rows:
        if row[1].startswith('not installed'): continue  # kornia is only in requirements-bench.txt
        assert len(row) == 1 + bench.PER_SHAPE_COLUMNS * len(bench.SHAPES), row
        for ms, to_clone, to_copy, faults in zip(*[iter(row[1:])] * bench.PER_SHAPE_COLUMNS):
            assert float(ms) > 0 and to_clone.endswith('×') and to_copy.endswith('×') and int(faults) >= 0
    floor = next(row for row in rows if row[0] == bench.COPY_FLOOR)
    assert floor[3] == floor[3 + bench.PER_SHAPE_COLUMNS] == '1.00×'

def test_end_to_end_table_has_every_setup_and_a_zero_cost_baseline():
    rows = table(bench.end_to_end_table('cpu', bench.tiny_cnn, n_images=128, rounds=1))
    assert [row[0] for row in rows][:2] == ['no augmentation', 'no augmentation, again (noise floor)'] and len(rows) == 9
    assert rows[-1][0].startswith('floor:')  # the least any mixer with the loss rule does, as a reference for the callbacks' rows
    baseline = rows[0]
    assert baseline[2] == '+0.0%' and float(baseline[-1].rstrip('%')) == 0
    assert all(float(row[1]) > 0 and float(row[3]) > 0 and float(row[4]) > 0 for row in rows)

def test_versus_timm_table_pairs_each_of_ours_with_timm_at_every_shape():
    rows = table(bench.versus_timm_table('cpu', pairs=2, rounds=1))
    assert [(row[0], row[1]) for row in rows] == bench.VERSUS_TIMM
    assert {bench.AS_RUN_MIXUP, bench.AS_RUN_CUTMIX} <= {row[0] for row in rows}
    for row in rows:
        assert len(row) == 2 + 3 * len(bench.SHAPES), row
        for median, quartiles, round_medians in zip(*[iter(row[2:])] * 3):
            assert float(median.rstrip('×')) > 0 and ' to ' in quartiles and ' to ' in round_medians

def test_the_as_run_rows_augment_the_batch_the_learner_holds():
    "The as-run method calls the callback's whole before_batch: the batch it is given is changed in place, with a draw exposed."
    cb = bench.MixUp(.4, per_sample=False)
    run, images = bench.ours_as_it_runs(cb), bench.torch.rand(8, 3, 6, 6)
    raw = images.clone()
    run(images, bench.torch.randint(0, bench.NUM_CLASSES, (8,)))
    assert cb.lam is not None and not bench.torch.equal(images, raw)
