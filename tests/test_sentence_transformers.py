"""sentence-transformers loads a zoo sentence-embedding head's directory and gives the head's vectors.

``save_sentence_transformers`` (and ``save_pretrained``, where the backbone has a transformers class)
writes the backbone in the transformers layout beside ``modules.json``, ``1_Pooling`` and, when the
head normalises, ``2_Normalize``. For mean, CLS and last-token pooling (BERT and Llama backbones),
``SentenceTransformer(directory).encode`` equals the head's ``pooler_output`` on the same sentences,
in a Python where importing zoo fails; ``AutoLoader("embedding", directory)`` and the head's own
``from_pretrained`` read the directory back with the same pooling and the same vectors.
"""

from __future__ import annotations

import json

import pytest
import torch
from tiny_models import bpe_tokenizer, wordpiece_tokenizer

import zoo
from auto_loader import AutoLoader
from tasks import heads
from tasks.base import model_inputs
from zoo.errors import ConfigError

sentence_transformers = pytest.importorskip(
    "sentence_transformers", reason='pip install -c constraints.txt -e ".[dev]"'
)

SENTENCES = ["john lives in paris .", "the cat sat on the mat", "i love this movie , it was good !"]
MODULE_TYPES = {
    "mean": ["Transformer", "Pooling", "Normalize"],
    "cls": ["Transformer", "Pooling"],
    "last": ["Transformer", "Pooling", "Normalize"],
}
# sentence-transformers in a Python where the zoo's packages cannot be imported: it needs none of them.
_LOAD_WITHOUT_ZOO = """
import json, sys
for name in ("zoo", "tasks", "auto_loader", "trainers"):
    sys.modules[name] = None  # "import zoo" raises ImportError from here on
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(DIRECTORY, device="cpu")
print(json.dumps({"vectors": model.encode(SENTENCES).tolist(), "max_seq_length": model.max_seq_length}))
"""


def _head(family: str, pooling: str, normalize: bool, seed: int = 0):
    """A tiny embedding head with noisy weights (so pooling choices give clearly different vectors)."""
    tokenizer = wordpiece_tokenizer() if family == "bert" else bpe_tokenizer()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    shape = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    common = dict(
        vocab_size=len(tokenizer), max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
        pooling=pooling, normalize_embeddings=normalize, **shape,
    )  # fmt: skip
    if family == "bert":
        config = zoo.BertConfig(**common)
    else:
        special = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
        config = zoo.LlamaConfig(num_key_value_heads=2, **special, **common)
    torch.manual_seed(seed)
    model = heads.head_class(family, "embedding")(config)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.1)
    return model.eval(), tokenizer


def _vectors(model, tokenizer) -> torch.Tensor:
    batch = model_inputs(tokenizer(SENTENCES, padding=True, return_tensors="pt"), model)
    with torch.no_grad():
        return model(**batch).pooler_output


def _max_diff(a, b) -> float:
    return (torch.as_tensor(a) - torch.as_tensor(b)).abs().max().item()


@pytest.mark.parametrize(
    ("family", "pooling", "normalize", "save"),
    [
        ("bert", "mean", True, "save_sentence_transformers"),
        ("bert", "cls", False, "save_pretrained"),
        ("llama", "last", True, "save_sentence_transformers"),
    ],
)
def test_sentence_transformers_encodes_as_the_head(family, pooling, normalize, save, tmp_path, run_offline):
    model, tokenizer = _head(family, pooling, normalize)
    directory = tmp_path / "model"
    if save == "save_pretrained":  # what Trainer writes at a checkpoint: the model, then the tokenizer
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    else:
        model.save_sentence_transformers(directory, tokenizer=tokenizer)
    expected = _vectors(model, tokenizer)
    norms = expected.norm(dim=-1)
    assert torch.allclose(norms, torch.ones(3), atol=1e-6) == normalize

    config = json.loads((directory / "config.json").read_text())
    assert config["architectures"] == [type(model.model).__name__] and config["model_type"] == family
    encoder = sentence_transformers.SentenceTransformer(str(directory), device="cpu")
    assert [type(module).__name__ for module in encoder] == MODULE_TYPES[pooling]
    assert type(encoder[0].auto_model).__module__.startswith("transformers.models.")
    assert encoder.max_seq_length == 64  # the position table, below the tokenizer's model_max_length
    encoded = encoder.encode(SENTENCES, convert_to_tensor=True)
    assert _max_diff(encoded, expected) <= 1e-5
    assert torch.allclose(encoded.norm(dim=-1), norms, atol=1e-5)

    loader = AutoLoader("embedding", str(directory))
    assert (loader.model.config.pooling, loader.model.config.normalize_embeddings) == (pooling, normalize)
    assert _max_diff(_vectors(loader.model, loader.get_tokenizer()), expected) <= 1e-6
    again = type(model).from_pretrained(directory)
    assert (again.config.pooling, again.config.normalize_embeddings) == (pooling, normalize)
    assert _max_diff(_vectors(again, tokenizer), expected) <= 1e-6

    if family == "bert" and pooling == "mean":
        code = f"DIRECTORY = {str(directory)!r}\nSENTENCES = {SENTENCES!r}\n{_LOAD_WITHOUT_ZOO}"
        completed = run_offline(code)
        assert completed.returncode == 0, completed.stderr[-3000:]
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        assert result["max_seq_length"] == 64
        assert _max_diff(result["vectors"], expected) <= 1e-5


def test_save_pretrained_writes_the_state_dict_it_is_given(tmp_path):
    """Trainer under FSDP / ZeRO-3 passes the gathered weights: those are saved, not the module's own."""
    model, tokenizer = _head("bert", "mean", True, seed=0)
    other, _ = _head("bert", "mean", True, seed=5)
    model.save_pretrained(tmp_path, state_dict=other.state_dict())
    tokenizer.save_pretrained(tmp_path)
    encoded = sentence_transformers.SentenceTransformer(str(tmp_path), device="cpu").encode(
        SENTENCES, convert_to_tensor=True
    )
    assert _max_diff(encoded, _vectors(other, tokenizer)) <= 1e-5
    assert _max_diff(encoded, _vectors(model, tokenizer)) > 0.1


def test_zoo_layout_and_bad_arguments(tmp_path):
    model, tokenizer = _head("bert", "cls", False)
    model.save_pretrained(tmp_path / "zoo", layout="zoo")
    assert not (tmp_path / "zoo" / "modules.json").exists()
    again = type(model).from_pretrained(tmp_path / "zoo")
    assert _max_diff(_vectors(again, tokenizer), _vectors(model, tokenizer)) == 0
    with pytest.raises(ConfigError, match="max_seq_length=65 must be between 1 and 64"):
        model.save_sentence_transformers(tmp_path / "long", tokenizer, max_seq_length=65)
    model.save_sentence_transformers(tmp_path / "short", tokenizer, max_seq_length=8)
    assert (
        sentence_transformers.SentenceTransformer(str(tmp_path / "short"), device="cpu").max_seq_length == 8
    )

    # GLM has no transformers class: its head keeps the zoo layout, and cannot be exported.
    glm = heads.GLMForSentenceEmbedding(
        zoo.GLMConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      max_position_embeddings=64, pooling="last", normalize_embeddings=True)
    )  # fmt: skip
    glm.save_pretrained(tmp_path / "glm")
    assert not (tmp_path / "glm" / "modules.json").exists()
    loaded = heads.GLMForSentenceEmbedding.from_pretrained(tmp_path / "glm")
    assert (loaded.config.pooling, loaded.config.normalize_embeddings) == ("last", True)
    with pytest.raises(ConfigError, match="sentence-transformers cannot load the GLMModel backbone"):
        glm.save_sentence_transformers(tmp_path / "glm-st", tokenizer)


@pytest.mark.parametrize(("pooling", "mode"), [("mean", "mean"), ("cls", "cls"), ("last", "lasttoken")])
def test_autoloader_reads_a_directory_sentence_transformers_6_wrote(pooling, mode, tmp_path):
    """sentence-transformers 6 names its modules by class path and its pooling by ``pooling_mode``."""
    model, tokenizer = _head("bert", pooling, normalize=True)
    model.model.save_pretrained(tmp_path / "backbone")
    tokenizer.save_pretrained(tmp_path / "backbone")
    models = sentence_transformers.models
    transformer = models.Transformer(str(tmp_path / "backbone"))
    encoder = sentence_transformers.SentenceTransformer(
        modules=[transformer, models.Pooling(32, pooling_mode=mode), models.Normalize()], device="cpu"
    )
    encoder.save(str(tmp_path / "st"))
    written = [m["type"] for m in json.loads((tmp_path / "st" / "modules.json").read_text())]
    assert written[0] == "sentence_transformers.base.modules.transformer.Transformer"  # the 6.x names
    loader = AutoLoader("embedding", str(tmp_path / "st"))
    assert (loader.model.config.pooling, loader.model.config.normalize_embeddings) == (pooling, True)
    assert (
        _max_diff(_vectors(loader.model, tokenizer), encoder.encode(SENTENCES, convert_to_tensor=True))
        <= 1e-5
    )

    (tmp_path / "st" / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "max"}))
    with pytest.raises(ConfigError, match="pooling_mode 'max' cannot be reproduced"):
        AutoLoader("embedding", str(tmp_path / "st"))
