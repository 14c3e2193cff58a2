"""trainers.publish: push to the local Hub-protocol server (tests/hub_server.py), pull back, compare logits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard, ModelCardData, snapshot_download
from tiny_models import bpe_tokenizer, save_tiny_checkpoint, tiny_pretrained_model

import zoo
from auto_loader import CATALOG, AutoLoader
from trainers.publish import CardValidationError, PushError, push_to_hub, validate_card

MODEL_CARDS = Path(__file__).resolve().parent.parent / "model_cards"
UPLOAD_PATHS = ("lfs/objects/batch", "/_lfs/upload", "/preupload/", "/commit/", "/api/repos/create")


def _uploads(hub_server, start: int) -> list:
    return [e for e in hub_server.log[start:] if any(p in e.path for p in UPLOAD_PATHS)]


def _commits(repo_id: str, token: str) -> int:
    return len(HfApi(token=token).list_repo_commits(repo_id))


def test_push_directory_pull_back_identical_and_repush_makes_no_commit(
    tmp_path, hub_server, hub_token, new_repo_id, fresh_hf_cache
):
    directory = save_tiny_checkpoint("bert", tmp_path / "tiny-bert")
    (directory / "training_args.bin").write_bytes(b"not for the Hub")
    info = push_to_hub(directory, new_repo_id, token=hub_token)
    assert info is not None and info.oid == hub_server.head(new_repo_id) and len(info.oid) == 40
    assert _commits(new_repo_id, hub_token) == 2  # the repository's .gitattributes commit + ours

    snapshot = Path(snapshot_download(new_repo_id))
    assert str(snapshot).startswith(str(fresh_hf_cache))
    files = {p.name for p in snapshot.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= files
    assert "training_args.bin" not in files
    card = ModelCard.load(snapshot / "README.md")  # no README in the directory, not a catalog name: minimal
    assert card.data.library_name == "transformers" and "zoo-models" in card.data.tags

    batch = {"input_ids": torch.tensor([[2, 9, 10, 11, 3]])}
    expected = zoo.load(directory)(**batch).logits
    torch.testing.assert_close(zoo.load(new_repo_id)(**batch).logits, expected, rtol=0, atol=0)
    local = AutoLoader("embedding", "tiny-bert", model_dir=tmp_path)
    by_id = AutoLoader("embedding", new_repo_id)
    torch.testing.assert_close(
        by_id.get_model()(**batch).pooler_output, local.get_model()(**batch).pooler_output, rtol=0, atol=0
    )

    # Unchanged: no file is uploaded and no commit is made.
    start = len(hub_server.log)
    assert push_to_hub(directory, new_repo_id, token=hub_token) is None
    assert _commits(new_repo_id, hub_token) == 2 and hub_server.head(new_repo_id) == info.oid
    assert not [e for e in hub_server.log[start:] if "/commit/" in e.path or "_lfs" in e.path]


def test_large_model_goes_through_lfs_in_shards(hub_server, hub_token, new_repo_id, fresh_hf_cache):
    torch.manual_seed(0)
    config = zoo.GPT2Config(
        vocab_size=50257,
        hidden_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=32,
    )
    model = zoo.GPT2ForCausalLM(config)
    size = sum(p.numel() for p in model.parameters()) * 4
    assert size > 13_000_000  # 50257 x 64 fp32 tied embedding = 12.9 MB, over the Hub's 10 MB LFS threshold
    start = len(hub_server.log)
    info = push_to_hub(model, new_repo_id, token=hub_token, max_shard_size="5MB")
    assert info is not None
    lfs_puts = [e for e in hub_server.log[start:] if e.method == "PUT" and "/_lfs/upload" in e.path]
    assert len(lfs_puts) == 2 and all(e.status == 200 for e in lfs_puts)  # two safetensors shards

    snapshot = Path(snapshot_download(new_repo_id))
    shards = sorted(p.name for p in snapshot.glob("*.safetensors"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert (snapshot / "model.safetensors.index.json").is_file()
    assert (snapshot / "generation_config.json").is_file()  # a causal LM can generate
    ids = torch.tensor([[1, 500, 50000, 7]])
    expected = model.eval()(input_ids=ids).logits
    pulled = zoo.load(new_repo_id)
    for name, tensor in model.state_dict().items():  # the very weights (GPT-2's Conv1D ones as views)
        assert torch.equal(pulled.state_dict()[name], tensor), name
    # a transposed weight view takes another matmul kernel: the same logits up to rounding
    torch.testing.assert_close(pulled(input_ids=ids).logits, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("how", ["reference_layout=True", "default", "model.push_to_hub"])
def test_reference_layout_loads_in_plain_transformers_without_zoo(
    how, tmp_path, hub_token, new_repo_id, fresh_hf_cache
):
    """What goes up is the transformers layout: by request, by default, and through transformers' own
    ``PreTrainedModel.push_to_hub`` (which calls the zoo's ``save_pretrained``)."""
    tokenizer = bpe_tokenizer()
    model = tiny_pretrained_model("gpt2", tokenizer).eval()
    if how == "model.push_to_hub":
        model.push_to_hub(new_repo_id, token=hub_token)
        tokenizer.push_to_hub(new_repo_id, token=hub_token)
    else:
        push_to_hub(
            model, new_repo_id, tokenizer=tokenizer, token=hub_token, reference_layout=how != "default"
        )
    ids = tokenizer(["the cat sat on the mat"], return_tensors="pt")["input_ids"]
    torch.save(ids, tmp_path / "ids.pt")
    code = (
        "import sys, torch, transformers\n"
        f"model = transformers.AutoModelForCausalLM.from_pretrained({new_repo_id!r}).eval()\n"
        f"tok = transformers.AutoTokenizer.from_pretrained({new_repo_id!r})\n"
        f"ids = torch.load({str(tmp_path / 'ids.pt')!r})\n"
        "assert tok(['the cat sat on the mat'], return_tensors='pt')['input_ids'].equal(ids)\n"
        f"torch.save(model(input_ids=ids).logits, {str(tmp_path / 'logits.pt')!r})\n"
        "assert not any(m == 'zoo' or m.startswith('zoo.') for m in sys.modules), 'zoo was imported'\n"
        "print(type(model).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "GPT2LMHeadModel"
    reference = torch.load(tmp_path / "logits.pt")
    # transformers' Conv1D against the zoo's nn.Linear: same weights, fp32 rounding only
    torch.testing.assert_close(reference, model(input_ids=ids).logits, rtol=0, atol=1e-5)


def test_missing_or_read_only_token_fails_before_any_upload(
    tmp_path, hub_server, hub_token, new_repo_id, monkeypatch
):
    directory = save_tiny_checkpoint("gpt2", tmp_path / "m")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    start = len(hub_server.log)
    with pytest.raises(PushError, match="HF_TOKEN") as error:
        push_to_hub(directory, new_repo_id)
    assert "token=" in str(error.value) and "hf auth login" in str(error.value)
    assert hub_server.log[start:] == []  # not even whoami

    with pytest.raises(PushError, match="read-only") as error:
        push_to_hub(directory, new_repo_id, token=hub_server.read_token)
    assert new_repo_id in str(error.value) and hub_server.read_token not in str(error.value)
    with pytest.raises(PushError, match="HTTP 401") as error:
        push_to_hub(directory, new_repo_id, token="hf_wrong_0123456789")
    assert "hf_wrong_0123456789" not in str(error.value)
    with pytest.raises(PushError, match="someone-else/x") as error:
        push_to_hub(directory, "someone-else/x", token=hub_token)
    assert hub_token not in str(error.value)
    assert [e.path for e in hub_server.log[start:]] == ["/api/whoami-v2"] * 3
    assert _uploads(hub_server, start) == []


def test_invalid_card_fails_naming_the_field_and_uploads_nothing(
    tmp_path, hub_server, hub_token, new_repo_id
):
    directory = save_tiny_checkpoint("gpt2", tmp_path / "m")
    start = len(hub_server.log)
    for data, field in (
        (ModelCardData(license="apache2"), "license"),
        (ModelCardData(language=["english"]), "language"),
        (ModelCardData(pipeline_tag="text-generator"), "pipeline_tag"),
        (ModelCardData(base_model="https://huggingface.co/gpt2"), "base_model"),
    ):
        with pytest.raises(CardValidationError, match=f"card field '{field}'"):
            push_to_hub(directory, new_repo_id, token=hub_token, card=data)
    # A README.md in the directory is the card; it is checked too.
    ModelCard(f"---\n{ModelCardData(license='apache2').to_yaml()}\n---\n\n# m\n").save(
        directory / "README.md"
    )
    with pytest.raises(CardValidationError, match="'license': 'apache2'"):
        push_to_hub(directory, new_repo_id, token=hub_token)
    assert hub_server.log[start:] == []
    assert ("model", new_repo_id) not in hub_server.repos


def test_every_catalog_card_is_valid_and_validation_rules():
    cards = sorted(MODEL_CARDS.glob("*.md"))
    assert len(cards) == len(CATALOG) == 25
    for path in cards:
        validate_card(path)
    validate_card({"license": "other", "language": ["en", "zh-hans", "fra", "multilingual"]})
    validate_card({"pipeline_tag": "token-classification", "base_model": ["openai-community/gpt2", "gpt2"]})
    with pytest.raises(CardValidationError, match="'language': 'xx'"):
        validate_card({"language": "xx"})  # two letters but not ISO 639-1
    with pytest.raises(CardValidationError, match="'license'"):
        validate_card({"license": "Apache-2.0"})  # Hub ids are lower case
