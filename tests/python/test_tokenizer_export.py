"""Strata's exported tokenizer files load in transformers' AutoTokenizer and agree with Strata's own
tokenizers: the byte tokenizer (259 ids, <bos>/<eos>/<pad> = 256/257/258) round-trips any UTF-8 text,
and the GPT-2 files rebuilt from js-tiktoken's ranks give the same ids as GPT-2."""
import json

from transformers import AutoTokenizer

from conftest import REPO, tsx

TEXTS = [
    "Hello world, this is GPT-2!",
    "To be, or not to be: that is the question.\n  Whether 'tis nobler...",
    "Ünïcödé ✓ — 漢字 and emoji 😀 with  double  spaces\tand tabs",
    "<|endoftext|> is plain text here",
]


def export(workdir):
    tsx(REPO / "tests" / "python" / "write_tokenizers.ts", workdir, *TEXTS)
    return json.loads((workdir / "encodings.json").read_text())


def test_byte_tokenizer_loads_and_round_trips(workdir):
    expected = export(workdir)
    tok = AutoTokenizer.from_pretrained(workdir / "byte")
    assert len(tok) == 259
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (256, 257, 258)
    for text, ids in zip(TEXTS, expected["encodings"]["byte"]):
        assert tok.encode(text) == ids == list(text.encode("utf-8"))
        assert tok.decode(ids) == text
        assert tok.decode([256, *ids, 257, 258], skip_special_tokens=True) == text


def test_gpt2_tokenizer_matches_strata_and_gpt2(workdir):
    expected = export(workdir)
    tok = AutoTokenizer.from_pretrained(workdir / "gpt2")
    assert len(tok) == 50257
    assert tok.eos_token_id == 50256
    assert tok.encode("Hello world") == [15496, 995]
    for text, ids in zip(TEXTS, expected["encodings"]["gpt2"]):
        assert tok.decode(ids) == text
        if "<|endoftext|>" in text:
            # Known difference: transformers reads the literal marker as the special token, Strata's
            # data pipeline treats text as text (documents are separated by the id itself).
            assert tok.encode(text, add_special_tokens=False)[0] == 50256
            assert ids[0] != 50256
        else:
            assert tok.encode(text, add_special_tokens=False) == ids
