"""A small Hugging Face Hub-protocol server for tests (stdlib only).

It speaks enough of the Hub's HTTP API for the real ``huggingface_hub`` client (and transformers on top
of it) to create repositories, upload files (regular and LFS), commit, list, and download them, with
git-like history: every commit has a 40-hex id, branches point at commits, and older commits stay
downloadable by id. See /work/shared/docs/HUB_PROTOCOL.md for what the client needs.

Like the Hub, a commit whose files did not change still makes a new commit; it is the client that
skips unchanged files (the preupload answer carries each existing file's oid) and empty commits.
Not implemented: pull requests, branches other than those made by commits to ``main``, tags, LFS
multipart and Xet transfers (run the client with HF_HUB_DISABLE_XET=1), gated repos, pagination.

Usage::

    server = HubServer().start()
    os.environ["HF_ENDPOINT"] = server.endpoint  # before huggingface_hub is imported
    ...
    server.log        # [LogEntry(method, path, status), ...]; tokens are never logged
    server.interrupt("ns/name", "model.safetensors", after_bytes=1000)  # next GET is cut short
    server.stop()
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub stores files of 10 MB and more in LFS
# Suffixes that the Hub's default .gitattributes sends to LFS whatever their size.
LFS_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".npy", ".npz")
LFS_SUFFIXES += (".pkl", ".pickle", ".gz", ".zip", ".tar", ".7z", ".model", ".tflite", ".ot", ".arrow")
GITATTRIBUTES = "".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES
).encode()
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
NAME = r"[\w.-]+/[\w.-]+"


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a blob holding ``data`` (what the Hub reports as a regular file's oid and ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class Entry:
    """One file of a commit's tree. ``lfs`` is the sha256 of the content for LFS files, else None."""

    data: bytes
    lfs: str | None = None

    @property
    def oid(self) -> str:  # git blob id: of the content, or of the pointer file for LFS
        return git_blob_sha1(lfs_pointer(self.lfs, len(self.data)) if self.lfs else self.data)

    @property
    def etag(self) -> str:
        return self.lfs or self.oid


@dataclass
class Commit:
    sha: str
    parent: str | None
    files: dict[str, Entry]
    title: str
    message: str
    author: str
    date: str


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    lfs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> content, uploaded but maybe uncommitted

    def resolve(self, revision: str) -> Commit | None:
        sha = self.branches.get(revision.removeprefix("refs/heads/"), revision)
        return self.commits.get(sha)

    def history(self, sha: str) -> list[Commit]:
        chain = []
        while sha is not None:
            chain.append(self.commits[sha])
            sha = self.commits[sha].parent
        return chain


class LogEntry(NamedTuple):
    method: str
    path: str
    status: int


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubServer:
    """In-memory Hub. ``token`` may write, ``read_token`` may only read; both belong to ``user``."""

    def __init__(self, user: str = "zoo-tester", token: str | None = None, read_token: str | None = None):
        self.user = user
        self.token = token or "hf_write_" + secrets.token_hex(16)
        self.read_token = read_token or "hf_read_" + secrets.token_hex(16)
        self.tokens = {self.token: "write", self.read_token: "read"}
        self.repos: dict[tuple[str, str], Repo] = {}
        self.log: list[LogEntry] = []
        self.lock = threading.RLock()
        self._uploads: dict[str, tuple[Repo, str, int]] = {}  # LFS upload ticket -> (repo, sha256, size)
        # (repo_id, path) -> how many body bytes each of the next GETs sends before hanging up
        self._interruptions: dict[tuple[str, str], list[int]] = {}
        self._counter = 0
        self.httpd: ThreadingHTTPServer | None = None

    # ----- lifecycle ---------------------------------------------------------------------------------
    def start(self, port: int = 0) -> HubServer:
        handler = type("Handler", (_Handler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, name="hub-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    @property
    def endpoint(self) -> str:
        assert self.httpd is not None, "server not started"
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    # ----- helpers for tests -------------------------------------------------------------------------
    def interrupt(self, repo_id: str, path: str, after_bytes: int, times: int = 1) -> None:
        """The next ``times`` GETs of ``path`` send ``after_bytes`` bytes of the body, then drop the connection."""
        with self.lock:
            self._interruptions.setdefault((repo_id, path), []).extend([after_bytes] * times)

    def clear_interruptions(self) -> None:
        with self.lock:
            self._interruptions.clear()

    def requests(self, method: str | None = None, contains: str = "") -> list[LogEntry]:
        """The logged requests with this method (any if None) whose path contains ``contains``."""
        return [e for e in list(self.log) if (method is None or e.method == method) and contains in e.path]

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        repo = self.repos[(repo_type, repo_id)]
        return repo.resolve(revision).sha

    def create_repo(self, repo_id: str, repo_type: str = "model", private: bool = False) -> Repo:
        """Creates a repository whose first commit holds ``.gitattributes``, as the Hub does."""
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo", "RepoExists")
            repo = Repo(repo_id, repo_type, private)
            self._commit(
                repo, "main", {".gitattributes": Entry(GITATTRIBUTES)}, "initial commit", "", "system"
            )
            self.repos[(repo_type, repo_id)] = repo
            return repo

    def _commit(self, repo: Repo, branch: str, files: dict, title: str, message: str, author: str) -> Commit:
        parent = repo.branches.get(branch)
        self._counter += 1
        date = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        tree = "".join(f"{path}\0{entry.oid}\n" for path, entry in sorted(files.items()))
        content = f"tree {hashlib.sha1(tree.encode()).hexdigest()}\nparent {parent}\nauthor {author} {date}"
        sha = hashlib.sha1(f"{content} {self._counter}\n\n{title}\n\n{message}".encode()).hexdigest()
        repo.commits[sha] = Commit(sha, parent, dict(files), title, message, author, date)
        repo.branches[branch] = sha
        return repo.commits[sha]


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    server_version = "ZooHub/0.1"

    def log_message(self, format, *args):  # silence stderr; requests go to hub.log instead
        pass

    # ----- plumbing ----------------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def _dispatch(self):
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        self.status = 500
        try:
            self._body = self._read_body()
            self._route(url.path)
        except HubError as error:
            self._error(error)
        except Exception as error:  # a bug here should reach the test as a 500, not a hang
            self._error(HubError(500, f"{type(error).__name__}: {error}"))
        finally:
            with self.hub.lock:
                self.hub.log.append(LogEntry(self.command, url.path, self.status))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0].strip(), 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json_body(self):
        try:
            return json.loads(self._body or b"{}")
        except json.JSONDecodeError:
            raise HubError(400, "request body is not valid JSON") from None

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, length: int | None = None):
        self.status = status
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data, status: int = 200, headers: dict | None = None):
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, error: HubError):
        headers = {"X-Error-Message": error.message}
        if error.code:
            headers["X-Error-Code"] = error.code
        self._json({"error": error.message}, error.status, headers)

    # ----- auth --------------------------------------------------------------------------------------
    def _role(self) -> str | None:
        """The caller's role: None without a token, 'read' or 'write'; an unknown token is a 401."""
        header = self.headers.get("Authorization")
        if not header:
            return None
        token = header.removeprefix("Bearer ").strip()
        if token not in self.hub.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.hub.tokens[token]

    def _require_write(self) -> None:
        role = self._role()
        if role is None:
            raise HubError(401, "You must be authenticated to perform this action")
        if role != "write":
            raise HubError(403, "You don't have the rights to write with this token (read-only)")

    def _repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        if write:
            self._require_write()
        role = self._role()
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and role is None):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    @staticmethod
    def _commit_at(repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(unquote(revision))
        if commit is None:
            raise HubError(404, f"Invalid rev id: {unquote(revision)}", "RevisionNotFound")
        return commit

    # ----- routing -----------------------------------------------------------------------------------
    def _route(self, path: str):
        method = self.command
        api = re.fullmatch(rf"/api/(models|datasets|spaces)/({NAME})(?:/(.*))?", path)
        if method == "GET" and path == "/api/whoami-v2":
            return self._whoami()
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo()
        if method == "POST" and path == "/api/validate-yaml":
            return self._json({"errors": [], "warnings": []})
        if method == "PUT" and (m := re.fullmatch(r"/_lfs/upload/(\w+)", path)):
            return self._lfs_put(m[1])
        if m := re.fullmatch(rf"/(?:(datasets|spaces)/)?({NAME})\.git/info/lfs/objects/batch", path):
            return self._lfs_batch(REPO_TYPES.get(m[1] or "models"), m[2])
        m = re.fullmatch(rf"/(?:(datasets|spaces)/)?({NAME})/resolve/([^/]+)/(.+)", path)
        if m and method in ("GET", "HEAD"):
            return self._resolve(REPO_TYPES.get(m[1] or "models"), m[2], m[3], unquote(m[4]))
        if api:
            repo_type, repo_id, rest = REPO_TYPES[api[1]], api[2], api[3] or ""
            if method == "GET" and (rest == "" or rest.startswith("revision/")):
                return self._info(repo_type, repo_id, rest.removeprefix("revision/") or "main")
            if method == "GET" and (m := re.fullmatch(r"tree/([^/]+)(?:/(.*))?", rest)):
                return self._tree(repo_type, repo_id, m[1], unquote(m[2] or ""))
            if method == "GET" and (m := re.fullmatch(r"commits/([^/]+)", rest)):
                return self._commits(repo_type, repo_id, m[1])
            if method == "POST" and (m := re.fullmatch(r"preupload/([^/]+)", rest)):
                return self._preupload(repo_type, repo_id, m[1])
            if method == "POST" and (m := re.fullmatch(r"commit/([^/]+)", rest)):
                return self._commit(repo_type, repo_id, m[1])
        if "/resolve/" in path or re.match(r"/api/(models|datasets|spaces)/", path):
            raise HubError(404, "Repository not found (repo ids need a namespace)", "RepoNotFound")
        raise HubError(404, f"no route for {method} {path}")

    # ----- endpoints ---------------------------------------------------------------------------------
    def _whoami(self):
        role = self._role()
        if role is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        token = {"displayName": f"{role} token", "role": role}
        self._json({"type": "user", "name": self.hub.user, "fullname": self.hub.user, "orgs": [],
                    "auth": {"type": "access_token", "accessToken": token}})  # fmt: skip

    def _create_repo(self):
        self._require_write()
        body = self._json_body()
        name, repo_type = body.get("name"), body.get("type") or "model"
        if not name or "/" in name or not re.fullmatch(r"[\w.-]+", name):
            raise HubError(400, f"invalid repository name {name!r}")
        repo_id = f"{body.get('organization') or self.hub.user}/{name}"
        url = f"{self.hub.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"
        private = body.get("private") or body.get("visibility") == "private"
        try:
            self.hub.create_repo(repo_id, repo_type, private=bool(private))
        except HubError as error:  # the client reads "url" from a 409 answer too
            self._json({"error": error.message, "url": url}, 409, {"X-Error-Message": error.message})
            return
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def _info(self, repo_type: str, repo_id: str, revision: str):
        repo = self._repo(repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        with_blobs = self.query.get("blobs", [""])[0].lower() == "true"
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling = {"rfilename": path}
            if with_blobs:
                sibling.update(size=len(entry.data), blobId=entry.oid)
                if entry.lfs:
                    sibling["lfs"] = {"sha256": entry.lfs, "size": len(entry.data), "pointerSize": 134}
            siblings.append(sibling)
        self._json({"_id": repo_id, "id": repo_id, "modelId": repo_id, "author": repo_id.split("/")[0],
                    "sha": commit.sha, "lastModified": commit.date, "private": repo.private, "disabled": False,
                    "gated": False, "downloads": 0, "likes": 0, "tags": [], "siblings": siblings})  # fmt: skip

    def _tree(self, repo_type: str, repo_id: str, revision: str, folder: str):
        repo = self._repo(repo_type, repo_id)
        files = self._commit_at(repo, revision).files
        recursive = self.query.get("recursive", [""])[0].lower() == "true"
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in files):
            raise HubError(404, f"{folder} does not exist in the repository", "EntryNotFound")
        entries: dict[str, dict] = {}
        for path, entry in sorted(files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            for depth in range(1, len(parts)):  # the folders on the way
                folder_path = prefix + "/".join(parts[:depth])
                entries.setdefault(
                    folder_path, {"type": "directory", "oid": "0" * 40, "size": 0, "path": folder_path}
                )
                if not recursive:
                    break
            if len(parts) == 1 or recursive:
                item = {"type": "file", "oid": entry.oid, "size": len(entry.data), "path": path}
                if entry.lfs:
                    pointer_size = len(lfs_pointer(entry.lfs, len(entry.data)))
                    item["lfs"] = {"oid": entry.lfs, "size": len(entry.data), "pointerSize": pointer_size}
                entries[path] = item
        self._json(list(entries.values()))

    def _commits(self, repo_type: str, repo_id: str, revision: str):
        repo = self._repo(repo_type, repo_id)
        history = repo.history(self._commit_at(repo, revision).sha)
        self._json([{"id": c.sha, "title": c.title, "message": c.message, "date": c.date,
                     "authors": [{"user": c.author}]} for c in history])  # fmt: skip

    def _preupload(self, repo_type: str, repo_id: str, revision: str):
        repo = self._repo(repo_type, repo_id, write=True)
        current = repo.resolve(unquote(revision))
        files = []
        for item in self._json_body().get("files", []):
            sample = base64.b64decode(item.get("sample", ""))
            size, path = int(item.get("size", 0)), item["path"]
            lfs = size >= LFS_THRESHOLD or path.endswith(LFS_SUFFIXES) or b"\0" in sample
            answer = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
            if current is not None and path in current.files:  # lets the client skip unchanged files
                entry = current.files[path]
                answer["oid"] = entry.lfs if lfs else git_blob_sha1(entry.data)
            files.append(answer)
        self._json({"files": files, "commitOid": current.sha if current else None})

    def _lfs_batch(self, repo_type: str, repo_id: str):
        repo = self._repo(repo_type, repo_id, write=True)
        body = self._json_body()
        if body.get("operation") != "upload":
            raise HubError(400, "only the upload operation is supported")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            answer = {"oid": oid, "size": size, "authenticated": True}
            if oid not in repo.lfs:  # no "actions": the object is stored already
                ticket = secrets.token_hex(16)
                with self.hub.lock:
                    self.hub._uploads[ticket] = (repo, oid, size)
                answer["actions"] = {"upload": {"href": f"{self.hub.endpoint}/_lfs/upload/{ticket}"}}
            objects.append(answer)
        self._json(
            {"transfer": "basic", "objects": objects},
            headers={"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _lfs_put(self, ticket: str):
        with self.hub.lock:
            upload = self.hub._uploads.pop(ticket, None)
        if upload is None:
            raise HubError(403, "unknown or used upload ticket")
        repo, oid, size = upload
        if len(self._body) != size or hashlib.sha256(self._body).hexdigest() != oid:
            raise HubError(400, f"uploaded content does not match oid {oid} and size {size}")
        with self.hub.lock:
            repo.lfs[oid] = self._body
        self._send(200, b"", {"ETag": f'"{oid}"'})

    def _commit(self, repo_type: str, repo_id: str, revision: str):
        repo = self._repo(repo_type, repo_id, write=True)
        branch = unquote(revision).removeprefix("refs/heads/")
        if "create_pr" in self.query:
            raise HubError(400, "pull requests are not supported by the test server")
        if branch not in repo.branches:
            raise HubError(
                400 if branch in repo.commits else 404, f"Invalid rev id: {branch}", "RevisionNotFound"
            )
        lines = [json.loads(line) for line in self._body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "a commit starts with a header line")
        header = lines[0]["value"]
        with self.hub.lock:
            head = repo.commits[repo.branches[branch]]
            parent = header.get("parentCommit")
            if parent and parent != head.sha:
                raise HubError(412, f"A commit has happened since {parent}: {branch} is at {head.sha}")
            files = dict(head.files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                path = value.get("path", "")
                if key == "file":
                    files[path] = Entry(base64.b64decode(value["content"]))
                elif key == "lfsFile":
                    if value["oid"] not in repo.lfs:
                        raise HubError(422, f"LFS object {value['oid']} of {path} was never uploaded")
                    files[path] = Entry(repo.lfs[value["oid"]], lfs=value["oid"])
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = path.rstrip("/") + "/"
                    files = {p: e for p, e in files.items() if not p.startswith(prefix)}
                else:
                    raise HubError(400, f"unsupported commit operation {key!r}")
            commit = self.hub._commit(
                repo, branch, files, header.get("summary", ""), header.get("description", ""), self.hub.user
            )
        url = f"{self.hub.endpoint}/{URL_PREFIX[repo_type]}{repo_id}/commit/{commit.sha}"
        self._json({"success": True, "commitOid": commit.sha, "commitUrl": url, "pullRequestUrl": None})

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str):
        repo = self._repo(repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        size = len(entry.data)
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        headers.update({"X-Repo-Commit": commit.sha, "ETag": f'"{entry.etag}"'})
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.lfs}"', "X-Linked-Size": size})
        start, end, status = 0, size - 1, 200
        if (wanted := self.headers.get("Range")) is not None:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())
            if m is None or (m[1] == "" and m[2] == ""):
                raise HubError(416, f"bad range {wanted!r}")
            if m[1] == "":  # suffix range: the last N bytes
                start = max(size - int(m[2]), 0)
            else:
                start, end = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
            if start >= size or start > end:
                self._send(416, b"", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        body = entry.data[start : end + 1]
        cut = None
        if self.command == "GET":
            with self.hub.lock:
                pending = self.hub._interruptions.get((repo_id, path))
                if pending:
                    cut = pending.pop(0)
        if cut is None:
            self._send(status, body, headers)
            return
        # Promise the whole body, send only part of it, then hang up.
        self._send(status, body[:cut], headers, length=len(body))
        self.wfile.flush()
        self.close_connection = True
