"README.md is generated from index.ipynb and must not drift from it."
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def load_build_docs():
    spec = importlib.util.spec_from_file_location('build_docs', ROOT / 'tools' / 'build_docs.py')
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module

def test_readme_is_generated_from_index():
    text, figures = load_build_docs().readme_markdown(ROOT / 'nbs' / 'index.ipynb')
    assert (ROOT / 'README.md').read_text() == text, "README.md differs from nbs/index.ipynb: run `make docs` (or `python tools/build_docs.py --readme`)"
    for path, png in figures.items(): assert (ROOT / path).read_bytes() == png, f"{path} is stale: run `make docs`"

def test_index_is_one_source():
    assert (ROOT / 'index.ipynb').resolve() == (ROOT / 'nbs' / 'index.ipynb').resolve()

def test_readme_markdown_rules(tmp_path):
    "Hidden cells and directives stay out, code and printed output are fenced, notebook links point into nbs/."
    import json
    def cell(kind, source, outputs=None): return dict(cell_type=kind, source=source, metadata={}, **({} if kind == 'markdown' else dict(outputs=outputs or [], execution_count=None)))
    cells = [cell('markdown', '# t\n\n> d\n\nSee [core](00_core.ipynb#x) and [web](https://x.org/a.ipynb).'),
             cell('code', '#| hide\nsecret = 1'),
             cell('code', '#| echo: false\nprint(2)', [dict(output_type='stream', name='stdout', text='2\n')]),
             cell('code', 'print(3)', [dict(output_type='stream', name='stdout', text='3\n')])]
    (tmp_path / 'nb.ipynb').write_text(json.dumps(dict(cells=cells, metadata={}, nbformat=4, nbformat_minor=5)))
    text, figures = load_build_docs().readme_markdown(tmp_path / 'nb.ipynb')
    assert figures == {}
    assert text == ('# t\n\n> d\n\nSee [core](nbs/00_core.ipynb#x) and [web](https://x.org/a.ipynb).\n\n'
                    '```\n2\n```\n\n```python\nprint(3)\n```\n\n```\n3\n```\n')
