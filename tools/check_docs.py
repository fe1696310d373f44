"""Check the built docs site (run `python tools/build_docs.py` first; `make test-docs` does both).

    python tools/check_docs.py [--no-browser]

Fails (exit 1) unless:
- pages: every notebook (nbs/ and its subfolders) has a page and a place in the sidebar;
- API: every name in each module's `__all__` has its heading, signature and docstring on its API page, and the public
  API page lists every public name of the library (the star import's first) with a line on what it is and a link to that heading;
- links and images: every internal link and anchor resolves, every image exists, nothing is loaded from the network;
- outputs: no page shows a printed exception (an error output, a traceback, fastai's "Exception occured in") or a
  progress bar that never moved;
- results shown: a page that shows a results/*/results.md shows all of the current file (no stale numbers);
- README.md is what `build_docs.py --readme` writes from index.ipynb;
- browser: headless Chromium, driven over the DevTools protocol, opens every page at 1400 and 420 px wide and measures
  what a reader meets: no code or output cut off (each block fits the page or scrolls, text selectable, never broken
  inside a word), no sideways scrolling of the page, every link with text and a box to click, a link to the repository,
  no figure shrunk below its natural size or with a point of its text under a CSS pixel, no TeX left raw after KaTeX
  ran, no markdown link shown as text, and at 420 px the page starting in the first screen. Screenshots of each page
  at both widths go to build/docs-screenshots/ (outside git), a page taller than Chromium captures at once in parts.
"""
import argparse, base64, html, importlib, inspect, json, posixpath, re, shutil, struct, subprocess, sys, tempfile, time
import urllib.request
from pathlib import Path
from urllib.parse import unquote
sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_docs import ROOT, settings, front_matter, sidebar_notebooks, readme_markdown, processed_notebooks, page_path

CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync']
WIDTHS = (1400, 420)  # a desktop window and a phone, in CSS pixels
SCREEN_HEIGHT = 900
MIN_FIGURE_HEIGHT = 120  # CSS px: lower is a strip of thumbnails nobody can read (the data page had 54 and 62 px ones)
POINTS_PER_PIXEL = 72  # a matplotlib figure shown at (dpi x scale) below 72 has text smaller than its point size in px
FIRST_SCREEN_SHARE = 0.35  # at 420 px the page's own content starts within the top third of the first screen
SCREENSHOT_MAX_HEIGHT = 16000  # Chromium captures at most about 16,384 px at once: a taller page is shot in parts, <page>-<width>-2.png and on

def notebook_pages(proc_dir:Path) -> dict:
    "{notebook path from nbs/: page path from the site's root}, e.g. 'course/04_data.ipynb': 'course/data.html'"
    import nbformat
    return {name: page_path(name, front_matter(nbformat.read(proc_dir / name, as_version=4))) for name in processed_notebooks(proc_dir)}

def site_pages(site:Path) -> list: return sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html') if 'katex' not in p.parts)

def ids_in(page:str) -> set: return set(re.findall(r'\sid="([^"]+)"', page))

def check_pages(site:Path, nbs:Path, proc_dir:Path) -> list:
    pages, problems = notebook_pages(proc_dir), []
    in_sidebar = {name for _, names in sidebar_notebooks(proc_dir) for name in names}
    for name in processed_notebooks(nbs):
        if name not in pages: problems.append(f"{name}: not processed by nbdev_proc_nbs")
        elif not (site / pages[name]).exists(): problems.append(f"{name}: no page {pages[name]}")
        if name not in in_sidebar: problems.append(f"{name}: missing from nbs/sidebar.yml")
    return problems

def check_api(site:Path) -> list:
    "Each exported name: a heading with its id on the page nbdev's index names, its signature and its docstring."
    from mixaug_fastai._modidx import d
    problems = []
    for module_name, symbols in d['syms'].items():
        module = importlib.import_module(module_name)
        for name in getattr(module, '__all__', []):
            if f'{module_name}.{name}' not in symbols: continue  # re-exported (e.g. by all.py), or a constant
            target = symbols[f'{module_name}.{name}'][0]
            file, anchor = target.split('#')
            page = (site / file).read_text() if (site / file).exists() else ''
            obj = getattr(module, name)
            text = html.unescape(re.sub(r'<[^>]+>', '', page))
            if anchor not in ids_in(page): problems.append(f"{name}: no heading #{anchor} on {file}")
            if callable(obj) and not re.search(rf'\b(def|class) {re.escape(name)}\(', text): problems.append(f"{name}: no signature on {file}")
            doc = ((inspect.getdoc(obj) or '').splitlines() or [''])[0].replace('`', '') if callable(obj) else ''
            if callable(obj) and (not doc or ' '.join(doc.split()) not in ' '.join(text.split())): problems.append(f"{name}: docstring {doc!r} not on {file}")
    return problems

def check_api_index(site:Path, page:str='all.html') -> list:
    """The public API page: each public name of the library (`mixaug_fastai.all.__all__`, the star import's, and the helpers
    of core, loss and callbacks) once as a link, with a line on what it is; a function or class links to its own heading
    (nbdev's index), a constant to its module's page. Whether each target exists is check_links's job."""
    from bs4 import BeautifulSoup
    import mixaug_fastai.all, mixaug_fastai.core, mixaug_fastai.loss, mixaug_fastai.callbacks
    from mixaug_fastai._modidx import d
    if not (site / page).exists(): return [f"{page} was not built"]
    soup, problems = BeautifulSoup((site / page).read_text(), 'html.parser'), []
    rows = {}
    for row in soup.select('main table tr'):
        cells = row.find_all('td')
        link = cells[0].find('a') if cells else None
        if link: rows.setdefault(link.get_text(strip=True), []).append((link.get('href', ''), cells[-1].get_text(' ', strip=True)))
    library = [m for m in d['syms'] if not m.startswith('mixaug_fastai.course') and m != 'mixaug_fastai.all']  # the course is not in all
    documented = {name.removeprefix(module + '.'): target for module in library for name, (target, _) in d['syms'][module].items()}
    modules = (mixaug_fastai.all, mixaug_fastai.core, mixaug_fastai.loss, mixaug_fastai.callbacks)
    owner = {name: module for module in reversed(modules) for name in module.__all__}  # a name of the star import: on mixaug_fastai.all
    for name, module in owner.items():
        found = rows.get(name, [])
        if len(found) != 1: problems.append(f"{page}: {name} listed {len(found)} times in the index (once expected)"); continue
        href, description = found[0]
        if not description: problems.append(f"{page}: {name} has no description")
        if callable(getattr(module, name)) and href != documented.get(name):
            problems.append(f"{page}: {name} links to {href!r}, not to its documentation {documented.get(name)!r}")
        if not callable(getattr(module, name)) and not href.endswith('.html'):
            problems.append(f"{page}: constant {name} links to {href!r}, not to a page")
    extra = set(rows) - set(owner)
    if extra: problems.append(f"{page}: the index lists names that no library module exports: {sorted(extra)}")
    return problems

def check_links(site:Path) -> list:
    "Every href and src inside the site resolves (file, and anchor on an HTML page); nothing is fetched from the network."
    pages = site_pages(site)
    problems, ids = [], {page: ids_in((site / page).read_text()) for page in pages}
    for page in pages:
        content = (site / page).read_text()
        for tag, attribute, target in re.findall(r'<(\w+)[^>]*?\s(href|src)="([^"]*)"', content):
            if re.match(r'https?:', target) and (tag != 'a'): problems.append(f"{page}: <{tag} {attribute}={target!r}> loads from the network (the site must work offline)")
            if re.match(r'(https?:|data:|mailto:|javascript:)', target) or not target: continue
            file, _, anchor = unquote(target).partition('#')
            file = posixpath.normpath(posixpath.join(posixpath.dirname(page), file)) if file else page
            if not (site / file).exists(): problems.append(f"{page}: {attribute} {target!r} points to a missing file")
            elif anchor and file.endswith('.html') and anchor not in ids.get(file, set()): problems.append(f"{page}: link {target!r}: no #{anchor} on {file}")
        if re.search(r'<img(?![^>]*\ssrc=)', content): problems.append(f"{page}: an <img> without src")
    return problems

def check_outputs(site:Path) -> list:
    "Cell outputs a reader should never meet: printed exceptions and progress bars that never moved."
    from bs4 import BeautifulSoup
    problems = []
    for page in site_pages(site):
        soup = BeautifulSoup((site / page).read_text(), 'html.parser')
        for output in soup.select('.jp-OutputArea-output'):
            text = output.get_text()
            where = f"{page}, after {heading_before(output)!r}"
            if 'jp-OutputArea-error' in output.get('class', []): problems.append(f"{where}: an error output: {first_line(text)!r}")
            elif 'Traceback (most recent call last)' in text: problems.append(f"{where}: a printed traceback")
            for found in re.finditer(r'Exception occured in `[^`]+`[^\n]*', text): problems.append(f"{where}: fastai printed an exception: {found.group(0)!r}")
            for bar in output.find_all('progress'):
                if float(bar.get('value') or 0) < float(bar.get('max') or 1):
                    problems.append(f"{where}: a progress bar left at {bar.get('value')}/{bar.get('max')}: {first_line(bar.parent.get_text())!r}")
    return problems

def check_results_copies(site:Path) -> list:
    """A page that shows a results/*/results.md (its command line is on the page) shows the current one: every bullet and
    table row of the file, so that a page executed before the last run cannot show stale numbers."""
    from bs4 import BeautifulSoup
    def squeeze(text:str) -> str: return re.sub(r'[\s|`*]', '', text)
    problems, texts = [], {page: squeeze(BeautifulSoup((site / page).read_text(), 'html.parser').get_text()) for page in site_pages(site)}
    for results in sorted(ROOT.glob('results/*/results.md')):
        lines = [line.lstrip('- ') for line in results.read_text().splitlines() if line.startswith(('- ', '| ')) and not set(line) <= set('|- ')]
        command = next((line for line in lines if line.startswith('Command:')), None)
        for page, text in texts.items():
            if not command or squeeze(command) not in text: continue
            stale = [line for line in lines if squeeze(line) not in text]
            if stale: problems.append(f"{page} shows an older {results.relative_to(ROOT)}: not on the page: {stale[0]!r}" + (f" and {len(stale) - 1} more lines" if len(stale) > 1 else '') + " (re-run its notebook)")
    return problems

def heading_before(element) -> str:
    heading = element.find_previous(['h1', 'h2', 'h3', 'h4'])
    return heading.get_text(strip=True).rstrip('¶') if heading else 'the top'

def first_line(text:str) -> str: return next((line.strip() for line in text.splitlines() if line.strip()), '')[:100]

def check_readme() -> list:
    cfg = settings()
    text, figures = readme_markdown(ROOT / cfg['nbs_path'] / cfg['readme_nb'])
    stale = [path for path, png in figures.items() if not (ROOT / path).exists() or (ROOT / path).read_bytes() != png]
    if (ROOT / 'README.md').read_text() != text: stale.append('README.md')
    return [f"{path} differs from index.ipynb: run `python tools/build_docs.py --readme`" for path in stale]

# --- in the browser ------------------------------------------------------------------------------------------

class Chromium:
    "Headless Chromium driven over the DevTools protocol (a websocket to its first tab)."
    def __init__(self, browser:str):
        import websocket
        self.profile = tempfile.TemporaryDirectory()
        self.process = subprocess.Popen([browser, *CHROMIUM_FLAGS, '--remote-debugging-port=0', '--remote-allow-origins=*',
                                         f'--user-data-dir={self.profile.name}', 'about:blank'],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._port(Path(self.profile.name) / 'DevToolsActivePort')
        tabs = json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=30))
        self.socket = websocket.create_connection(next(t for t in tabs if t['type'] == 'page')['webSocketDebuggerUrl'], timeout=120)
        self.next_id = 0
        self.call('Page.enable')

    def _port(self, active_port_file:Path, wait_s:float=60) -> int:
        "Chromium writes the port it chose into its profile once it listens; wait for that (not a timing assumption)."
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None: raise RuntimeError(f"chromium exited with {self.process.returncode} before listening")
            if active_port_file.exists() and active_port_file.read_text().strip(): return int(active_port_file.read_text().split()[0])
            time.sleep(0.1)
        raise RuntimeError(f"chromium did not open its DevTools port within {wait_s} s")

    def call(self, method:str, wait_for:str=None, **params) -> dict:
        "Send one command; return its result (after the event `wait_for`, if given, has also arrived)."
        self.next_id += 1
        self.socket.send(json.dumps(dict(id=self.next_id, method=method, params=params)))
        result, waiting = None, wait_for
        while result is None or waiting:
            message = json.loads(self.socket.recv())
            if message.get('id') == self.next_id:
                if 'error' in message: raise RuntimeError(f"{method}: {message['error']}")
                result = message['result']
            elif message.get('method') == waiting: waiting = None
        return result

    def open(self, url:str, width:int):
        self.call('Emulation.setDeviceMetricsOverride', width=width, height=SCREEN_HEIGHT, deviceScaleFactor=1, mobile=width < 800)
        self.call('Page.navigate', wait_for='Page.loadEventFired', url=url)

    def evaluate(self, expression:str):
        found = self.call('Runtime.evaluate', expression=expression, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in found: raise RuntimeError(f"in the page: {found['exceptionDetails']}")
        return found['result'].get('value')

    def screenshot(self, path:Path, width:int, height:int):
        "The whole page, in parts of SCREENSHOT_MAX_HEIGHT: `path`, then `path` with -2, -3, ... before its suffix."
        for part, top in enumerate(range(0, height, SCREENSHOT_MAX_HEIGHT), 1):
            clip = dict(x=0, y=top, width=width, height=min(height - top, SCREENSHOT_MAX_HEIGHT), scale=1)
            shot = self.call('Page.captureScreenshot', format='png', captureBeyondViewport=True, clip=clip)
            (path if part == 1 else path.with_stem(f'{path.stem}-{part}')).write_bytes(base64.b64decode(shot['data']))

    def close(self):
        self.socket.close(); self.process.terminate(); self.process.wait(timeout=30); self.profile.cleanup()

# Measures a page as a reader meets it; returns plain data for page_problems to judge.
PROBE = r"""
(async () => {
  await document.fonts.ready;
  const main = document.querySelector('main.site-main') || document.body;
  const headings = [...document.querySelectorAll('h1, h2, h3, h4')];
  const where = e => { let last = 'the top';
    for (const h of headings) { if (h.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING) last = h.textContent.replace('¶', '').trim(); else break; }
    return last.slice(0, 60); };
  const shown = e => e.checkVisibility({visibilityProperty: true, opacityProperty: true});
  const clipping = e => {  // the first element from e up to main whose content is wider than its box and which does not scroll
    for (let a = e; a && a !== main.parentElement; a = a.parentElement) {
      const s = getComputedStyle(a);
      if (a.scrollWidth > a.clientWidth + 1 && !['auto', 'scroll'].includes(s.overflowX)) return a.tagName.toLowerCase() + '.' + [...a.classList].join('.') + ' overflow-x:' + s.overflowX;
    }
    return null; };
  const blocks = [...main.querySelectorAll('pre, .highlight, .jp-InputArea-editor, .jp-OutputArea-output')].filter(shown).map(e => {
    const s = getComputedStyle(e), r = e.getBoundingClientRect();
    return {where: where(e), text: e.textContent.trim().slice(0, 50), clipped: clipping(e), left: r.left, right: r.right,
            userSelect: s.userSelect, wordBreak: s.wordBreak, overflowWrap: s.overflowWrap, whiteSpace: s.whiteSpace,
            isPre: e.tagName === 'PRE'}; });
  const links = [...document.querySelectorAll('a[href]')].map(a => { const r = a.getBoundingClientRect();
    return {href: a.getAttribute('href'), text: (a.innerText || a.textContent || a.querySelector('img')?.alt || '').trim(),
            shown: shown(a), width: r.width, height: r.height, where: where(a)}; });
  const images = [...main.querySelectorAll('img')].filter(shown).map(i => { const r = i.getBoundingClientRect();
    return {where: where(i), natural: [i.naturalWidth, i.naturalHeight], shown: [r.width, r.height],
            head: i.src.startsWith('data:image/png;base64,') ? i.src.slice(22, 22 + 4000) : ''}; });
  const prose = main.cloneNode(true);  // the text a reader reads: markdown cells and markdown outputs, without code
  prose.querySelectorAll('pre, code, .katex, script, style, .jp-CodeCell .jp-InputArea, .jp-OutputArea-output:not(.jp-RenderedMarkdown)').forEach(e => e.remove());
  const text = prose.textContent;
  const rawTex = [...text.matchAll(/\$[^$\n]{1,200}\$|\\(?:alpha|beta|lambda|le|ge|frac|sqrt|lfloor|rfloor|cdot|times|sum)\b/g)].map(m => m[0].slice(0, 80));
  const rawMarkdown = [...text.matchAll(/\[[^\]\n]*\]\((?:https?:|[\w.\/-]+\.(?:html|ipynb))[^)\s]*\)/g)].map(m => m[0].slice(0, 80));
  const resources = performance.getEntriesByType('resource').map(r => r.name).filter(n => /^https?:/.test(n));
  return {width: innerWidth, pageWidth: document.documentElement.scrollWidth, pageHeight: document.documentElement.scrollHeight,
          mainTop: main.getBoundingClientRect().top + scrollY, title: document.querySelector('main h1')?.textContent.replace('¶', '').trim() || '',
          blocks, links, images, rawTex, rawMarkdown, katexErrors: [...main.querySelectorAll('.katex-error')].map(e => e.textContent.slice(0, 80)),
          katex: main.querySelectorAll('.katex').length, resources,
          brokenFonts: [...document.fonts].filter(f => f.status === 'error').map(f => f.family)};
})()
"""

def png_dpi(head_b64:str):
    "The dots per inch a PNG records (matplotlib writes its figure dpi into the pHYs chunk), or None."
    data = base64.b64decode(head_b64[:len(head_b64) // 4 * 4])
    at = 8
    while at + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[at:at + 8])
        if kind == b'pHYs' and at + 17 <= len(data):
            per_unit, _, unit = struct.unpack('>IIB', data[at + 8:at + 17])
            return per_unit * 0.0254 if unit == 1 else None
        if kind == b'IDAT': return None
        at += 12 + length
    return None

def page_problems(page:str, width:int, m:dict, git_url:str, expected_title:str) -> list:
    "Judge one page's measurements at one width."
    at, problems = f"{page} @{width}px", []
    def say(text): problems.append(f"{at}: {text}")
    if expected_title and expected_title not in m['title']: say(f"title {m['title']!r}, expected {expected_title!r}")
    if m['pageWidth'] > m['width'] + 1: say(f"the page scrolls sideways ({m['pageWidth']} px wide in a {m['width']} px window)")
    for b in m['blocks']:
        label = f"block after {b['where']!r} ({b['text'][:30]!r})"
        if b['clipped']: say(f"{label} is cut off: it overflows {b['clipped']}, which does not scroll")
        if b['right'] > m['width'] + 1 or b['left'] < -1: say(f"{label} sticks out of the window ({b['left']:.0f}..{b['right']:.0f} px)")
        if b['userSelect'] == 'none': say(f"{label} cannot be selected for copying")
        if b['wordBreak'] == 'break-all' or b['overflowWrap'] == 'anywhere' or (b['isPre'] and b['overflowWrap'] == 'break-word' and b['whiteSpace'] != 'pre'):
            say(f"{label} breaks text inside words (word-break: {b['wordBreak']}, overflow-wrap: {b['overflowWrap']})")
    for link in m['links']:
        if not link['text']: say(f"a link with no text to click, after {link['where']!r}: href {link['href'][:80]!r}")
        elif link['shown'] and (link['width'] < 1 or link['height'] < 1): say(f"link {link['text']!r} after {link['where']!r} has no box ({link['width']:.0f}x{link['height']:.0f})")
    if not any(l['href'].rstrip('/') == git_url.rstrip('/') and l['shown'] and l['width'] >= 1 and l['text'] for l in m['links']):
        say(f"no visible link to the repository {git_url}")
    for image in m['images']:
        (nw, nh), (w, h) = image['natural'], image['shown']
        label = f"figure after {image['where']!r} ({nw}x{nh} px, shown {w:.0f}x{h:.0f})"
        dpi = png_dpi(image['head']) if image['head'] else None
        scale = w / nw if nw else 0
        if h < MIN_FIGURE_HEIGHT: say(f"{label} is shown under {MIN_FIGURE_HEIGHT} px high")
        if dpi and dpi * scale < POINTS_PER_PIXEL - 0.5:
            say(f"{label}: made at {dpi:.0f} dpi and shown at {100 * scale:.0f}%, so a point of its text is {dpi * scale / 72:.2f} px (at least 1)")
        if not dpi and scale < 0.99: say(f"{label} is shrunk below its natural size")
    for tex in m['rawTex']: say(f"raw TeX in the text: {tex!r}")
    for link in m['rawMarkdown']: say(f"a markdown link shown as text: {link!r}")
    for error in m['katexErrors']: say(f"KaTeX could not render {error!r}")
    for url in m['resources']: say(f"loaded from the network: {url}")
    for family in m['brokenFonts']: say(f"the font {family} failed to load (is it served with the site?)")
    if width < 800 and m['mainTop'] > FIRST_SCREEN_SHARE * SCREEN_HEIGHT:
        say(f"the page starts {m['mainTop']:.0f} px down the first screen (the sidebar fills it)")
    return problems

def check_in_browser(site:Path, shots:Path, proc_dir:Path) -> list:
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    if not browser: return ["chromium not found: install Debian's chromium (make test-docs does)"]
    import nbformat
    shutil.rmtree(shots, ignore_errors=True); shots.mkdir(parents=True)
    titles = {page_path(name, meta): meta.get('title', '') for name in processed_notebooks(proc_dir)
              for meta in [front_matter(nbformat.read(proc_dir / name, as_version=4))]}
    git_url, problems, chromium = settings()['git_url'], [], Chromium(browser)
    try:
        for page in site_pages(site):
            for width in WIDTHS:
                chromium.open((site / page).as_uri(), width)
                measured = chromium.evaluate(PROBE)
                chromium.screenshot(shots / f"{page.replace('/', '_').removesuffix('.html')}-{width}.png", width, measured['pageHeight'])
                found = page_problems(page, width, measured, git_url, titles.get(page, ''))
                print(f"  chromium: {page} @{width}px: {len(measured['blocks'])} code/output blocks, {len(measured['links'])} links, "
                      f"{len(measured['images'])} figures, {measured['katex']} formulas, {len(found)} problems")
                problems += found
    finally: chromium.close()
    return problems

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--no-browser', action='store_true', help='skip the headless Chromium check (says so)')
    args = parser.parse_args()
    cfg = settings()
    site, nbs, proc = ROOT / cfg['doc_path'], ROOT / cfg['nbs_path'], ROOT / '_proc'
    checks = [('pages', lambda: check_pages(site, nbs, proc)), ('API', lambda: check_api(site)),
              ('API index', lambda: check_api_index(site)), ('links and images', lambda: check_links(site)),
              ('outputs', lambda: check_outputs(site)), ('results shown', lambda: check_results_copies(site)), ('README', check_readme)]
    if args.no_browser: print("SKIPPED: headless Chromium check (--no-browser)")
    else: checks.append(('browser', lambda: check_in_browser(site, ROOT / 'build' / 'docs-screenshots', proc)))
    failed = 0
    for label, check in checks:
        problems = check()
        print(f"{'FAIL' if problems else 'ok  '} {label}" + ''.join(f"\n     {p}" for p in problems))
        failed += bool(problems)
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
