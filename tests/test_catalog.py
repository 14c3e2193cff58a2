"""The catalog: every named model resolves to a family, a head for every task it supports (built
from a tiny config of that family) and an up-to-date model card whose metadata parses."""

from __future__ import annotations

import pytest
import torch
from huggingface_hub import ModelCard
from tiny_models import tiny_pretrained_model, tokenizer_for

from auto_loader import CATALOG, get_entry
from auto_loader.cards import render_card, tasks_for
from tasks import get_task
from tasks.heads import head_class
from zoo import families
from zoo.errors import UnknownNameError

FLAGAI_NAMES = {
    "bert-base-en", "roberta-base-ch", "gpt2-base-ch", "gpt2-base-en", "t5-base-ch", "t5-base-en",
    "glm-large-ch", "glm-large-en", "glm-10b-ch",
}  # fmt: skip
HUB_LICENSES = {"apache-2.0", "mit", "other", "cc-by-4.0", "cc-by-sa-4.0", "llama2", "llama3", "gemma"}


def test_the_catalog_names_flagai_llama_family_and_embedding_models():
    assert set(CATALOG) >= FLAGAI_NAMES
    assert {"smollm2-135m", "qwen2.5-0.5b", "tinyllama-1.1b", "all-minilm-l6-v2"} <= set(CATALOG)
    assert get_entry("GLM-Large-CH") is CATALOG["glm-large-ch"]
    with pytest.raises(UnknownNameError, match="did you mean 't5-base-en'"):
        get_entry("t5-base-eng")


@pytest.mark.parametrize("name", list(CATALOG))
def test_entry_resolves_to_a_family_heads_and_a_card(name):
    entry = CATALOG[name]
    assert entry.family in families()
    namespace, _, repo = entry.hub_id.partition("/")
    assert namespace and repo and entry.license in HUB_LICENSES and entry.languages
    tasks = tasks_for(entry)
    assert tasks, f"{name} supports no task"

    # A head per supported task, built from a tiny config of the family, runs a forward pass.
    tokenizer = tokenizer_for(entry.family)
    config = tiny_pretrained_model(entry.family, tokenizer).config
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    for task_name in tasks:
        head = get_task(task_name).head
        assert head in entry.supported_heads()
        model = head_class(entry.family, head)(config).eval()
        inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if head == "seq2seq" and entry.family == "t5":
            inputs["decoder_input_ids"] = ids[:, :2]
        with torch.no_grad():
            output = model(**inputs)
        if head == "embedding":
            assert output.pooler_output.shape == (1, config.hidden_size)
        elif head == "sequence-classification":
            assert output.logits.shape == (1, model.config.num_labels)
        else:  # per token; T5's seq2seq logits are the decoder's
            decoder = head == "seq2seq" and entry.family == "t5"
            assert output.logits.shape[:2] == (1, 2 if decoder else 5)

    # The card: present, rendered from the catalog as committed, metadata parses and names the model.
    assert entry.card_path.is_file(), f"run python -m auto_loader.cards to write {entry.card_path}"
    text = entry.card_path.read_text(encoding="utf-8")
    assert text == str(render_card(entry)), "model_cards/ is stale: run python -m auto_loader.cards"
    card = ModelCard(text)
    assert card.data.license == entry.license and card.data.base_model == entry.hub_id
    assert card.data.language == list(entry.languages) and card.data.library_name == "transformers"
    assert 'AutoLoader("' in card.text and entry.hub_id in card.text
