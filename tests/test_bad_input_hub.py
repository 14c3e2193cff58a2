"""Without the Hub, every call that needs it fails fast with a typed zoo error that fits the situation.

"Unreachable" points huggingface_hub at a closed local port; "offline" sets HF_HUB_OFFLINE. Each
case pins the error type, what the message must and must not say, and that it comes within seconds
(huggingface_hub's retries would otherwise take most of a minute).
"""

from __future__ import annotations

import time

import pytest
from huggingface_hub import constants as hub_constants
from tiny_models import save_tiny_checkpoint

import zoo
from auto_loader import AutoLoader, ModelUnavailableError
from trainers.cli import main
from trainers.publish import PushError, push_to_hub
from zoo.errors import CheckpointNotFoundError

CLOSED_PORT = "http://127.0.0.1:9"
MISSING = "owner/not-in-the-cache"
FAST_S = 5.0


@pytest.fixture
def hub_state(monkeypatch, fresh_hf_cache):
    def set_state(state: str) -> None:
        if state == "unreachable":
            monkeypatch.setattr(hub_constants, "ENDPOINT", CLOSED_PORT)
            template = CLOSED_PORT + "/{repo_id}/resolve/{revision}/{filename}"
            monkeypatch.setattr(hub_constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        else:
            monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)

    return set_state


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_checkpoint("gpt2", tmp_path_factory.mktemp("hub") / "tiny-gpt2")


CASES = [
    # (call, state, error type, the message says, ... and never says)
    ("push", "unreachable", PushError, ["is unreachable", CLOSED_PORT], []),
    ("push", "offline", PushError, ["HF_HUB_OFFLINE", "needs the Hub"], ["HF_HUB_OFFLINE=1"]),
    ("wrap", "unreachable", CheckpointNotFoundError, ["is unreachable", "HF_HUB_OFFLINE=1"], []),
    ("wrap", "offline", CheckpointNotFoundError, ["not in the Hugging Face cache", "hf download"], ["HF_HUB_OFFLINE=1"]),
    ("load", "unreachable", CheckpointNotFoundError, ["is unreachable", "HF_HUB_OFFLINE=1"], []),
    ("load", "offline", CheckpointNotFoundError, ["not in the Hugging Face cache", "hf download"], ["HF_HUB_OFFLINE=1"]),
    ("auto_loader", "unreachable", ModelUnavailableError, ["is unreachable", "HF_HUB_OFFLINE=1"], []),
    ("auto_loader", "offline", ModelUnavailableError, ["not in the Hugging Face cache", "model_dir"], ["HF_HUB_OFFLINE=1"]),
]  # fmt: skip
CALLS = {
    "push": lambda directory: push_to_hub(directory, "owner/name", token="hf_token"),
    "wrap": lambda directory: zoo.wrap(MISSING),
    "load": lambda directory: zoo.load(MISSING),
    "auto_loader": lambda directory: AutoLoader("lm", MISSING),
}


@pytest.mark.parametrize(("call", "state", "error_type", "says", "never_says"), CASES)
def test_no_hub_is_a_fast_typed_error(model_dir, hub_state, call, state, error_type, says, never_says):
    hub_state(state)
    start = time.monotonic()
    with pytest.raises(Exception) as error:
        CALLS[call](model_dir)
    elapsed = time.monotonic() - start
    assert type(error.value) is error_type, f"{type(error.value).__name__}: {error.value}"
    message = str(error.value)
    for text in says:
        assert text in message, message
    for text in never_says:
        assert text not in message, message
    assert elapsed < FAST_S, f"{elapsed:.1f} s"


@pytest.mark.parametrize("state", ["unreachable", "offline"])
def test_cli_push_without_the_hub_prints_one_line(model_dir, hub_state, state, capsys):
    hub_state(state)
    start = time.monotonic()
    assert main(["push", str(model_dir), "owner/name", "--token", "hf_token"]) == 1
    assert time.monotonic() - start < FAST_S
    err = capsys.readouterr().err.strip()
    assert err.startswith("zoo: error: ") and "\n" not in err and "Traceback" not in err, err


def test_a_cached_model_still_wraps_offline_and_unreachable(model_dir, hub_token, new_repo_id, hub_state):
    push_to_hub(model_dir, new_repo_id, token=hub_token)
    online = zoo.wrap(new_repo_id)  # fills the (fresh) cache
    assert online.model_name == new_repo_id
    for state in ("unreachable", "offline"):  # offline last: it adds to the closed port
        hub_state(state)
        start = time.monotonic()
        again = zoo.wrap(new_repo_id)
        assert time.monotonic() - start < FAST_S
        assert again.generate("the cat", max_new_tokens=4) == online.generate("the cat", max_new_tokens=4)
