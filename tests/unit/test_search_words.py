"""The search word rule (domain/search.py): what the index and the query both cut text into."""

from __future__ import annotations

import random

from domain.search import MAX_WORD, document, prefix_query, words


def test_words_are_casefolded_runs_of_letters_and_digits_of_any_script() -> None:
    assert words("Hello, WORLD! Привет-МИР ёЛКА v2 3.14 e-mail user@example.com") == [
        "hello", "world", "привет", "мир", "ёлка", "v2", "3", "14", "e", "mail", "user",
        "example", "com"]
    assert words("snake_case don't") == ["snake", "case", "don", "t"]
    assert words("ﬁne Straße") == ["fine", "strasse"]  # NFKC, then full case folding
    assert words("и\u0306") == words("й") == ["й"]  # a decomposed letter is one letter
    assert words("!?… — «»") == []


def test_long_words_are_cut_alike_on_both_sides() -> None:
    assert words("a" * 500) == ["a" * MAX_WORD]


def test_no_text_puts_text_search_syntax_into_a_document_or_a_query() -> None:
    rng = random.Random(12)
    alphabet = "aZя'\\:*&|!()<>-_ \t\n\x00%\"‮🙂1"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(30)))
        for word in words(text):
            assert word and word.isalnum(), (text, word)


def test_literals() -> None:
    assert document("Hello hello, мир") == "'hello' 'hello' 'мир'"
    assert prefix_query(["hel", "мир", "hel"]) == "'hel':* & 'мир':*"
