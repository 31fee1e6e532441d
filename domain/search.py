"""What a searchable word is: one rule for the search read model and for the query.

Words are cut and lowercased here, in Python, not by PostgreSQL's text search parser: that
parser decides what a letter is and how it lowercases by the database's LC_CTYPE (in a C-locale
cluster "Привет" would stay capitalised, so "прив" could not find it), while `str.casefold` is
Unicode's everywhere. A word is a run of letters and digits (NFKC-normalised first, so "ﬁ" is
"fi" and a decomposed "й" one letter); everything else separates words ("e-mail", "don't",
"user@example.com" are several). A word is therefore never empty and never contains a quote,
backslash, space, colon or operator, which is what makes the tsvector and tsquery texts built
below safe to hand to PostgreSQL as they are (`%s::tsvector`, `%s::tsquery`): no input can
inject text search syntax.
"""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"[^\W_]+")  # letters and digits of any script
MAX_WORD = 100  # characters kept of a longer word, on both sides (prefixes still match)


def words(text: str) -> list[str]:
    """The words of a text, casefolded, in order (with repeats)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [word[:MAX_WORD] for word in WORD.findall(folded)]


def document(text: str) -> str:
    """A message's words as a tsvector literal: `'hello' 'world'` (PostgreSQL dedupes)."""
    return " ".join(f"'{word}'" for word in words(text))


def prefix_query(terms: list[str]) -> str:
    """A tsquery literal where every term must begin some word: `'hel':* & 'wor':*`."""
    return " & ".join(f"'{term}':*" for term in dict.fromkeys(terms))
