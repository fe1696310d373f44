"""The tf_flowers download without internet: a local HTTP server stands in for the archive's address, with a good archive,
a missing one, a refused connection, a connection cut short, a truncated archive and a file that is no archive. fastai's
folders (FASTAI_HOME) and the temporary folder point into tmp_path, so that nothing touches the user's ~/.fastai."""
import io, socket, tarfile, tempfile, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import pytest
from PIL import Image
from fastai.data.external import fastai_cfg
from mixaug_fastai.course import data, tutorial
from mixaug_fastai.course.data import (download_tf_flowers, find_photos, tf_flowers_url, DownloadFailed, PHOTOS_ENV_VAR,
                                       TF_FLOWERS_URL, TF_FLOWERS_URL_ENV_VAR, SYNTHETIC_NOTE)

def jpeg_bytes(colour) -> bytes:
    buffer = io.BytesIO(); Image.new('RGB', (20, 14), colour).save(buffer, 'JPEG'); return buffer.getvalue()

def flower_archive(folders=('roses', 'tulips', 'daisy')) -> bytes:
    "A .tgz in tf_flowers' layout: flower_photos/ with three photos in each of `folders`, and a LICENSE.txt."
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:gz') as archive:
        def add(name, content):
            member = tarfile.TarInfo(f'flower_photos/{name}'); member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
        for folder in folders:
            for i in range(3): add(f'{folder}/{i}.jpg', jpeg_bytes({'roses': 'red', 'tulips': 'yellow'}.get(folder, 'white')))
        add('LICENSE.txt', b'CC BY 2.0')
    return buffer.getvalue()

GOOD = flower_archive()
ARCHIVES = {'/good/flower_photos.tgz': GOOD, '/truncated/flower_photos.tgz': GOOD[:len(GOOD) // 2],
            '/not_gzip/flower_photos.tgz': b'<html>a login page, not an archive</html>', '/daisies/flower_photos.tgz': flower_archive(('daisy',))}

class Archives(BaseHTTPRequestHandler):
    "Serves ARCHIVES; /cut/... announces the good archive's length and closes after half of it; anything else is a 404."
    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path == '/cut/flower_photos.tgz':
            self.send_response(200); self.send_header('Content-Length', str(len(GOOD))); self.end_headers()
            self.wfile.write(GOOD[:len(GOOD) // 2]); self.close_connection = True
        elif self.path in ARCHIVES:
            self.send_response(200); self.send_header('Content-Length', str(len(ARCHIVES[self.path]))); self.end_headers()
            self.wfile.write(ARCHIVES[self.path])
        else: self.send_error(404)
    def log_message(self, *args): pass

@pytest.fixture
def server():
    "A local HTTP server on a free port of 127.0.0.1, in a thread; `server.url(route)` and the paths it was asked for."
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), Archives)
    httpd.requests, httpd.url = [], lambda route: f'http://127.0.0.1:{httpd.server_address[1]}/{route}/flower_photos.tgz'
    thread = threading.Thread(target=httpd.serve_forever, daemon=True); thread.start()
    yield httpd
    httpd.shutdown(); httpd.server_close(); thread.join()

@pytest.fixture
def refusing():
    "A socket bound on 127.0.0.1 but not listening: connections to its port are refused, deterministically."
    with socket.socket() as bound:
        bound.bind(('127.0.0.1', 0))
        yield bound

def refusing_url(refusing:socket.socket) -> str:
    return f'http://127.0.0.1:{refusing.getsockname()[1]}/flower_photos.tgz'

@pytest.fixture
def fastai_home(tmp_path, monkeypatch, refusing):
    "fastai's config, archive and data folders and the temporary folder inside tmp_path; no photos anywhere else; TensorFlow's address refused, so that even a bug cannot make a test download."
    monkeypatch.setattr(data, 'TF_FLOWERS_URL', refusing_url(refusing))
    home, scratch = tmp_path / 'fastai_home', tmp_path / 'tmp'
    scratch.mkdir()
    monkeypatch.setenv('FASTAI_HOME', str(home))
    monkeypatch.setenv('no_proxy', '127.0.0.1')  # a proxy from the environment must not stand between the test and its server
    monkeypatch.setattr(tempfile, 'tempdir', str(scratch))  # untar_data extracts into a temporary folder first
    for name in (PHOTOS_ENV_VAR, TF_FLOWERS_URL_ENV_VAR): monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(data, 'shared_photos_path', lambda: tmp_path / 'no_shared')
    fastai_cfg.cache_clear()
    assert fastai_cfg().path('archive').is_relative_to(tmp_path) and fastai_cfg().path('data').is_relative_to(tmp_path)
    yield home
    fastai_cfg.cache_clear()

def leftovers(home:Path) -> list:
    "What the download left in fastai's folders (its config, the empty archive/ and data/ folders and fastdownload's lock file apart, as after a success) and in the temporary folder."
    kept = {home / 'config.ini', home / 'archive', home / 'data'}
    found = [p for p in home.rglob('*') if p not in kept and not p.name.endswith('.lock')] + list((home.parent / 'tmp').iterdir())
    return sorted(p.relative_to(home.parent).as_posix() for p in found)

def test_good_archive_gives_its_roses_and_tulips_once(fastai_home, server, capsys):
    photos = find_photos(download=True, url=server.url('good'))
    assert photos.origin == 'tf_flowers download' and not photos.synthetic
    assert photos.path == fastai_cfg().path('data') / 'flower_photos'  # untar_data drops the archive's single top folder
    assert {name: [f.name for f in files] for name, files in photos.files.items()} == {'rose': ['0.jpg', '1.jpg', '2.jpg'], 'tulip': ['0.jpg', '1.jpg', '2.jpg']}
    assert Image.open(photos.files['tulip'][0]).getpixel((10, 7))[2] < 100  # a yellow photo: the tulips folder, not the daisies
    printed = capsys.readouterr().out
    assert f'Fetching tf_flowers from {server.url("good")}' in printed and SYNTHETIC_NOTE not in printed
    assert find_photos(download=True, url=server.url('good')).files == photos.files
    assert server.requests == ['/good/flower_photos.tgz']  # the second call found the extracted folder

def test_the_address_comes_from_the_argument_then_the_environment_variable(fastai_home, server, monkeypatch, refusing):
    assert TF_FLOWERS_URL == 'https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz'
    assert tf_flowers_url() == refusing_url(refusing)  # TensorFlow's address, which the fixture replaced by a refused one
    monkeypatch.setenv(TF_FLOWERS_URL_ENV_VAR, server.url('good'))
    assert tf_flowers_url() == server.url('good') and tf_flowers_url('http://mirror/x.tgz') == 'http://mirror/x.tgz'
    assert download_tf_flowers().joinpath('roses', '0.jpg').is_file() and server.requests == ['/good/flower_photos.tgz']

@pytest.mark.parametrize('route, step, how', [
    ('missing', 'downloading', 'HTTP Error 404: Not Found'),  # the error's class is HTTPError in fastcore 1, HTTP404NotFoundError in fastcore 2
    ('refused', 'downloading', 'Connection refused'),
    ('cut', 'downloading', 'the connection closed before the whole archive arrived'),
    ('truncated', 'extracting', 'Compressed file ended before the end-of-stream marker was reached'),
    ('not_gzip', 'extracting', 'ReadError'),
])
def test_failed_download_says_which_step_and_how_and_leaves_nothing(fastai_home, server, refusing, route, step, how):
    url = refusing_url(refusing) if route == 'refused' else server.url(route)
    with pytest.raises(DownloadFailed) as failed: download_tf_flowers(url)
    message = str(failed.value)
    assert message.startswith(f'{step} tf_flowers from {url} failed (') and how in message, message
    assert message.endswith('the partial archive and folder were removed') and '\n' not in message
    assert leftovers(fastai_home) == []
    assert server.requests == ([] if route == 'refused' else [f'/{route}/flower_photos.tgz'])

def test_a_failed_download_falls_back_to_drawings_and_says_why(fastai_home, server, capsys):
    photos = find_photos(download=True, url=server.url('truncated'), synthetic_dir=fastai_home.parent / 'drawn')
    printed = capsys.readouterr().out
    assert photos.synthetic and photos.origin == 'generated'
    assert f'No tf_flowers photos: extracting tf_flowers from {server.url("truncated")} failed (' in printed
    assert printed.index('No tf_flowers photos') < printed.index(SYNTHETIC_NOTE)
    assert leftovers(fastai_home) == []

def test_an_archive_without_roses_falls_back_and_says_what_it_holds(fastai_home, server, capsys):
    photos = find_photos(download=True, url=server.url('daisies'), synthetic_dir=fastai_home.parent / 'drawn')
    printed = capsys.readouterr().out
    assert photos.synthetic and "No tf_flowers photos: photo folder" in printed
    assert "has no roses/ or rose/ subfolder (its subfolders: ['daisy'])" in printed

def test_no_download_asks_nothing_and_says_so(fastai_home, server, capsys):
    photos = find_photos(download=False, url=server.url('good'), synthetic_dir=fastai_home.parent / 'drawn')
    assert photos.synthetic and server.requests == []
    assert 'The tf_flowers download is off (download=False, or --no-download on the command line)' in capsys.readouterr().out

def photos_of_main(argv, monkeypatch) -> list:
    "The Photos that the tutorial's main would train on, with the training itself replaced by a recorder."
    seen = []
    monkeypatch.setattr(tutorial, 'run_comparison', lambda settings, photos, **kwargs: seen.append(photos))
    tutorial.main(argv)
    return seen

def test_the_main_job_downloads_by_default(fastai_home, server, monkeypatch, tmp_path):
    [photos] = photos_of_main(['--out', str(tmp_path / 'out'), '--device', 'cpu', '--tf-flowers-url', server.url('good')], monkeypatch)
    assert photos.origin == 'tf_flowers download' and not photos.synthetic and len(photos.items) == 6

def test_the_main_job_takes_the_address_from_the_environment(fastai_home, server, monkeypatch, tmp_path):
    monkeypatch.setenv(TF_FLOWERS_URL_ENV_VAR, server.url('good'))
    [photos] = photos_of_main(['--out', str(tmp_path / 'out'), '--device', 'cpu'], monkeypatch)
    assert photos.origin == 'tf_flowers download' and server.requests == ['/good/flower_photos.tgz']

def test_the_main_job_without_download(fastai_home, server, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(TF_FLOWERS_URL_ENV_VAR, server.url('good'))
    [photos] = photos_of_main(['--out', str(tmp_path / 'out'), '--device', 'cpu', '--no-download'], monkeypatch)
    assert photos.synthetic and server.requests == [] and SYNTHETIC_NOTE in capsys.readouterr().out
