"""Zoo models against the transformers reference classes, same weights via the production weight map."""

import pytest
import torch
from reference_models import padded_batch, reference_and_zoo

TOL = 1e-5


def _max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    if mask is not None:  # padded positions are not defined by either implementation
        keep = mask.bool()
        a, b = a[keep], b[keep]
    return (a - b).abs().max().item()


@pytest.mark.parametrize("kind", ["gpt2", "bert", "bert-base", "roberta", "roberta-base"])
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_logits_and_every_hidden_state_match(kind, attn_implementation, tmp_path):
    reference, model = reference_and_zoo(kind, tmp_path)
    reference.set_attn_implementation(attn_implementation)
    model.set_attn_implementation(attn_implementation)
    pad_id = 1 if kind.startswith("roberta") else 0
    batch = padded_batch(pad_id, left=kind == "gpt2")
    token_type_ids = torch.zeros_like(batch["input_ids"])
    if kind.startswith("bert"):
        token_type_ids[:, 6:] = 1
        batch["token_type_ids"] = token_type_ids
    with torch.no_grad():
        expected = reference(**batch, output_hidden_states=True)
        actual = model(**batch, output_hidden_states=True)

    mask = batch["attention_mask"]
    if kind.endswith("-base"):
        assert _max_diff(actual.last_hidden_state, expected.last_hidden_state, mask) <= TOL
        assert _max_diff(actual.pooler_output, expected.pooler_output) <= TOL
    else:
        assert actual.logits.shape == expected.logits.shape
        assert _max_diff(actual.logits, expected.logits, mask) <= TOL
    assert len(actual.hidden_states) == len(expected.hidden_states) == reference.config.num_hidden_layers + 1
    for layer, (a, e) in enumerate(zip(actual.hidden_states, expected.hidden_states)):
        assert _max_diff(a, e, mask) <= TOL, f"hidden state {layer}"


@pytest.mark.parametrize("kind", ["gpt2", "bert", "roberta"])
def test_loss_matches_reference(kind, tmp_path):
    reference, model = reference_and_zoo(kind, tmp_path)
    batch = padded_batch(1 if kind == "roberta" else 0)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    if kind != "gpt2":
        labels[:, ::2] = -100  # only some positions are "masked" for MLM
    with torch.no_grad():
        expected = reference(**batch, labels=labels).loss
        actual = model(**batch, labels=labels).loss
    assert abs(actual.item() - expected.item()) <= TOL
    assert actual.item() > 1.0  # a real cross-entropy over a random model, not a placeholder


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_gradients_match_reference(kind, tmp_path):
    # Dropout off: compare the math, not the random streams.
    no_dropout = (
        {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
        if kind == "gpt2"
        else {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    )
    reference, model = reference_and_zoo(kind, tmp_path, **no_dropout)
    batch = padded_batch(0)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    reference.train()
    model.train()
    reference(**batch, labels=labels).loss.backward()
    model(**batch, labels=labels).loss.backward()
    embed_ref = reference.get_input_embeddings().weight.grad
    embed_zoo = model.get_input_embeddings().weight.grad
    assert (embed_ref - embed_zoo).abs().max().item() <= 1e-6
    assert embed_zoo.abs().max().item() > 0


def test_forward_names_keyword_arguments_it_does_not_use(tmp_path):
    """transformers' pass-through keywords are taken; anything else is a TypeError naming it (a dropped
    argument could change the result without a word)."""
    reference, model = reference_and_zoo("gpt2", tmp_path)
    batch = padded_batch(0)
    with torch.no_grad():
        plain = model(**batch).logits
        extra = model(**batch, return_dict=True, output_attentions=False, num_items_in_batch=None).logits
    assert torch.equal(plain, extra)
    assert model(**batch, return_dict=False)[0].shape == plain.shape
    with pytest.raises(
        TypeError,
        match=r"GPT2ForCausalLM.forward got argument\(s\) it does not use: 'token_labels' \(did you mean 'labels'\?\), 'some_flag'",
    ):
        model(**batch, token_labels=[1, 2], some_flag=True)


def test_outputs_contract(tmp_path):
    _, model = reference_and_zoo("gpt2", tmp_path)
    batch = padded_batch(0)
    without_labels = model(**batch)
    assert without_labels.loss is None and without_labels.hidden_states is None
    assert without_labels.logits.shape == (3, 12, model.config.vocab_size)
    with_labels = model(**batch, labels=batch["input_ids"])
    assert with_labels.loss.ndim == 0 and with_labels.loss.requires_grad
