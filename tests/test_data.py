"The data module: finding and checking photo folders, the labelled SYNTHETIC fallback, the seeded balanced split."
import re
from collections import Counter
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from fastai.vision.core import PILImage
from mixaug_fastai.course import data
from mixaug_fastai.course.data import (find_photos, open_photos, make_synthetic_photos, stratified_split, photo_dls, class_balance,
                                portable_path, class_of, PHOTOS_ENV_VAR, SYNTHETIC_NOTE)

def photo_folder(path, layout=('roses', 'tulips'), per_class=4):
    for folder, colour in zip(layout, ('red', 'yellow')):
        (path / folder).mkdir(parents=True)
        for i in range(per_class): Image.new('RGB', (24, 16), colour).save(path / folder / f'{i}.jpg')
    return path

def test_missing_folder_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path='.*nowhere'.*does not exist.*roses/ and tulips/"):
        open_photos(tmp_path / 'nowhere')

def test_missing_class_folder_says_which_and_what_is_there(tmp_path):
    (tmp_path / 'roses').mkdir(); (tmp_path / 'daisy').mkdir()
    with pytest.raises(FileNotFoundError, match=r"no tulips/ or tulip/ subfolder \(its subfolders: \['daisy', 'roses'\]\)"):
        open_photos(tmp_path)

def test_empty_class_folder(tmp_path):
    photo_folder(tmp_path)
    for f in (tmp_path / 'tulips').iterdir(): f.unlink()
    with pytest.raises(ValueError, match=r"tulips' holds no images"): open_photos(tmp_path)

@pytest.mark.parametrize('name, content, why', [('notes.txt', b'a text file', '.txt is not an image extension'),
                                               ('fake.jpg', b'not a JPEG at all', 'PIL cannot identify it as an image')])
def test_files_that_are_not_images_are_named(tmp_path, name, content, why):
    photo_folder(tmp_path)
    (tmp_path / 'roses' / name).write_bytes(content)
    with pytest.raises(ValueError, match=rf"1 file\(s\) that are not readable images: {re.escape(name)} \({re.escape(why)}\); allowed"): open_photos(tmp_path)

def noise_jpeg(path, seed=0):
    "A real JPEG of random pixels (a few kB, so that half of it is a real cut inside the compressed data)."
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, 'JPEG', quality=90)
    return path

def test_truncated_jpeg_is_caught_before_training_and_named(tmp_path):
    photo_folder(tmp_path)
    cut = noise_jpeg(tmp_path / 'tulips' / 'cut.jpg')
    whole = cut.read_bytes()
    cut.write_bytes(whole[:len(whole) // 2])  # a copy interrupted half way
    with Image.open(cut) as image: image.verify()  # the header alone looks fine: a header check lets it through
    with pytest.raises(OSError, match='image file is truncated'): PILImage.create(cut)  # and fastai would fail on it mid-epoch
    with pytest.raises(ValueError, match=r"tulips' holds 1 file\(s\) that are not readable images: cut\.jpg \(image file is truncated"):
        open_photos(tmp_path)

def test_a_whole_jpeg_of_the_same_kind_passes(tmp_path):
    photo_folder(tmp_path)
    noise_jpeg(tmp_path / 'tulips' / 'whole.jpg')
    assert [f.name for f in open_photos(tmp_path).files['tulip']] == ['0.jpg', '1.jpg', '2.jpg', '3.jpg', 'whole.jpg']

def test_hidden_and_top_level_files_and_other_classes_are_ignored(tmp_path):
    photo_folder(tmp_path)
    (tmp_path / 'roses' / '.DS_Store').write_bytes(b'x'); (tmp_path / 'LICENSE.txt').write_text('CC BY 2.0')
    photo_folder(tmp_path / 'extra'); (tmp_path / 'daisy').mkdir()
    photos = open_photos(tmp_path)
    assert [len(photos.files[c]) for c in ('rose', 'tulip')] == [4, 4]

def test_singular_kaggle_layout_gives_the_same_labels(tmp_path):
    photos = open_photos(photo_folder(tmp_path, layout=('rose', 'tulip'), per_class=3))
    assert [class_of(f) for f in photos.items] == ['rose'] * 3 + ['tulip'] * 3

def test_argument_then_environment_variable(tmp_path, monkeypatch):
    given, from_env = photo_folder(tmp_path / 'given'), photo_folder(tmp_path / 'env', per_class=2)
    monkeypatch.setenv(PHOTOS_ENV_VAR, str(from_env))
    assert find_photos().origin == f'${PHOTOS_ENV_VAR}' and len(find_photos().items) == 4
    assert find_photos(given).origin == 'argument' and len(find_photos(given).items) == 8

def test_wrong_environment_variable_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv(PHOTOS_ENV_VAR, str(tmp_path / 'typo'))
    with pytest.raises(FileNotFoundError, match='typo'): find_photos()

def test_no_photos_gives_loudly_labelled_synthetic_drawings(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(PHOTOS_ENV_VAR, raising=False)
    monkeypatch.setattr(data, 'shared_photos_path', lambda: tmp_path / 'no_shared')
    photos = find_photos(synthetic_dir=tmp_path / 'drawn')
    printed = capsys.readouterr().out
    assert SYNTHETIC_NOTE in printed and 'no_shared' in printed
    assert 'The tf_flowers download is off (download=False' in printed  # the reason, before the warning
    assert photos.synthetic and photos.origin == 'generated'
    assert photos.description.startswith('SYNTHETIC drawings, NOT photos')
    assert Counter(class_of(f) for f in photos.items) == {'rose': 60, 'tulip': 60}
    assert 'SYNTHETIC' in (tmp_path / 'drawn' / 'SYNTHETIC.txt').read_text()

def test_synthetic_drawings_depend_only_on_the_seed(tmp_path):
    def drawn(name, seed): return [f.read_bytes() for f in sorted(make_synthetic_photos(tmp_path / name, per_class=2, size=48, seed=seed).rglob('*.png'))]
    assert drawn('a', 1) == drawn('b', 1) != drawn('c', 2)

def test_shared_photos_when_present(monkeypatch):
    if not data.shared_photos_path().is_dir(): pytest.skip(f"{data.shared_photos_path()} absent: the shared tf_flowers photos exist on development machines and CI only")
    monkeypatch.delenv(PHOTOS_ENV_VAR, raising=False)
    photos = find_photos()
    assert [len(photos.files[c]) for c in ('rose', 'tulip')] == [150, 150]
    assert portable_path(photos.path) == '../shared/data/roses_tulips' and not photos.synthetic

def test_portable_path_never_shows_an_absolute_path(tmp_path):
    shown = portable_path(tmp_path / 'x')
    assert not shown.startswith('/') and shown.rstrip('>').endswith('x')

def test_split_is_fixed_by_seed_and_keeps_class_balance():
    labels = ['rose'] * 20 + ['tulip'] * 30
    train, valid = stratified_split(labels, .3, seed=5)
    assert (train, valid) == stratified_split(labels, .3, seed=5) != stratified_split(labels, .3, seed=6)
    assert Counter(labels[i] for i in valid) == {'rose': 6, 'tulip': 9}
    assert sorted(train + valid) == list(range(50)) and not set(train) & set(valid)

@pytest.mark.parametrize('valid_pct', [0., 1., .01, 30])
def test_split_rejects_fractions_that_empty_a_set(valid_pct):
    with pytest.raises(ValueError, match=r'valid_pct'): stratified_split(['rose'] * 10 + ['tulip'] * 10, valid_pct, 0)

def test_dataloaders_and_class_balance(tmp_path):
    photos = open_photos(photo_folder(tmp_path, per_class=10))
    dls = photo_dls(photos, size=16, bs=4, valid_pct=.3, split_seed=0, device='cpu')
    table = class_balance(dls)
    assert table.to_dict() == {'train': {'rose': 7, 'tulip': 7, 'total': 14}, 'valid': {'rose': 3, 'tulip': 3, 'total': 6}}
    assert list(dls.vocab) == ['rose', 'tulip']
    images, labels = dls.train.one_batch()
    assert images.shape == (4, 3, 16, 16)
    again = photo_dls(photos, size=16, bs=4, valid_pct=.3, split_seed=0, device='cpu')
    assert list(again.valid_ds.items) == list(dls.valid_ds.items)
