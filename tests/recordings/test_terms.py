"""The index holds each chunk's words; a query's patterns must never miss a chunk holding it."""

import random
import string

from recordings.search import term_patterns, terms_of


def test_every_substring_of_a_text_is_found_through_its_terms():
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + " ./-_:=[]\"'é\tÅ"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
        terms = terms_of(text)
        start = rng.randrange(len(text))
        query = text[start:start + rng.randint(1, 30)]
        assert all(pattern in terms for pattern in term_patterns(query)), (text, query)


def test_patterns_follow_word_boundaries():
    assert term_patterns("/etc/shadow") == [" etc ", " shadow"]
    assert term_patterns("--force") == [" force"]
    # Dots stay inside words (as "q"): an address is one word, found whole or in part.
    assert term_patterns("10.0.3.7") == ["10q0q3q7"]
    assert term_patterns("peer=10.0.3.7 ok") == ["peer ", " 10q0q3q7 ", " ok"]
    assert term_patterns("0.3.7") == ["0q3q7"]
    assert terms_of("from 10.0.3.7:22 and 10.0.3.7") == " from 10q0q3q7 22 and "
    assert term_patterns("hado") == ["hado"]
    assert term_patterns("ERROR") == ["error"]
    assert terms_of("ERROR at /etc/shadow, ERROR") == " error at etc shadow "


def test_every_piece_of_dotted_words_is_found_through_its_terms():
    rng = random.Random(11)
    for _ in range(3000):
        parts = [rng.choice(["", "v", "ip=", " ", "..", "a.", "-"]) + ".".join(
            str(rng.randrange(300)) for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(1, 4))]
        text = rng.choice(["", ".", " "]).join(parts) + rng.choice(["", ".", ". ", ":22"])
        terms = terms_of(text)
        start = rng.randrange(len(text))
        query = text[start:start + rng.randint(3, 25)]
        assert all(pattern in terms for pattern in term_patterns(query)), (text, query, term_patterns(query))


def test_a_word_cut_differently_is_not_a_match():
    assert not all(p in terms_of("shadowed") for p in term_patterns("/shadow "))
