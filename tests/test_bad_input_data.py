"""Bad data files and records fail with ``TaskDataError`` naming the file, the line or record, and
what is wrong; well-formed ones read back exactly. Every file is a few bytes in pytest's tmp_path."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import wordpiece_tokenizer

import zoo
from tasks import TaskDataError, get_task
from tasks.data import parse_conll, read_conll, read_line_pairs, read_table


@pytest.fixture(scope="module")
def wordpiece():
    return wordpiece_tokenizer()


def raises_data_error(call, pattern: str) -> TaskDataError:
    with pytest.raises(TaskDataError, match=pattern) as error:
        call()
    assert isinstance(error.value, ValueError) and isinstance(error.value, zoo.ZooError)
    return error.value


# ---------------------------------------------------------------- CoNLL
CONLL_READS = {
    "space-separated": ("Ken B-PER\nIto I-PER\n", [(["Ken", "Ito"], ["B-PER", "I-PER"])]),
    "three columns, tag last": ("Ken NNP B-PER\nIto NNP I-PER\n", [(["Ken", "Ito"], ["B-PER", "I-PER"])]),
    "CoNLL-2003": (
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nKen NNP B-NP B-PER\n",
        [(["EU", "rejects"], ["B-ORG", "O"]), (["Ken"], ["B-PER"])],
    ),
    "aligned columns": ("Ken    NNP  B-PER\nIto    NNP  I-PER \n", [(["Ken", "Ito"], ["B-PER", "I-PER"])]),
    "tab-separated token with a space": ("New York\tB-LOC\nis\tO\n", [(["New York", "is"], ["B-LOC", "O"])]),
    "BOM before -DOCSTART-": ("\ufeff-DOCSTART- -X- -X- O\n\nKen NNP B-PER\n", [(["Ken"], ["B-PER"])]),
    "BOM before a token": ("\ufeffKen\tB-PER\n", [(["Ken"], ["B-PER"])]),
    "whitespace tokens": (
        "北\tB-LOC\n\tO\n京 I-LOC\n  O\n",
        [(["北", " ", "京", " "], ["B-LOC", "O", "I-LOC", "O"])],
    ),
    "CRLF": ("Ken\tB-PER\r\n\r\nIto\tB-PER\r\n", [(["Ken"], ["B-PER"]), (["Ito"], ["B-PER"])]),
}


@pytest.mark.parametrize("text, sentences", CONLL_READS.values(), ids=CONLL_READS)
def test_conll_reads_token_first_tag_last(tmp_path, text, sentences):
    path = tmp_path / "train.conll"
    path.write_bytes(text.encode("utf-8"))
    expected = [{"tokens": tokens, "tags": tags} for tokens, tags in sentences]
    assert read_conll(path).to_list() == expected
    assert parse_conll(text.splitlines(keepends=True)) == {
        "tokens": [tokens for tokens, _ in sentences],
        "tags": [tags for _, tags in sentences],
    }


CONLL_ERRORS = {
    "token with a space": (b"New York B-LOC\nis O\n", r"line 2: 2 columns, but line 1 has 3 \('is O'\)"),
    "a column less": (b"EU NNP B-ORG\n\nrejects O\n", r"line 3: 2 columns, but line 1 has 3"),
    "no tag": (b"Ken B-PER\nIto\n", r"line 2: expected a token and a tag .*got 'Ito'"),
    "Latin-1": (b"Ken B-PER\nJos\xe9 I-PER\n", r"line 2, byte 4: b'\\xe9' is not UTF-8 .*read as UTF-8"),
    "UTF-16": ("Ken B-PER\n".encode("utf-16"), r"line 1, byte 1: b'\\xff' is not UTF-8"),
}


@pytest.mark.parametrize("data, pattern", CONLL_ERRORS.values(), ids=CONLL_ERRORS)
def test_conll_errors_name_the_line(tmp_path, data, pattern):
    path = tmp_path / "train.conll"
    path.write_bytes(data)
    raises_data_error(lambda: read_conll(path), re.escape(str(path)) + " " + pattern)


# ---------------------------------------------------------------- json / jsonl / csv / tsv
TABLE_READS = {
    "bom.tsv": (b"\xef\xbb\xbftext\tlabel\na\tx\n", [{"text": "a", "label": "x"}]),
    "blank-lines.tsv": (
        b"text\tlabel\na\tx\n\nb\ty\n",
        [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}],
    ),
    "bom.jsonl": (b'\xef\xbb\xbf{"text": "a", "label": "x"}\n', [{"text": "a", "label": "x"}]),
    "blank-lines.jsonl": (b'{"text": "a"}\n\n{"text": "b"}\r\n', [{"text": "a"}, {"text": "b"}]),
    "array.json": (b'[\n {"text": "a"},\n {"text": "b"}\n]\n', [{"text": "a"}, {"text": "b"}]),
    "object.json": (b'{\n "text": "a"\n}\n', [{"text": "a"}]),
}


@pytest.mark.parametrize("name, data, records", [(k, *v) for k, v in TABLE_READS.items()], ids=TABLE_READS)
def test_well_formed_tables_read(tmp_path, name, data, records):
    path = tmp_path / name
    path.write_bytes(data)
    assert read_table(path).to_list() == records


TABLE_ERRORS = {
    "broken.jsonl": (
        b'{"text": "a"}\n{"text": "b",\n',
        r"line 2, column \d+: not valid JSON .*one object per line",
    ),
    "first-line.jsonl": (b'{"text": "a"\n{"text": "b"}\n', r"line 1, column \d+: not valid JSON"),
    "scalars.jsonl": (b"1\n2\n", r"line 1: 1 is not a JSON object"),
    "broken.json": (b'[\n {"text": "a"},\n {"text": "b"},\n]\n', r"line 4, column 1: not valid JSON"),
    "strings.json": (b'["a", "b"]', r"record 0: 'a' is not a JSON object"),
    "empty.jsonl": (b"", r"is empty: no records"),
    "blank.json": (b"\n \n", r"is empty: no records"),
    "empty-array.json": (b"[]", r"holds no records"),
    "latin1.jsonl": (b'{"text": "a"}\n{"text": "caf\xe9"}\n', r"line 2, byte 14: b'\\xe9' is not UTF-8"),
    "latin1.tsv": (b"text\tlabel\ncaf\xe9\tx\n", r"line 2, byte 4: b'\\xe9' is not UTF-8"),
    "gbk.csv": ("text,label\n北京,x\n".encode("gbk"), r"line 2, byte 1: .* is not UTF-8"),
    "extra-field.tsv": (b"text\tlabel\na\tx\nb\ty\tz\n", r"line 3: 3 field\(s\), expected 2 \(text, label\)"),
    "short-row.tsv": (b"text\tlabel\na\tx\nb\n", r"line 3: 1 field\(s\), expected 2 \(text, label\)"),
    "header-only.tsv": (b"text\tlabel\n", r"holds a header row \(text, label\) and no records"),
    "empty.tsv": (b"", r"holds no records"),
}


@pytest.mark.parametrize("name, data, pattern", [(k, *v) for k, v in TABLE_ERRORS.items()], ids=TABLE_ERRORS)
def test_malformed_tables_name_the_file_and_line(tmp_path, name, data, pattern):
    path = tmp_path / name
    path.write_bytes(data)
    raises_data_error(lambda: read_table(path), re.escape(str(path)) + ".*" + pattern)


def test_line_pairs_that_are_not_utf8_name_the_line(tmp_path):
    (tmp_path / "a.src").write_bytes(b"\xef\xbb\xbfone\ntwo\n")
    (tmp_path / "a.tgt").write_bytes(b"un\ndeux \x80\n")
    raises_data_error(
        lambda: read_line_pairs(tmp_path / "a.src", tmp_path / "a.tgt"), r"a\.tgt line 2, byte 6: b'\\x80'"
    )
    (tmp_path / "a.tgt").write_bytes(b"un\r\ndeux\r\n")
    assert read_line_pairs(tmp_path / "a.src", tmp_path / "a.tgt").to_list() == [
        {"source": "one", "target": "un"},
        {"source": "two", "target": "deux"},
    ]


# ---------------------------------------------------------------- records the tasks refuse
RECORD_ERRORS = {
    "a tag too many": (
        "ner",
        [{"tokens": ["john"], "tags": ["B-PER"]}, {"tokens": ["john", "lives"], "tags": ["B-PER", "O", "O"]}],
        r"record 1 has 2 token\(s\) but 3 tag\(s\); every token needs exactly one tag",
    ),
    "a tag too few": (
        "ner",
        [{"tokens": ["john", "lives"], "tags": ["B-PER"]}],
        r"record 0 has 2 token\(s\) but 1 tag\(s\)",
    ),
    "a None token": (
        "ner",
        [{"tokens": ["john", None], "tags": ["B-PER", "O"]}],
        r"record 0 has tokens=\['john', None\]; tokens must be a list of str",
    ),
    "a string for tokens": (
        "ner",
        [{"tokens": "john lives", "tags": ["B-PER", "O"]}],
        r"record 0 has tokens='john lives'; tokens must be a list of str",
    ),
    "no tokens": (
        "ner",
        [{"tokens": ["john"], "tags": ["B-PER"]}, {"tokens": None, "tags": ["O"]}],
        r"record 1 has no 'tokens' \(None\)",
    ),
    "text=None": (
        "classification",
        [{"text": "i love it", "label": "pos"}, {"text": None, "label": "neg"}],
        r"task 'classification': record 1 has no 'text' \(None\); every record needs one",
    ),
    "text_pair=None": (
        "semantic-matching",
        [{"text": "a cat", "text_pair": None, "label": 1}],
        r"record 0 has no 'text_pair' \(None\)",
    ),
}


@pytest.mark.parametrize("task, records, pattern", RECORD_ERRORS.values(), ids=RECORD_ERRORS)
def test_preprocess_names_the_bad_record(wordpiece, task, records, pattern):
    raises_data_error(lambda: get_task(task).preprocess(records, wordpiece, "bert"), pattern)


def test_a_jsonl_record_without_the_field_is_named(tmp_path, wordpiece):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "i love it", "label": "pos"}\n{"label": "neg"}\n', encoding="utf-8")
    records = read_table(path)
    raises_data_error(
        lambda: get_task("classification").preprocess(records, wordpiece, "bert"), r"record 1 has no 'text'"
    )


# ---------------------------------------------------------------- properties
TEXT = st.text(max_size=12)
RECORDS = st.one_of(
    st.lists(st.fixed_dictionaries({"text": TEXT, "label": TEXT}), min_size=1, max_size=5),
    st.lists(
        st.integers(0, 4).flatmap(
            lambda n: st.fixed_dictionaries(
                {
                    "tokens": st.lists(TEXT, min_size=n, max_size=n),
                    "tags": st.lists(TEXT, min_size=n, max_size=n),
                }
            )
        ),
        min_size=1,
        max_size=5,
    ),
)


@settings(max_examples=30, deadline=None)
@given(records=RECORDS, suffix=st.sampled_from([".jsonl", ".json"]), bom=st.booleans())
def test_json_lines_of_valid_records_round_trip(tmp_path_factory, records, suffix, bom):
    path = tmp_path_factory.mktemp("records") / f"train{suffix}"
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    path.write_bytes(b"\xef\xbb\xbf" * bom + lines.encode("utf-8"))
    assert read_table(path).to_list() == records


# CoNLL tokens and tags hold no whitespace, no line break and no BOM (a token holding spaces is a
# tab-separated file's, see CONLL_READS)
WORD = st.text(st.characters(codec="utf-8").filter(lambda c: not c.isspace() and c != "\ufeff"), min_size=1)
SENTENCES = st.lists(
    st.lists(st.tuples(WORD.filter(lambda w: not w.startswith("-DOCSTART-")), WORD), min_size=1, max_size=5),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(sentences=SENTENCES, separator=st.sampled_from(["\t", " "]), newline=st.sampled_from(["\n", "\r\n"]))
def test_conll_files_round_trip(tmp_path_factory, sentences, separator, newline):
    path = tmp_path_factory.mktemp("conll") / "train.conll"
    blocks = [newline.join(f"{token}{separator}{tag}" for token, tag in sentence) for sentence in sentences]
    path.write_bytes((newline * 2).join(blocks).encode("utf-8"))
    assert read_conll(path).to_list() == [
        {"tokens": [token for token, _ in sentence], "tags": [tag for _, tag in sentence]}
        for sentence in sentences
    ]


def not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@settings(max_examples=80, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=40).filter(not_utf8),
    suffix=st.sampled_from([".jsonl", ".json", ".tsv", ".csv", ".conll"]),
)
def test_bytes_that_are_not_utf8_raise_the_data_error_naming_the_line(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"train{suffix}"
    path.write_bytes(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
    read = read_conll if suffix == ".conll" else read_table
    raises_data_error(lambda: read(path), rf"{re.escape(str(path))} line {line}, byte \d+: .* is not UTF-8")
