"""Hub push and pull through the REAL huggingface_hub client and transformers, against tests/hub_server.py."""

from __future__ import annotations

import os
from pathlib import Path

import httpx2
import pytest
import torch
import transformers
from huggingface_hub import (
    HfApi,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from reference_models import padded_batch, tiny_reference

import zoo

BIG = "data/big.bin"  # > 10 MB: goes through LFS whatever its name
BIG_SIZE = 10 * 1024 * 1024 + 12345


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(**padded_batch(0)).logits


def _files(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and ".cache" not in p.parts
    }


@pytest.fixture(scope="module")
def uploaded(hub_server, hub_token, tmp_path_factory):
    """A repository holding a tiny GPT-2 checkpoint plus one file over 10 MB, pushed with upload_folder."""
    folder = tmp_path_factory.mktemp("upload")
    model = tiny_reference("gpt2")
    model.save_pretrained(folder)
    (folder / "data").mkdir()
    (folder / BIG).write_bytes(os.urandom(BIG_SIZE))
    api = HfApi(token=hub_token)
    repo_id = api.create_repo("uploaded-gpt2").repo_id
    commit = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="tiny gpt2")
    return {"repo_id": repo_id, "folder": folder, "model": model, "commit": commit.oid}


def test_whoami_and_create_repo(hub_server, hub_token, new_repo_id):
    api = HfApi(token=hub_token)
    me = api.whoami()
    assert me["name"] == hub_server.user and me["auth"]["accessToken"]["role"] == "write"
    assert HfApi(token=hub_server.read_token).whoami()["auth"]["accessToken"]["role"] == "read"
    url = api.create_repo(new_repo_id)
    assert url.repo_id == new_repo_id and url.startswith(hub_server.endpoint)
    assert api.create_repo(new_repo_id, exist_ok=True).repo_id == new_repo_id  # the 409 is accepted
    with pytest.raises(HfHubHTTPError) as info:
        api.create_repo(new_repo_id)
    assert info.value.response.status_code == 409
    # A new repository already has the Hub's initial commit, with .gitattributes.
    commits = api.list_repo_commits(new_repo_id)
    assert len(commits) == 1 and len(commits[0].commit_id) == 40
    assert api.list_repo_files(new_repo_id) == [".gitattributes"]


def test_upload_folder_then_snapshot_download_is_byte_identical(hub_server, uploaded, fresh_hf_cache):
    repo_id, folder = uploaded["repo_id"], uploaded["folder"]
    # The large file and the weights went through LFS (batch + PUT of raw bytes), the JSON files did not.
    files = hub_server.repos[("model", repo_id)].commits[uploaded["commit"]].files
    assert files[BIG].lfs and files["model.safetensors"].lfs and files["config.json"].lfs is None
    snapshot = Path(snapshot_download(repo_id))
    assert snapshot.is_relative_to(fresh_hf_cache) and snapshot.name == uploaded["commit"]
    downloaded = _files(snapshot)
    assert downloaded.pop(".gitattributes")
    assert downloaded == _files(folder)
    # The tree listing and the file metadata carry what the client checks downloads against.
    api = HfApi()
    tree = {f.path: f for f in api.list_repo_tree(repo_id, recursive=True) if hasattr(f, "size")}
    assert tree[BIG].size == BIG_SIZE and tree[BIG].lfs.sha256 == files[BIG].lfs
    meta = get_hf_file_metadata(hf_hub_url(repo_id, BIG))
    assert (meta.etag, meta.size, meta.commit_hash) == (files[BIG].lfs, BIG_SIZE, uploaded["commit"])
    config_meta = get_hf_file_metadata(hf_hub_url(repo_id, "config.json"))
    assert config_meta.etag == files["config.json"].oid  # git blob sha1 for regular files


def test_range_requests_answer_206(hub_server, uploaded):
    url = hf_hub_url(uploaded["repo_id"], BIG)
    expected = (uploaded["folder"] / BIG).read_bytes()
    partial = httpx2.get(url, headers={"Range": "bytes=100-199"})
    assert partial.status_code == 206 and partial.content == expected[100:200]
    assert partial.headers["Content-Range"] == f"bytes 100-199/{BIG_SIZE}"
    assert httpx2.get(url, headers={"Range": f"bytes={BIG_SIZE}-"}).status_code == 416


def test_from_pretrained_by_hub_id_gives_identical_logits(uploaded, fresh_hf_cache):
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(uploaded["repo_id"])
    assert type(reloaded) is transformers.GPT2LMHeadModel
    assert torch.equal(_logits(reloaded), _logits(uploaded["model"]))
    # The zoo's own loader (resolve_checkpoint -> snapshot_download) fetches only what a model needs.
    native = zoo.GPT2ForCausalLM.from_pretrained(uploaded["repo_id"])
    assert (_logits(native) - _logits(uploaded["model"])).abs().max().item() <= 1e-5
    assert not list(fresh_hf_cache.rglob("big.bin"))


def test_offline_process_loads_from_the_cache(hub_server, uploaded, fresh_hf_cache, run_offline, monkeypatch):
    repo_id = uploaded["repo_id"]
    transformers.AutoModelForCausalLM.from_pretrained(repo_id)  # fills the cache
    requests_before = len(hub_server.log)
    code = (
        "import torch, transformers\n"
        "from reference_models import padded_batch\n"
        f"model = transformers.AutoModelForCausalLM.from_pretrained({repo_id!r})\n"
        "with torch.no_grad():\n"
        "    torch.save(model(**padded_batch(0)).logits, 'logits.pt')\n"
    )
    result = run_offline(f"import os; os.chdir({str(fresh_hf_cache)!r})\n" + code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert torch.equal(torch.load(fresh_hf_cache / "logits.pt"), _logits(uploaded["model"]))
    assert len(hub_server.log) == requests_before  # nothing reached the server
    # Offline with an empty cache is a clear error, not a download (checked in-process: a second
    # interpreter costs seconds).
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match="offline"):
        transformers.AutoConfig.from_pretrained(repo_id, cache_dir=fresh_hf_cache / "empty")
    assert len(hub_server.log) == requests_before


def test_push_to_hub_pinned_revision_and_no_change_push(hub_server, hub_token, new_repo_id, fresh_hf_cache):
    api = HfApi(token=hub_token)
    model = tiny_reference("gpt2")
    first = model.push_to_hub(new_repo_id, token=hub_token, commit_message="first weights")
    assert {"config.json", "model.safetensors", "README.md"} <= set(api.list_repo_files(new_repo_id))
    commits = api.list_repo_commits(new_repo_id)
    assert [c.title for c in commits] == ["first weights", "initial commit"]
    assert commits[0].commit_id == first.oid == hub_server.head(new_repo_id)

    # Pushing the same model again uploads nothing and makes no commit.
    log_start = len(hub_server.log)
    again = model.push_to_hub(new_repo_id, token=hub_token, commit_message="same weights")
    assert again.oid == first.oid and len(api.list_repo_commits(new_repo_id)) == 2
    writes = [e.path for e in hub_server.log[log_start:] if "/_lfs/" in e.path or "/commit/" in e.path]
    assert writes == []

    # New weights make a new commit; the old commit id still downloads the old weights.
    old_logits = _logits(model)
    with torch.no_grad():
        model.lm_head.weight.mul_(2.0)
    second = model.push_to_hub(new_repo_id, token=hub_token, commit_message="second weights")
    assert second.oid != first.oid and len(api.list_repo_commits(new_repo_id)) == 3
    pinned = transformers.AutoModelForCausalLM.from_pretrained(new_repo_id, revision=first.oid)
    latest = transformers.AutoModelForCausalLM.from_pretrained(new_repo_id)
    assert torch.equal(_logits(pinned), old_logits)
    assert torch.equal(_logits(latest), _logits(model)) and not torch.equal(_logits(latest), old_logits)


@pytest.mark.parametrize("which", ["none", "bad", "read-only"])
def test_missing_bad_or_read_only_token_is_refused_before_any_upload(hub_server, uploaded, tmp_path, which):
    repo_id = uploaded["repo_id"]
    token = {"none": None, "bad": "hf_not_a_real_token_0123456789", "read-only": hub_server.read_token}[which]
    (tmp_path / "weights.bin").write_bytes(os.urandom(1024))
    head, log_start = hub_server.head(repo_id), len(hub_server.log)
    with pytest.raises(HfHubHTTPError) as info:
        HfApi(token=token).upload_folder(repo_id=repo_id, folder_path=tmp_path)
    status = info.value.response.status_code
    assert status == (403 if which == "read-only" else 401)
    requests = hub_server.log[log_start:]
    assert [e.path for e in requests if "/lfs/" in e.path or "/_lfs/" in e.path or "/commit/" in e.path] == []
    assert hub_server.head(repo_id) == head
    with pytest.raises(HfHubHTTPError):
        HfApi(token=token).create_repo(f"{hub_server.user}/never-{which}")
    assert ("model", f"{hub_server.user}/never-{which}") not in hub_server.repos
    for secret in (hub_server.token, hub_server.read_token, "hf_not_a_real_token"):
        assert secret not in str(info.value) and secret not in repr(hub_server.log)


def test_unknown_repo_revision_and_file_raise_typed_errors(hub_server, uploaded, fresh_hf_cache):
    repo_id = uploaded["repo_id"]
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(f"{hub_server.user}/no-such-repo", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download(f"{hub_server.user}/no-such-repo")
    with pytest.raises(RepositoryNotFoundError):  # no namespace
        hf_hub_download("no-such-canonical-repo", "config.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "config.json", revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(repo_id, revision="0" * 40)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "no-such-file.json")
    with pytest.raises(zoo.CheckpointNotFoundError, match="neither a local directory nor a Hub repository"):
        zoo.GPT2ForCausalLM.from_pretrained(f"{hub_server.user}/no-such-repo")
    statuses = {e.status for e in hub_server.log if "no-such" in e.path or "0" * 40 in e.path}
    assert statuses == {404}


def test_interrupted_download_resumes_with_a_range_request(hub_server, uploaded, fresh_hf_cache):
    repo_id = uploaded["repo_id"]
    # The client writes in 10 MB chunks: cut after the first one so that something is kept to resume from.
    hub_server.interrupt(repo_id, BIG, after_bytes=10 * 1024 * 1024 + 100)
    log_start = len(hub_server.log)
    path = hf_hub_download(repo_id, BIG)
    assert Path(path).read_bytes() == (uploaded["folder"] / BIG).read_bytes()
    gets = [e.status for e in hub_server.log[log_start:] if e.method == "GET" and e.path.endswith(BIG)]
    assert gets == [200, 206]  # the second request asked only for the rest


def test_download_that_keeps_failing_never_leaves_a_complete_looking_file(
    hub_server, uploaded, fresh_hf_cache, monkeypatch
):
    repo_id = uploaded["repo_id"]
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # the client waits 1 s between retries
    # The first GET delivers one 10 MB chunk of the file, every retry after it dies before any byte.
    hub_server.interrupt(repo_id, BIG, after_bytes=10 * 1024 * 1024 + 100)
    hub_server.interrupt(repo_id, BIG, after_bytes=0, times=10)
    with pytest.raises(httpx2.TransportError):
        hf_hub_download(repo_id, BIG)
    # huggingface_hub 2.x drops its per-call temporary file: no blob, partial or whole, and no snapshot entry.
    assert not [p for p in fresh_hf_cache.rglob("*") if p.is_file() and p.parent.name in ("blobs", "data")]
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(repo_id, BIG, local_files_only=True)
    hub_server.clear_interruptions()
    path = hf_hub_download(repo_id, BIG)
    assert Path(path).read_bytes() == (uploaded["folder"] / BIG).read_bytes()


def test_interrupted_weights_never_load_as_a_model(hub_server, uploaded, fresh_hf_cache, monkeypatch):
    repo_id = uploaded["repo_id"]
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    hub_server.interrupt(repo_id, "model.safetensors", after_bytes=1000, times=10)
    # A connection dropped mid-file (httpx2's TransportError) is reported like an unreachable Hub.
    with pytest.raises(zoo.CheckpointNotFoundError, match="unreachable"):
        zoo.GPT2ForCausalLM.from_pretrained(repo_id)
    assert not list(fresh_hf_cache.rglob("snapshots/*/model.safetensors"))
    hub_server.clear_interruptions()
    model = zoo.GPT2ForCausalLM.from_pretrained(repo_id)
    assert (_logits(model) - _logits(uploaded["model"])).abs().max().item() <= 1e-5
