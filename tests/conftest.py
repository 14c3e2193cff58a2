"""Suite-wide setup: one local Hub-protocol server (tests/hub_server.py) for every test.

huggingface_hub reads HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_DISABLE_XET and HF_HOME once, when it is
imported. pytest imports this file before any test module, so the server is started and the variables
are set here, at import time. Should something have imported huggingface_hub earlier (a plugin), the
same values are patched into ``huggingface_hub.constants`` instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
from hub_server import HubServer

HUB = HubServer().start()
atexit.register(HUB.stop)
_HF_HOME = Path(tempfile.mkdtemp(prefix="zoo-hf-home-"))
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)

# Nothing of the developer's own setup leaks in: no stored or environment token, no offline switch.
for _name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_CACHE", "TRANSFORMERS_CACHE"):
    os.environ.pop(_name, None)
os.environ.update(
    HF_ENDPOINT=HUB.endpoint,
    HF_HOME=str(_HF_HOME),
    HF_HUB_DISABLE_XET="1",  # with Xet on, uploads ask for a xet write token and fail
    HF_HUB_OFFLINE="0",
    TRANSFORMERS_OFFLINE="0",
    HF_HUB_DISABLE_TELEMETRY="1",
)


def _patch_already_imported_client() -> None:
    """The fallback for a huggingface_hub imported before this file: patch what it read at import."""
    if "huggingface_hub" not in sys.modules:
        return
    from huggingface_hub import constants, hf_api

    constants.ENDPOINT = HUB.endpoint
    constants.HUGGINGFACE_CO_URL_TEMPLATE = HUB.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    constants.HF_HUB_DISABLE_XET = True
    constants.HF_HUB_OFFLINE = False
    constants.HF_HOME = str(_HF_HOME)
    constants.HF_HUB_CACHE = str(_HF_HOME / "hub")
    constants.HF_TOKEN_PATH = str(_HF_HOME / "token")
    hf_api.api.endpoint = HUB.endpoint  # the module-level HfApi behind huggingface_hub.upload_folder & co


_patch_already_imported_client()


@pytest.fixture(scope="session")
def hub_server() -> HubServer:
    """The suite's Hub server: ``.endpoint``, ``.token`` (write), ``.read_token``, ``.user``, ``.log``,
    ``.repos``, ``.head(repo_id)``, ``.interrupt(repo_id, path, after_bytes)``. Repositories live for the
    whole session, so give each test its own (see ``new_repo_id``)."""
    from huggingface_hub import constants

    assert HUB.endpoint == constants.ENDPOINT, "huggingface_hub does not point at the test server"
    return HUB


@pytest.fixture(scope="session")
def hub_token(hub_server) -> str:
    """A token with write permission on the test server (never stored in HF_HOME: pass it explicitly)."""
    return hub_server.token


@pytest.fixture
def new_repo_id(hub_server) -> str:
    """A repository id in the token owner's namespace that no other test uses (not created yet)."""
    return f"{hub_server.user}/test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def fresh_hf_cache(tmp_path, monkeypatch) -> Path:
    """An empty HF_HUB_CACHE for this test: snapshot_download, hf_hub_download and transformers'
    from_pretrained write there, and subprocesses (``run_offline``) inherit it through the environment."""
    from huggingface_hub import constants
    from huggingface_hub.utils import _cache_manager

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def run_offline():
    """``run_offline(code, cache=None)`` runs ``python -c code`` with HF_HUB_OFFLINE=1 and the given (default:
    the current) HF_HUB_CACHE; returns the CompletedProcess (text, stdout and stderr captured)."""

    def run(code: str, cache: str | os.PathLike | None = None, timeout: float = 120):
        from huggingface_hub import constants

        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache or constants.HF_HUB_CACHE)}
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
        )

    return run


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny models: on tensors this small, synchronising threads
    costs more than they compute (several times the run on a busy 2-core machine). A module opts in
    with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
