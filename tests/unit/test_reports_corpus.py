"""The detector over syzkaller's report corpus: the issue's floors (skips without it)."""


import pytest

from harness.shared import shared_path

from harness import corpus as corpus_eval


@pytest.fixture(scope="module")
def result():
    return corpus_eval.evaluate(str(shared_path("corpus", "syzkaller-linux-report")))


def test_corpus_is_substantial(result):
    assert result["positives"] >= 500 and result["negatives"] >= 20


def test_detection_and_false_positives(result):
    assert result["detection_rate"] >= 0.99
    assert result["false_positives"] == 0


def test_title_agreement(result):
    assert result["title_exact_rate"] >= 0.85
    assert result["noncorrupted_exact_rate"] >= 0.92
    assert result["title_or_alt_rate"] >= 0.90


def test_type_and_corrupted_agreement(result):
    assert result["type_rate"] >= 0.92
    assert result["corrupted_rate"] >= 0.85


def test_streamed_equals_whole_log(result):
    assert result["stream_equal_rate"] == 1.0, [f for f in result["failures"]
                                                if f[1] == "stream!=whole"]


def test_throughput(result):
    # CPU time of this process (other engineers' load does not count)
    assert result["lines_per_s_whole"] >= 50000
    assert result["lines_per_s_stream"] >= 50000


def test_dedup_by_signature(result):
    # same signature <=> same expected TITLE, over pairs of files
    assert result["dedup_precision"] >= 0.98
    assert result["dedup_recall"] >= 0.90


def test_netconsole_without_timestamps(result):
    # plain netconsole without printk.time: no prefixes, no caller tags
    assert result["stripped_detection_rate"] >= 0.98
    assert result["stripped_fp"] == 0
