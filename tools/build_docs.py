"""Build the docs site and README.md from the notebooks.

    python tools/build_docs.py            # the site in _docs/ and README.md (what `make docs` runs)
    python tools/build_docs.py --readme   # README.md only

With quarto on PATH this is nbdev's own path (`nbdev_docs`, which also writes README.md).
Without it (quarto cannot be installed on our machines) the same site is built offline:
`nbdev_proc_nbs` applies nbdev's processing (show_doc, directives, backtick links) into _proc/,
and nbconvert renders each processed notebook to HTML. nbconvert is Jupyter's own maintained
renderer: it already knows every output type a notebook holds (figures, HTML tables, markdown
from show_doc), highlights code with pygments and embeds figures in the page, so no notebook
plugin or second markup pipeline is needed. The sidebar follows nbs/sidebar.yml, the same file
quarto reads, and the page names follow nbdev's `output-file`.
"""
import argparse, base64, configparser, json, os, posixpath, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = Path(__file__).resolve().parent / 'docs_template'

def settings() -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.read(ROOT / 'settings.ini')
    return parser['DEFAULT']

def directives(source:str) -> tuple[dict, str]:
    "Split a cell into its `#|` directives (`#| key: value` or bare nbdev words such as `hide`) and the rest."
    found, lines = {}, source.splitlines()
    while lines and lines[0].startswith('#|'):
        key, _, value = lines.pop(0)[2:].strip().partition(':')
        found[key.strip()] = value.strip() or True
    return found, '\n'.join(lines)

def is_hidden(found:dict) -> bool:
    return 'hide' in found or found.get('include') == 'false'

def front_matter(nb:dict) -> dict:
    "The YAML front matter nbdev_proc_nbs writes into the first raw cell."
    import yaml
    first = nb['cells'][0] if nb['cells'] else None
    if first and first['cell_type'] == 'raw' and ''.join(first['source']).startswith('---'):
        return yaml.safe_load(''.join(first['source']).strip().strip('-')) or {}
    return {}

def title_cell(nb:dict) -> tuple[str, str]:
    "Title and description from a raw notebook's first markdown cell (`# title` then `> description`)."
    cell = next((c for c in nb['cells'] if c['cell_type'] == 'markdown'), None)
    text = ''.join(cell['source']) if cell else ''
    title = re.search(r'^# (.+)$', text, re.M)
    description = re.search(r'^> (.+)$', text, re.M)
    return (title.group(1).strip() if title else ''), (description.group(1).strip() if description else '')

def page_name(notebook:Path, meta:dict) -> str:
    return meta.get('output-file') or re.sub(r'^\d+_', '', notebook.stem) + '.html'

def sidebar_notebooks(proc_dir:Path) -> list:
    "[(section or None, [notebook names])] in the order of sidebar.yml."
    import yaml
    contents = yaml.safe_load((proc_dir / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    def names(items): return [i for i in items if isinstance(i, str) and i.endswith('.ipynb')]
    groups, loose = [], names(contents)
    if loose: groups.append((None, loose))
    groups += [(item['section'], names(item['contents'])) for item in contents if isinstance(item, dict)]
    return groups

# --- README.md ---------------------------------------------------------------------------------

FIGURES_DIR = 'nbs/index_files/readme'  # README.md's figures, as quarto's nbdev_readme keeps them beside index.ipynb

def readme_markdown(notebook:Path) -> tuple[str, dict]:
    """README.md text for a notebook and its figures ({path from the project root: PNG bytes}): visible markdown
    cells as they are, code and its printed output as fenced blocks, PNG outputs as images."""
    nb, parts, figures = json.loads(notebook.read_text()), [], {}
    for number, cell in enumerate(nb['cells']):
        found, source = directives(''.join(cell['source']))
        if is_hidden(found) or not source.strip(): continue
        if cell['cell_type'] == 'markdown': parts.append(source.strip())
        if cell['cell_type'] != 'code': continue
        if found.get('echo') != 'false': parts.append(f"```python\n{source.strip()}\n```")
        for output in cell.get('outputs', []):
            if output['output_type'] == 'stream': parts.append(f"```\n{''.join(output['text']).rstrip()}\n```")
            elif 'image/png' in output.get('data', {}):
                path = f"{FIGURES_DIR}/cell-{number}-{len(figures)}.png"
                figures[path] = base64.b64decode(''.join(output['data']['image/png']))
                parts.append(f"![]({path})")
    text = '\n\n'.join(parts) + '\n'
    # links between notebooks point into nbs/ from the repository root, where README.md lives
    return re.sub(r'\]\((?!https?:|/|#)([^)\s]+\.ipynb)', r'](nbs/\1', text), figures

def write_readme():
    cfg = settings()
    text, figures = readme_markdown(ROOT / cfg['nbs_path'] / cfg['readme_nb'])
    shutil.rmtree(ROOT / FIGURES_DIR, ignore_errors=True)
    for path, png in figures.items():
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_bytes(png)
    (ROOT / 'README.md').write_text(text)

# --- the offline site --------------------------------------------------------------------------

def process_notebooks(proc_dir:Path):
    """nbdev_proc_nbs's steps (quarto config, doc-link index, sidebar, show_doc and directives into proc_dir), less its
    first one: without quarto, nbdev_proc_nbs tries to install it with sudo and pip-installs the project into whatever
    `pip` is first on PATH."""
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar, proc_nbs
    from nbdev.doclinks import _build_modidx
    import nbdev.processors
    # nbdev inserts each show_doc of a cell right after the cell, one at a time, which lists a cell's functions last first;
    # handing it the names last first puts them in the order the cell defines them
    def_names = nbdev.processors._def_names
    nbdev.processors._def_names = lambda cell, shown: def_names(cell, shown)[::-1]
    shutil.rmtree(proc_dir, ignore_errors=True)
    refresh_quarto_yml()
    _build_modidx()
    nbdev_sidebar.__wrapped__()
    proc_nbs(n_workers=0)  # in this process, where the patch above applies (workers are spawned afresh)

def page_notebook(notebook, meta:dict):
    "The processed notebook as a page: front matter out, hidden cells out, directives applied and stripped."
    import nbformat
    cells = []
    for cell in notebook.cells[1 if meta else 0:]:
        found, source = directives(cell.source)
        if is_hidden(found) or (not source.strip() and not cell.get('outputs')): continue
        if cell.source.startswith('<!-- WARNING: THIS FILE WAS AUTOGENERATED'): continue
        cell.source = source
        for output in cell.get('outputs', []): source_links_as_html(output)
        if found.get('echo') == 'false': cell.metadata['transient'] = {'remove_source': True}
        if found.get('output') == 'false': cell.outputs = []
        cells.append(cell)
    heading = f"# {meta.get('title', '')}" + (f"\n\n> {meta['description']}" if meta.get('description') else '')
    notebook.cells = [nbformat.v4.new_markdown_cell(heading)] + cells
    return notebook

def source_links_as_html(output):
    """show_doc's `[source](url){target=... style=...}` is quarto's attribute syntax; plain markdown needs HTML for it.
    A block (a div alone on its line), not an inline <a>: with embed_images, nbconvert's markdown renderer parses each
    inline HTML tag on its own and closes the <a> before its text, which left empty anchors."""
    markdown = output.get('data', {}).get('text/markdown')
    if markdown:
        output['data']['text/markdown'] = re.sub(r'\[source\]\(([^)]+)\)\{[^}]*\}', r'<div class="source-link"><a href="\1" target="_blank">source</a></div>', markdown)

def relative(target:str, page:str) -> str:
    "A path from the site's root as a link from `page` (also a path from the root): pages in course/ link up with ../"
    return posixpath.relpath(target, posixpath.dirname(page) or '.')

def local_links(html:str, site_url:str, pages:dict, page:str) -> str:
    """Links to the published site become relative to `page`, and links to notebooks (relative to the page's notebook,
    which sits in the same folder as its page) point at their pages."""
    def site_link(m): return f'{m.group(1)}="{relative(m.group(2) or "index.html", page)}{m.group(3) or ""}"'
    html = re.sub(rf'(href|src)="{re.escape(site_url.rstrip("/"))}/([^"#]*)(#[^"]*)?"', site_link, html)
    # heading ids as pandoc makes them for quarto (lower case, punctuation out but _-.), which nbdev's links use
    def pandoc_id(m): return m.group(1) + re.sub(r'[^\w\-.]', '', m.group(2).lower()) + '"'
    html = re.sub(r'(<h[1-6] id="|<a class="anchor-link" href="#)([^"]+)"', pandoc_id, html)
    def to_page(match):
        target, anchor = match.group(2), match.group(3) or ''
        notebook = posixpath.normpath(posixpath.join(posixpath.dirname(page), target))
        return f'{match.group(1)}="{relative(pages[notebook], page) if notebook in pages else target}{anchor}"'
    return re.sub(r'(href)="(?!https?:|#|data:)([^"#]+\.ipynb)(#[^"]*)?"', to_page, html)

def navigation(groups, titles:dict, pages:dict, current:str) -> str:
    def link(name):
        css = ' class="current"' if pages[name] == current else ''
        return f'<li><a href="{relative(pages[name], current)}"{css}>{titles[name]}</a></li>'
    blocks = [(f'<h3>{section}</h3>' if section else '') + '<ul>' + ''.join(map(link, names)) + '</ul>' for section, names in groups]
    return ''.join(blocks)

def processed_notebooks(proc_dir:Path) -> list:
    "Every processed notebook, as its path from proc_dir ('00_core.ipynb', 'course/04_data.ipynb'), as nbdev globs them."
    return sorted(p.relative_to(proc_dir).as_posix() for p in proc_dir.rglob('*.ipynb')
                  if not any(part.startswith(('_', '.')) for part in p.relative_to(proc_dir).parts))

def page_path(notebook:str, meta:dict) -> str:
    "The page beside where its notebook sits, as quarto places it: course/04_data.ipynb -> course/data.html"
    return posixpath.join(posixpath.dirname(notebook), page_name(Path(notebook), meta))

KATEX = ROOT / 'node_modules' / 'katex' / 'dist'  # `npm ci` installs it from package-lock.json (make docs does)

def copy_katex(dest:Path):
    "KaTeX's script, its auto-render extension, stylesheet and fonts, served with the site so that math shows offline."
    if not (KATEX / 'katex.min.js').exists():
        sys.exit(f"{KATEX.relative_to(ROOT)} not found: run `npm ci` in {ROOT} (make docs does); the site renders math with KaTeX")
    shutil.rmtree(dest, ignore_errors=True)
    (dest / 'contrib').mkdir(parents=True)
    for name in ('katex.min.js', 'katex.min.css', 'contrib/auto-render.min.js'): shutil.copy(KATEX / name, dest / name)
    shutil.copytree(KATEX / 'fonts', dest / 'fonts', ignore=shutil.ignore_patterns('*.ttf', '*.woff'))  # every browser reads woff2

def build_offline(out_dir:Path, proc_dir:Path):
    import nbformat
    from nbconvert import HTMLExporter
    cfg = settings()
    process_notebooks(proc_dir)
    loaded = {name: nbformat.read(proc_dir / name, as_version=4) for name in processed_notebooks(proc_dir)}
    metas = {name: front_matter(nb) for name, nb in loaded.items()}
    for name, nb in loaded.items():  # index.ipynb keeps its title in its first cell
        if not metas[name].get('title'):
            title, description = title_cell(nb)
            metas[name] = dict(metas[name], title=title or name, description=description)
    pages = {name: page_path(name, metas[name]) for name in loaded}
    titles = {name: metas[name]['title'] for name in loaded}
    groups = sidebar_notebooks(proc_dir)
    exporter = HTMLExporter(template_name='mixaug', extra_template_basedirs=[str(TEMPLATE_DIR)], embed_images=True,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    shutil.rmtree(out_dir, ignore_errors=True); out_dir.mkdir(parents=True)
    copy_katex(out_dir / 'katex')
    for asset in ('site.css', 'site.js'): shutil.copy(TEMPLATE_DIR / asset, out_dir / asset)
    for name, nb in loaded.items():
        page = pages[name]
        resources = dict(site_title=cfg['title'], navigation=navigation(groups, titles, pages, page),
                         root=relative('.', page) + '/', git_url=cfg['git_url'], metadata=dict(name=f"{titles[name]} – {cfg['title']}"))
        html, _ = exporter.from_notebook_node(page_notebook(nb, metas[name]), resources=resources)
        (out_dir / page).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / page).write_text(local_links(html, f"{cfg['doc_host']}{cfg['doc_baseurl']}", pages, page))
    print(f"offline site: {len(loaded)} pages in {out_dir.relative_to(ROOT)}/ (rendered with nbconvert; quarto not found)")

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--readme', action='store_true', help='only write README.md')
    args = parser.parse_args()
    os.chdir(ROOT)  # nbdev finds settings.ini from the working directory
    cfg = settings()
    if args.readme: write_readme()
    elif shutil.which('quarto'):
        subprocess.run([str(Path(sys.executable).with_name('nbdev_docs'))], cwd=ROOT, check=True)
    else:
        build_offline(ROOT / cfg['doc_path'], ROOT / '_proc')
        write_readme()

if __name__ == '__main__': main()
