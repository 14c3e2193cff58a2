"""Greedy generation through GenerationMixin equals transformers' GPT-2, cached and uncached."""

import pytest
import torch
from reference_models import padded_batch, reference_and_zoo


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return reference_and_zoo("gpt2", tmp_path_factory.mktemp("gpt2"))


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_20_tokens_equal_reference(pair, use_cache):
    reference, model = pair
    prompt = padded_batch(0)["input_ids"][:1]
    kwargs = {"max_new_tokens": 20, "do_sample": False, "use_cache": use_cache, "pad_token_id": 0}
    expected = reference.generate(prompt, **kwargs)
    actual = model.generate(prompt, **kwargs)
    assert actual.shape == (1, 12 + 20)
    assert torch.equal(actual, expected)


def test_cached_equals_uncached(pair):
    _, model = pair
    prompt = padded_batch(0)["input_ids"][:2]
    cached = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=True, pad_token_id=0)
    uncached = model.generate(prompt, max_new_tokens=20, do_sample=False, use_cache=False, pad_token_id=0)
    assert torch.equal(cached, uncached)


def test_left_padded_batch_equals_reference_and_unpadded(pair):
    reference, model = pair
    batch = padded_batch(0, left=True)
    kwargs = {"max_new_tokens": 20, "do_sample": False, "pad_token_id": 0}
    expected = reference.generate(**batch, **kwargs)
    actual = model.generate(**batch, **kwargs)
    assert torch.equal(actual, expected)
    # Each padded row continues exactly as the same prompt alone would.
    for row in range(batch["input_ids"].shape[0]):
        keep = batch["attention_mask"][row].bool()
        alone = model.generate(batch["input_ids"][row, keep][None], **kwargs)
        assert torch.equal(actual[row, -20:], alone[0, -20:])


def test_cache_is_a_transformers_cache(pair):
    from transformers import DynamicCache

    _, model = pair
    out = model(input_ids=torch.tensor([[5, 6, 7]]), use_cache=True)
    assert isinstance(out.cache, DynamicCache)
    assert out.cache.get_seq_length() == 3
    step = model(input_ids=torch.tensor([[8]]), cache=out.cache, use_cache=True)
    full = model(input_ids=torch.tensor([[5, 6, 7, 8]]), use_cache=False)
    assert (step.logits[0, -1] - full.logits[0, -1]).abs().max().item() <= 1e-5


def test_old_cache_name_still_works_with_a_future_warning(pair):
    """``past_key_values=`` (transformers < 5.24, PEFT's prefix tuning) is renamed to ``cache``, as
    transformers' own models do until they drop it; passing both is an error."""
    _, model = pair
    out = model(input_ids=torch.tensor([[5, 6, 7]]), use_cache=True)
    with pytest.warns(FutureWarning, match="pass `cache=`"):
        step = model(input_ids=torch.tensor([[8]]), past_key_values=out.cache, use_cache=True)
    assert step.cache is out.cache and out.cache.get_seq_length() == 4
    with pytest.raises(TypeError, match="both `cache` and `past_key_values`"):
        model(input_ids=torch.tensor([[9]]), past_key_values=out.cache, cache=out.cache)
