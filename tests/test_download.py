"""Downloads against a local HTTP server on 127.0.0.1 that misbehaves on purpose.

Each mirror path serves one behaviour: good, corrupt (wrong checksum), truncated (closes
early), stalled (headers then silence), trickle (a byte at a time), 404, or not gzip.
Every test is bounded in time by a short timeout.
"""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaelab.data.datasets import FILE_KINDS, DatasetSpec, dataset_registry
from vaelab.data.download import download_dataset, fetch_file
from vaelab.data.idx import sha256_hex
from vaelab.errors import VaelabError

TIMEOUT = 0.5  # seconds a mirror may stay silent


class Server:
    """A threaded HTTP server whose first path segment names a behaviour."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        self.release = threading.Event()  # lets stalled handlers finish at teardown
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(self.path)
                behaviour, _, name = self.path.strip("/").partition("/")
                body = server.files.get(name)
                if body is None or behaviour == "missing":
                    self.send_error(404)
                    return
                if behaviour == "corrupt":
                    data = gzip.decompress(body)
                    body = gzip.compress(data[:-1] + bytes([data[-1] ^ 0xFF]))
                elif behaviour == "notgzip":
                    body = b"<html>mirror moved</html>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if behaviour == "truncated":
                    self.wfile.write(body[:len(body) // 2])
                    return  # the connection closes short of Content-Length
                if behaviour == "stall":
                    self.wfile.write(body[:10])
                    self.wfile.flush()
                    server.release.wait(30)
                    return
                if behaviour == "trickle":
                    for i in range(len(body)):
                        if server.release.wait(TIMEOUT / 5):
                            return
                        try:
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                        except OSError:
                            return
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{behaviour}/"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tiny_dataset_dir: Path) -> Iterator[tuple[Server, DatasetSpec]]:
    """The tiny dataset's four .gz files behind the server, as a dataset spec 'tinydl'."""
    folder = tiny_dataset_dir / "tiny"
    files = {p.name: p.read_bytes() for p in folder.glob("*.gz")}
    probe = DatasetSpec(name="tinydl", description="", sha256={})
    sums = {kind: sha256_hex(gzip.decompress(files[f"{probe.filename(kind)}.gz"]))
            for kind in FILE_KINDS}
    with Server(files) as server:
        spec = DatasetSpec(name="tinydl", description="download test", sha256=sums,
                           mirrors=(server.url("good"),))
        dataset_registry._entries["tinydl"] = spec
        try:
            yield server, spec
        finally:
            dataset_registry._entries.pop("tinydl", None)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_mirrors_tried_in_turn_until_one_serves_the_right_bytes(
        served: tuple[Server, DatasetSpec], tmp_path: Path) -> None:
    server, spec = served
    bad = ("missing", "notgzip", "corrupt", "truncated", "stall", "trickle")
    mirrors = (*(server.url(b) for b in bad), server.url("good"))
    started = time.monotonic()
    dest = tmp_path / "downloads"
    dest.mkdir()
    path = fetch_file(spec, "train_labels", dest, mirrors=mirrors, timeout=TIMEOUT)
    assert time.monotonic() - started < 20  # two slow mirrors, each cut off after ~TIMEOUT
    assert sha256_hex(gzip.decompress(path.read_bytes())) == spec.sha256["train_labels"]
    name = path.name
    assert server.requests == [f"/{b}/{name}" for b in (*bad, "good")]  # in order, each once
    assert _leftovers(dest) == []


@pytest.mark.parametrize("behaviour", ["corrupt", "truncated", "stall", "trickle", "notgzip",
                                       "missing"])
def test_a_failing_mirror_leaves_nothing_under_the_final_name(
        served: tuple[Server, DatasetSpec], tmp_path: Path, behaviour: str) -> None:
    server, spec = served
    dest = tmp_path / "downloads"
    dest.mkdir()
    started = time.monotonic()
    with pytest.raises(VaelabError, match="could not download") as info:
        fetch_file(spec, "test_labels", dest, mirrors=(server.url(behaviour),), timeout=TIMEOUT)
    assert time.monotonic() - started < 10
    assert server.url(behaviour) in str(info.value)
    assert list(dest.iterdir()) == []  # neither the final file nor a partial one


def test_download_dataset_end_to_end_and_repairs_a_corrupt_file(
        served: tuple[Server, DatasetSpec], tmp_path: Path) -> None:
    server, spec = served
    folder = download_dataset("tinydl", tmp_path, timeout=TIMEOUT)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{spec.filename(k)}.gz" for k in FILE_KINDS)
    broken = folder / f"{spec.filename('test_images')}.gz"
    good = broken.read_bytes()
    broken.write_bytes(good[:100])  # a download cut short by a crash, say
    server.requests.clear()
    download_dataset("tinydl", tmp_path, timeout=TIMEOUT)
    assert broken.read_bytes() == good
    assert server.requests == [f"/good/{broken.name}"]  # only the broken file is fetched
    assert _leftovers(folder) == []


def test_download_into_an_unwritable_place_is_a_clear_error(
        served: tuple[Server, DatasetSpec], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(VaelabError, match="--data-dir"):
        download_dataset("tinydl", blocker, timeout=TIMEOUT)
