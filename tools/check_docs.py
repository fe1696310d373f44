"""Check the built docs site (run `python tools/build_docs.py` first; `make test-docs` does both).

    python tools/check_docs.py [--no-browser]

Fails (exit 1) unless: every notebook has a page and a place in the sidebar; every name in each module's
`__all__` has its heading, signature and docstring on its API page; every internal link and anchor
resolves; every image exists; README.md is what `build_docs.py --readme` writes from index.ipynb; and
headless Chromium renders the home page, the CutMix API page and the tutorial page with their title
and at least one figure (screenshots go to build/docs-screenshots/, outside git).
"""
import argparse, html, importlib, inspect, re, shutil, subprocess, sys, tempfile
from pathlib import Path
from urllib.parse import unquote
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_docs import ROOT, settings, directives, front_matter, page_name, sidebar_notebooks, readme_markdown

CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
                  '--disable-component-update', '--disable-sync']
BROWSER_PAGES = {'home': 'index.html', 'CutMix API': 'callbacks.html', 'tutorial': 'tutorial.html'}
# Pages that only exist once their notebook does; check_pages already fails on a notebook without its page
PAGES_OF_LATER_NOTEBOOKS = {'tutorial.html'}

def notebook_pages(proc_dir:Path) -> dict:
    import nbformat
    return {p.name: page_name(p, front_matter(nbformat.read(p, as_version=4))) for p in sorted(proc_dir.glob('*.ipynb'))}

def ids_in(page:str) -> set: return set(re.findall(r'\sid="([^"]+)"', page))

def check_pages(site:Path, nbs:Path, proc_dir:Path) -> list:
    pages, problems = notebook_pages(proc_dir), []
    in_sidebar = {name for _, names in sidebar_notebooks(proc_dir) for name in names}
    for notebook in sorted(nbs.glob('*.ipynb')):
        if notebook.name not in pages: problems.append(f"{notebook.name}: not processed by nbdev_proc_nbs")
        elif not (site / pages[notebook.name]).exists(): problems.append(f"{notebook.name}: no page {pages[notebook.name]}")
        if notebook.name not in in_sidebar: problems.append(f"{notebook.name}: missing from nbs/sidebar.yml")
    return problems

def check_api(site:Path) -> list:
    "Each exported name: a heading with its id on the page nbdev's index names, its signature and its docstring."
    from mixaug_fastai._modidx import d
    problems = []
    for module_name, symbols in d['syms'].items():
        module = importlib.import_module(module_name)
        for name in getattr(module, '__all__', []):
            if f'{module_name}.{name}' not in symbols: continue  # re-exported (e.g. by all.py)
            target = symbols[f'{module_name}.{name}'][0]
            file, anchor = target.split('#')
            page = (site / file).read_text() if (site / file).exists() else ''
            obj = getattr(module, name)
            text = html.unescape(re.sub(r'<[^>]+>', '', page))
            if anchor not in ids_in(page): problems.append(f"{name}: no heading #{anchor} on {file}")
            if callable(obj) and not re.search(rf'\b(def|class) {re.escape(name)}\(', text): problems.append(f"{name}: no signature on {file}")
            doc = (inspect.getdoc(obj) or '').splitlines()[0].replace('`', '') if callable(obj) else ''
            if callable(obj) and (not doc or ' '.join(doc.split()) not in ' '.join(text.split())): problems.append(f"{name}: docstring {doc!r} not on {file}")
    return problems

def check_links(site:Path) -> list:
    problems, ids = [], {page.name: ids_in(page.read_text()) for page in site.glob('*.html')}
    for page in site.glob('*.html'):
        content = page.read_text()
        for attribute, target in re.findall(r'\s(href|src)="([^"]*)"', content):
            if re.match(r'(https?:|data:|mailto:|javascript:)', target) or not target: continue
            file, _, anchor = unquote(target).partition('#')
            file = file or page.name
            if not (site / file).exists(): problems.append(f"{page.name}: {attribute} {target!r} points to a missing file")
            elif anchor and file.endswith('.html') and anchor not in ids.get(file, set()): problems.append(f"{page.name}: link {target!r}: no #{anchor} on {file}")
        if re.search(r'<img(?![^>]*\ssrc=)', content): problems.append(f"{page.name}: an <img> without src")
    return problems

def check_readme() -> list:
    cfg = settings()
    text, figures = readme_markdown(ROOT / cfg['nbs_path'] / cfg['readme_nb'])
    stale = [path for path, png in figures.items() if not (ROOT / path).exists() or (ROOT / path).read_bytes() != png]
    if (ROOT / 'README.md').read_text() != text: stale.append('README.md')
    return [f"{path} differs from index.ipynb: run `python tools/build_docs.py --readme`" for path in stale]

def check_in_browser(site:Path, shots:Path) -> list:
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    if not browser: return ["chromium not found: install Debian's chromium (make test-docs does)"]
    shots.mkdir(parents=True, exist_ok=True)
    problems = []
    for label, page in BROWSER_PAGES.items():
        if not (site / page).exists():
            if page in PAGES_OF_LATER_NOTEBOOKS: print(f"  NOT CHECKED: {label} ({page}): no notebook in nbs/ renders to it yet")
            else: problems.append(f"{label}: {page} was not built")
            continue
        url, title = (site / page).as_uri(), front_matter_title(site / page)
        with tempfile.TemporaryDirectory() as profile:
            flags = CHROMIUM_FLAGS + [f'--user-data-dir={profile}']
            dom = subprocess.run([browser, *flags, '--dump-dom', url], capture_output=True, text=True, timeout=120).stdout
            subprocess.run([browser, *flags, '--window-size=1280,1600', f'--screenshot={shots / page.replace(".html", ".png")}', url],
                           capture_output=True, timeout=120)
        rendered_title = re.search(r'<h1[^>]*>(.*?)</h1>', dom, re.S)
        figures = len(re.findall(r'<img\s[^>]*src="data:image/', dom))
        print(f"  chromium: {label} ({page}): h1 {html.unescape(re.sub('<[^>]+>', '', rendered_title.group(1))).strip()[:60] if rendered_title else None!r}, {figures} figures")
        if not rendered_title or title not in html.unescape(rendered_title.group(1)): problems.append(f"{label}: the rendered DOM has no title {title!r}")
        if figures == 0: problems.append(f"{label}: the rendered DOM has no figure")
    return problems

def front_matter_title(page:Path) -> str:
    found = re.search(r'<title>(.*?)</title>', page.read_text(), re.S)
    return html.unescape(found.group(1)).rsplit(' – ', 1)[0].strip() if found else ''

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--no-browser', action='store_true', help='skip the headless Chromium check (says so)')
    args = parser.parse_args()
    cfg = settings()
    site, nbs = ROOT / cfg['doc_path'], ROOT / cfg['nbs_path']
    checks = [('pages', lambda: check_pages(site, nbs, ROOT / '_proc')), ('API', lambda: check_api(site)),
              ('links and images', lambda: check_links(site)), ('README', check_readme)]
    if args.no_browser: print("SKIPPED: headless Chromium check (--no-browser)")
    else: checks.append(('browser', lambda: check_in_browser(site, ROOT / 'build' / 'docs-screenshots')))
    failed = 0
    for label, check in checks:
        problems = check()
        print(f"{'FAIL' if problems else 'ok  '} {label}" + ''.join(f"\n     {p}" for p in problems))
        failed += bool(problems)
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
