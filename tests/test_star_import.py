"""`from mixaug_fastai.all import *` after `from fastai.vision.all import *`, as the README writes it: it brings the public API and
replaces no fastai name but the documented drop-ins MixUp and CutMix; the import order decides whose MixUp a script gets."""
import subprocess, sys
import pytest, torch
import fastai.vision.all
import mixaug_fastai.all, mixaug_fastai.callbacks, mixaug_fastai.loss

PUBLIC_API = {'MixUp', 'CutMix', 'MixUpCutMix', 'Cutout', 'MixAugmentation', 'show_mix_batch', 'mixed_loss'}
DROP_INS = {'MixUp', 'CutMix'}  # the README's documented replacements of fastai's names

def star_import(*modules) -> dict:
    "The namespace a script gets from `from module import *` for each of `modules` in turn."
    namespace = {}
    for module in modules: exec(f'from {module} import *', namespace)
    namespace.pop('__builtins__')
    return namespace

def test_the_star_import_brings_the_public_api_only():
    assert set(star_import('mixaug_fastai.all')) == set(mixaug_fastai.all.__all__) == PUBLIC_API

def test_no_exported_name_is_a_fastai_name_but_the_drop_ins():
    fastai_names = set(star_import('fastai.vision.all'))
    assert {name for name in mixaug_fastai.all.__all__ if name in fastai_names} == DROP_INS

def test_after_fastais_star_import_every_fastai_name_but_the_drop_ins_keeps_its_meaning():
    fastais, both = star_import('fastai.vision.all'), star_import('fastai.vision.all', 'mixaug_fastai.all')
    replaced = {name for name in fastais if both[name] is not fastais[name]}
    assert replaced == DROP_INS
    assert both['MixUp'] is mixaug_fastai.callbacks.MixUp and both['CutMix'] is mixaug_fastai.callbacks.CutMix

def test_to_device_of_one_argument_works_after_both_star_imports():
    "The issue's symptom: ours replaced fastai's to_device(b, device=None), and to_device(b) raised a TypeError about `like`."
    script = ("from fastai.vision.all import *\nfrom mixaug_fastai.all import *\nimport torch\n"
              "moved = to_device((torch.ones(2), [torch.zeros(1)]))\n"
              "assert moved[0].device == default_device() and moved[1][0].device == default_device(), moved\nprint('ok')")
    done = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith('ok'), done.stderr[-2000:]

def test_fastais_star_import_after_ours_brings_fastais_mixup_back_and_its_first_sign():
    "What the README says about the order: the later star import wins, and fastai's MixUp refuses our arguments."
    namespace = star_import('mixaug_fastai.all', 'fastai.vision.all')
    assert namespace['MixUp'] is fastai.vision.all.MixUp
    with pytest.raises(TypeError, match="unexpected keyword argument 'p_batch'"): namespace['MixUp'](.4, p_batch=.5)

def test_each_public_name_is_the_library_object():
    for name in PUBLIC_API:
        owner = mixaug_fastai.loss if name == 'mixed_loss' else mixaug_fastai.callbacks
        assert getattr(mixaug_fastai.all, name) is getattr(owner, name), name
