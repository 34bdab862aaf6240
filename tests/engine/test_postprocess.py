"""What the user sees of generated text: stop sequences, special tokens, whitespace,
multi-byte characters split across tokens."""

from together_llm.engine.postprocess import Detokenizer, OutputFilter


def stream(filter_, pieces):
    shown = [filter_.feed(p) for p in pieces]
    if not filter_.stopped:
        shown.append(filter_.finish())
    return "".join(shown)


def test_stop_sequence_split_across_pieces_is_cut_and_never_shown():
    out = OutputFilter(stop=["###"])
    shown = []
    for piece in ["Paris is", " the capital.", "#", "#", "# and more"]:
        shown.append(out.feed(piece))
        assert "#" not in "".join(shown)
    assert "".join(shown) == "Paris is the capital."
    assert out.stopped


def test_text_that_only_looks_like_a_stop_start_is_released():
    assert stream(OutputFilter(stop=["END"]), ["A", "E", "N", "D", "X"]) == "A"
    assert stream(OutputFilter(stop=["END"]), ["A", "EN", "x"]) == "AENx"


def test_earliest_of_several_stops_wins():
    assert stream(OutputFilter(stop=["\n\n", "User:"]), ["one User: two\n\nthree"]) == "one"


def test_leaked_special_tokens_and_outer_whitespace_are_removed():
    out = OutputFilter(special_texts=["<|im_end|>"])
    assert stream(out, ["\n  Hello", "<|im_", "end|>", " world", "  \r\n"]) == "Hello world"


def test_inner_whitespace_is_kept_and_crlf_becomes_lf():
    assert stream(OutputFilter(), ["a\r\n", "\r\n", "b  c"]) == "a\n\nb  c"


def test_detokenizer_waits_for_a_whole_character():
    # "é" is two bytes; a byte-level tokenizer may put them in two tokens.
    table = {1: b"caf", 2: b"\xc3", 3: b"\xa9", 4: b"!"}
    decode = lambda ids: b"".join(table[i] for i in ids).decode("utf-8", errors="replace")
    detok = Detokenizer(decode)
    pieces = [detok.feed(i) for i in (1, 2, 3, 4)]
    assert pieces == ["caf", "", "é", "!"]


def test_detokenizer_keeps_spaces_that_depend_on_the_previous_token():
    # SentencePiece-style: a word-start marker renders as a space only after other text.
    words = {1: "Hello", 2: "▁world", 3: "▁!"}
    decode = lambda ids: "".join(words[i] for i in ids).replace("▁", " ").lstrip()
    detok = Detokenizer(decode)
    assert "".join(detok.feed(i) for i in (1, 2, 3)) == "Hello world !"
