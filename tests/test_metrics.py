"""Task metrics on examples small enough to check by hand."""

import pytest

from tasks.metrics import classification_scores, entity_scores, rouge_scores, spearman


def test_rouge_chinese_counts_characters():
    # characters: prediction 我 爱 北 京, reference 我 爱 上 海 -> 2 of 4 unigrams, 1 of 3 bigrams, LCS 2
    scores = rouge_scores(["我爱北京"], ["我爱上海"])
    assert scores["rouge1"] == pytest.approx(0.5)
    assert scores["rouge2"] == pytest.approx(1 / 3)
    assert scores["rougeL"] == pytest.approx(0.5)


def test_rouge_default_tokenizer_would_drop_chinese():
    assert rouge_scores(["我爱北京"], ["我爱上海"], language="en")["rouge1"] == 0.0


def test_rouge_english_words():
    # 3 of 3 predicted words in a 6-word reference: P=1, R=1/2; bigrams P=1, R=2/5
    scores = rouge_scores(["The cat sat"], ["the cat sat on the mat"])
    assert scores["rouge1"] == pytest.approx(2 / 3)
    assert scores["rouge2"] == pytest.approx(2 * 0.4 / 1.4)
    assert scores["rougeL"] == pytest.approx(2 / 3)


def test_rouge_averages_over_pairs():
    scores = rouge_scores(["我爱北京", "abc"], ["我爱上海", "abc"], language="zh")
    assert scores["rouge1"] == pytest.approx(0.75)


def test_seqeval_one_right_one_wrong_type_one_missed():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG", "O", "O"]]
    scores = entity_scores(predicted, gold)
    assert scores["precision"] == pytest.approx(1 / 2)
    assert scores["recall"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx(0.4)


def test_seqeval_default_mode_is_conlleval():
    # conlleval: an I- tag after O opens an entity, so I-PER alone is a PER entity
    assert entity_scores([["O", "I-PER"]], [["O", "B-PER"]])["f1"] == pytest.approx(1.0)


def test_seqeval_bioes_is_strict():
    gold = [["S-PER", "O", "B-LOC", "E-LOC"]]
    predicted = [["S-PER", "O", "B-LOC", "I-LOC"]]  # the LOC is not closed by E-: no entity
    scores = entity_scores(predicted, gold, scheme="BIOES")
    assert scores == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3})


def test_accuracy_and_macro_f1():
    scores = classification_scores([0, 1, 1, 0], [0, 1, 0, 0])
    assert scores["accuracy"] == pytest.approx(0.75)
    # class 0: P=1, R=2/3 -> F=0.8; class 1: P=1/2, R=1 -> F=2/3
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)


def test_spearman_of_monotone_scores_is_one():
    assert spearman([0.1, 0.5, 0.9], [1, 2, 30]) == pytest.approx(1.0)


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge_scores(["a", "b"], ["a"])
