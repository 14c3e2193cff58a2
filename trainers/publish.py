"""Publishing a model to the Hugging Face Hub: weights, config, tokenizer and a checked model card, in one commit.

``push_to_hub(source, repo_id, token=...)`` takes a model directory (as ``save_pretrained`` or
``trainers.run_task`` writes it) or a zoo model, stages what a user needs in a temporary directory and
uploads it with ``HfApi.upload_folder`` as a single commit. The token and the card are checked locally
before anything is uploaded, so a bad token or a misspelt license never leaves half a repository behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from zoo.errors import ZooError

try:  # the HTTP client of huggingface_hub 2.x: no network or a dropped upload raises its errors
    from httpx2 import TransportError
except ImportError:  # huggingface_hub 1.x
    from httpx import TransportError

__all__ = [
    "HUB_LICENSES",
    "PIPELINE_TAGS",
    "CardValidationError",
    "PushError",
    "push_to_hub",
    "validate_card",
]


class PushError(ZooError):
    """The model cannot be pushed: no token, a token that may not write, offline mode, or a Hub out of reach."""


class CardValidationError(ZooError, ValueError):
    """A model card's metadata has a value the Hub does not accept; the message names the field."""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# License identifiers the Hub accepts in a card's ``license:`` field (https://huggingface.co/docs/hub/repositories-licenses).
HUB_LICENSES = _words(
    """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear
    c-uda cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0
    cc-by-nc-3.0 cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0
    cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl
    ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1
    lgpl-3.0 isc h-research intel-research lppl-1.3c ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl
    openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr deepfloyd-if-license
    fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2 llama3.3 llama4 gemma unknown
    other
    """
)

# The Hub's pipeline tags (https://huggingface.co/docs/hub/models-widgets#widget-type-inference).
PIPELINE_TAGS = _words(
    """
    text-classification token-classification table-question-answering question-answering
    zero-shot-classification translation summarization feature-extraction text-generation
    text2text-generation fill-mask sentence-similarity text-ranking text-retrieval multiple-choice
    text-to-speech text-to-audio automatic-speech-recognition audio-to-audio audio-classification
    voice-activity-detection depth-estimation image-classification object-detection image-segmentation
    text-to-image image-to-text image-to-image image-to-video unconditional-image-generation
    video-classification reinforcement-learning robotics tabular-classification tabular-regression
    tabular-to-text table-to-text time-series-forecasting text-to-video image-text-to-text
    visual-question-answering document-question-answering zero-shot-image-classification graph-ml
    mask-generation zero-shot-object-detection text-to-3d image-to-3d image-feature-extraction
    video-text-to-text keypoint-detection visual-document-retrieval any-to-any video-to-video other
    """
)

# ISO 639-1 codes: a two-letter language must be one of these; three-letter (639-2/3) codes only match the form.
ISO_639_1 = _words(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de
    dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id
    ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu
    lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu
    rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr
    ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """
)
LANGUAGE_WORDS = frozenset({"multilingual", "code"})  # the Hub's non-ISO language values
_LANGUAGE = re.compile(r"(?P<base>[a-z]{2,3})(?:[-_][A-Za-z0-9]{2,8})*")
_REPO_ID = re.compile(r"(?:[\w.-]+/)?[\w.-]+")
_FULL_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")

# Files of a training run that a published model does not need (optimizer state, pickled arguments).
_SKIPPED_FILES = {"training_args.bin", "optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json"}
_WEIGHT_FILE = re.compile(r"(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin)(\.index\.json)?")


# ----- card validation ------------------------------------------------------------------------------------
def _card_data(card) -> dict:
    if isinstance(card, ModelCard):
        return card.data.to_dict()
    if isinstance(card, ModelCardData):
        return card.to_dict()
    if isinstance(card, dict):
        return dict(card)
    if isinstance(card, os.PathLike) or (isinstance(card, str) and "\n" not in card and Path(card).is_file()):
        return ModelCard.load(Path(card)).data.to_dict()
    if isinstance(card, str):
        return ModelCard(card).data.to_dict()
    raise TypeError(
        f"a card is a ModelCard, ModelCardData, dict, path or card text, not {type(card).__name__}"
    )


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def validate_card(card) -> None:
    """Check a card's metadata against what the Hub accepts; raise ``CardValidationError`` naming the field.

    ``card`` is a ``ModelCard``, ``ModelCardData``, metadata dict, path to a README.md, or card text.
    Checked: ``license`` (a Hub license id, see ``HUB_LICENSES``), ``language`` (ISO 639-1 / 639-2/3 codes,
    optionally with a region or script subtag, or ``multilingual``), ``pipeline_tag`` (``PIPELINE_TAGS``)
    and ``base_model`` (repository ids). Missing fields are allowed.
    """
    data = _card_data(card)
    license_id = data.get("license")
    if license_id is not None:
        for value in _as_list(license_id):
            if not isinstance(value, str) or value not in HUB_LICENSES:
                raise CardValidationError(
                    f"card field 'license': {value!r} is not a Hub license identifier; use one of "
                    f"{', '.join(sorted(HUB_LICENSES)[:12])}, ... (e.g. 'apache-2.0', 'mit', 'cc-by-4.0'), "
                    "or 'other' with license_name/license_link"
                )
    for value in _as_list(data.get("language")) if data.get("language") is not None else []:
        match = _LANGUAGE.fullmatch(value) if isinstance(value, str) else None
        if isinstance(value, str) and value in LANGUAGE_WORDS:
            continue
        if match is None or (len(match["base"]) == 2 and match["base"] not in ISO_639_1):
            raise CardValidationError(
                f"card field 'language': {value!r} is not an ISO 639-1/2/3 language code; use codes such as "
                "'en', 'zh', 'de', 'fra', 'zh-hans' (lower case), or 'multilingual'"
            )
    tag = data.get("pipeline_tag")
    if tag is not None and tag not in PIPELINE_TAGS:
        raise CardValidationError(
            f"card field 'pipeline_tag': {tag!r} is not a Hub pipeline tag; valid tags include "
            "text-classification, token-classification, text-generation, text2text-generation, fill-mask, "
            "sentence-similarity, feature-extraction, translation, summarization, question-answering"
        )
    for value in _as_list(data.get("base_model")) if data.get("base_model") is not None else []:
        if not isinstance(value, str) or not _REPO_ID.fullmatch(value) or value.startswith("."):
            raise CardValidationError(
                f"card field 'base_model': {value!r} is not a Hub repository id; use 'namespace/name', "
                "e.g. 'openai-community/gpt2'"
            )


# ----- token check ----------------------------------------------------------------------------------------
def _check_token(api: HfApi, token: str, repo_id: str) -> None:
    try:
        me = api.whoami(token=token)
    except HfHubHTTPError as error:
        status = getattr(error.response, "status_code", None)
        raise PushError(
            f"the Hub rejected the token (HTTP {status}) while checking who may push to {repo_id!r}; "
            "pass a valid write token with token=..., HF_TOKEN, or `hf auth login`"
        ) from None
    role = ((me.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise PushError(
            f"the token is read-only and cannot push to {repo_id!r}; create a token with write access "
            "(https://huggingface.co/settings/tokens) and pass it with token=..., HF_TOKEN or `hf auth login`"
        )
    namespaces = [me.get("name")] + [org.get("name") for org in me.get("orgs") or []]
    namespace = repo_id.split("/")[0]
    if namespace not in namespaces:
        raise PushError(
            f"the token's user {me.get('name')!r} cannot write to {repo_id!r}: namespace {namespace!r} is "
            f"neither the user nor one of their organisations ({', '.join(map(repr, namespaces))})"
        )


# ----- staging --------------------------------------------------------------------------------------------
def _read_state_dict(directory: Path) -> dict:
    import torch
    from safetensors.torch import load_file

    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    state: dict = {}
    for file in files:
        if file.suffix == ".safetensors":
            state.update(load_file(file))
        else:
            state.update(torch.load(file, map_location="cpu", weights_only=True))
    return state


def _stage_directory(directory: Path, staging: Path, max_shard_size, reference_layout: bool) -> None:
    if not (directory / "config.json").is_file():
        raise PushError(f"{str(directory)!r} is not a model directory: it has no config.json")
    if reference_layout:
        import zoo

        model = zoo.load(directory)
        if not hasattr(model, "save_reference"):
            raise PushError(f"{str(directory)!r} holds no zoo model; reference_layout=True needs one")
        model.save_reference(staging, max_shard_size=max_shard_size)
    else:
        from huggingface_hub import save_torch_state_dict

        state = _read_state_dict(directory)
        if not state:
            raise PushError(f"{str(directory)!r} has no weights (*.safetensors or pytorch_model*.bin)")
        save_torch_state_dict(state, staging, max_shard_size=max_shard_size, metadata={"format": "pt"})
    for file in sorted(directory.iterdir()):
        if not file.is_file() or file.name in _SKIPPED_FILES or _WEIGHT_FILE.fullmatch(file.name):
            continue
        if (staging / file.name).exists():  # config / generation config of the reference layout
            continue
        if file.suffix in (".pt", ".pth", ".bin", ".pkl"):
            continue
        shutil.copy2(file, staging / file.name)


def _stage_model(model, tokenizer, staging: Path, max_shard_size, reference_layout: bool) -> None:
    if reference_layout:
        if not hasattr(model, "save_reference"):
            raise PushError(f"{type(model).__name__} is not a zoo model; reference_layout=True needs one")
        model.save_reference(staging, max_shard_size=max_shard_size)
    else:
        model.save_pretrained(staging, max_shard_size=max_shard_size)
    if tokenizer is not None:
        tokenizer.save_pretrained(staging)


def _name_or_path(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        config = json.loads((Path(source) / "config.json").read_text(encoding="utf-8"))
        return config.get("_name_or_path") or Path(source).name
    return str(getattr(source, "name_or_path", "") or getattr(source.config, "_name_or_path", "") or "")


def _default_card(source, repo_id: str) -> ModelCard:
    """The card in the model directory, else the catalog's card, else a minimal one."""
    if isinstance(source, (str, os.PathLike)) and (Path(source) / "README.md").is_file():
        return ModelCard.load(Path(source) / "README.md")
    from auto_loader import find_entry
    from auto_loader.cards import render_card

    name = _name_or_path(source)
    entry = (find_entry(name) or find_entry(Path(name).name)) if name else None
    if entry is not None:
        return render_card(entry)
    if isinstance(source, (str, os.PathLike)):
        model_type = json.loads((Path(source) / "config.json").read_text(encoding="utf-8")).get("model_type")
    else:
        model_type = getattr(source.config, "model_type", None)
    tags = ["zoo-models", *([model_type.removeprefix("zoo_")] if model_type else [])]
    data = ModelCardData(library_name="transformers", tags=tags)
    text = (
        f"# {repo_id.split('/')[-1]}\n\nA `{model_type or 'transformers'}` model published with "
        "[zoo-models](https://pypi.org/project/zoo-models/).\n\n```python\nimport zoo\n\n"
        f'model = zoo.load("{repo_id}")\n```\n'
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text}")


# ----- push -----------------------------------------------------------------------------------------------
def push_to_hub(
    source,
    repo_id: str,
    *,
    tokenizer=None,
    token: str | None = None,
    revision: str | None = None,
    private: bool = False,
    reference_layout: bool = False,
    commit_message: str | None = None,
    max_shard_size: int | str = "5GB",
    card=None,
) -> CommitInfo | None:
    """Upload a model to the Hub repository ``repo_id`` ("namespace/name") in one commit.

    ``source`` is a model directory (``save_pretrained`` / ``trainers.run_task`` output: its weights,
    config, generation config, tokenizer files, README.md, loss curve and results are pushed; optimizer
    state, ``training_args.bin`` and ``checkpoint-*`` folders are not) or a model object, with its
    ``tokenizer``. Weights are pushed as safetensors, sharded with an index above ``max_shard_size``.
    ``reference_layout=True`` pushes the transformers reference layout (``model.save_reference``), which
    plain transformers loads without this package.

    The card is ``card`` (ModelCard, text or path) if given, else the directory's README.md, else the
    catalog card when the model's name is a catalog entry, else a minimal card; ``validate_card`` checks
    it first. The token (``token=``, else HF_TOKEN or the stored login) is checked with ``whoami`` before
    any upload: missing, read-only or not allowed to write the namespace raises ``PushError``.
    The repository is created (``private``) if needed; ``revision`` is an existing branch (default main).

    Returns the ``CommitInfo`` of the new commit, or None when nothing changed: the client skips files
    whose content the repository already has, and makes no commit when no file changed.
    """
    if not isinstance(repo_id, str) or not _FULL_REPO_ID.fullmatch(repo_id):
        raise PushError(f"repo_id {repo_id!r} is not a Hub repository id; use 'namespace/name'")
    is_directory = isinstance(source, (str, os.PathLike))
    if is_directory and not Path(source).is_dir():
        raise PushError(f"{str(source)!r} is not a directory; pass a model directory or a model")
    model_card = _default_card(source, repo_id) if card is None else card
    if isinstance(model_card, dict):
        model_card = ModelCardData(**model_card)
    if isinstance(model_card, ModelCardData):
        model_card = ModelCard(f"---\n{model_card.to_yaml()}\n---\n\n# {repo_id.split('/')[-1]}\n")
    elif not isinstance(model_card, ModelCard):
        is_path = isinstance(model_card, os.PathLike) or "\n" not in str(model_card)
        model_card = ModelCard.load(Path(model_card)) if is_path else ModelCard(str(model_card))
    validate_card(model_card)

    if hub_constants.HF_HUB_OFFLINE:
        raise PushError(
            f"cannot push to {repo_id!r}: HF_HUB_OFFLINE is set, and a push needs the Hub; unset it "
            "(HF_HUB_OFFLINE=0) where the Hub is reachable and push again"
        )
    token = token or get_token()
    if not token:
        raise PushError(
            f"no Hugging Face token to push to {repo_id!r}: pass token=..., set HF_TOKEN, or run "
            "`hf auth login` (a token with write access, https://huggingface.co/settings/tokens)"
        )
    api = HfApi(token=token)
    try:
        _check_token(api, token, repo_id)
        with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
            staging = Path(tmp)
            if is_directory:
                _stage_directory(Path(source), staging, max_shard_size, reference_layout)
            else:
                _stage_model(source, tokenizer, staging, max_shard_size, reference_layout)
            model_card.save(staging / "README.md")

            api.create_repo(repo_id, private=private, exist_ok=True)
            try:
                before = api.repo_info(repo_id, revision=revision).sha
            except RepositoryNotFoundError:
                before = None
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=staging,
                revision=revision,
                commit_message=commit_message
                or f"Upload {'reference layout of ' if reference_layout else ''}model",
            )
    except TransportError as error:  # no network, a wrong HF_ENDPOINT, or a connection dropped mid-upload
        raise PushError(
            f"cannot push to {repo_id!r}: the Hub at {api.endpoint} is unreachable ({type(error).__name__}); "
            "check the network (or HF_ENDPOINT) and push again"
        ) from None
    return None if info.oid == before else info
