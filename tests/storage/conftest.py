"""Fixtures for the storage tests: a real S3-protocol server (moto) and one root folder per file system."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
import pytest


@dataclass(frozen=True)
class S3Server:
    """A running moto server with one bucket."""

    endpoint_url: str
    bucket: str
    storage_options: dict[str, Any]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {process.returncode} before answering on {url}.")
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1.0):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer on {url} within {timeout_s} s.")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """Start `moto_server` on a free loopback port, create a bucket, yield the endpoint, stop the server."""
    pytest.importorskip("moto", reason="moto[server] is not installed: pip install 'moto[server]' to run S3 tests")
    pytest.importorskip("s3fs", reason="s3fs is not installed: pip install ctrflow[s3] to run S3 tests")
    port = _free_port()
    executable = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")
    command = [executable, "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(endpoint, process)
        options = {"key": "testing", "secret": "testing", "endpoint_url": endpoint,
                   "client_kwargs": {"region_name": "eu-west-1"}}  # fmt: skip
        bucket = "ctrflow-test"
        fs = fsspec.filesystem("s3", **options)
        fs.mkdir(bucket)
        yield S3Server(endpoint_url=endpoint, bucket=bucket, storage_options=options)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Root:
    """A fresh folder on one file system, as a URL, with the options its functions need."""

    url: str
    storage_options: dict[str, Any] | None

    def join(self, *names: str) -> str:
        return "/".join([self.url.rstrip("/"), *names])


@pytest.fixture(params=["local", "memory", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Root]:
    """The same test on the local disk, on `memory://` and on S3 (moto)."""
    unique = uuid.uuid4().hex[:10]
    if request.param == "local":
        yield Root(str(tmp_path / "root"), None)
    elif request.param == "memory":
        yield Root(f"memory://ctrflow-tests/{unique}", None)
        fs = fsspec.filesystem("memory")
        if fs.exists(f"/ctrflow-tests/{unique}"):
            fs.rm(f"/ctrflow-tests/{unique}", recursive=True)
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        yield Root(f"s3://{server.bucket}/{unique}", server.storage_options)
