"""Tests for seq2seq_jax.data.tokenizers: word and SentencePiece vocabularies."""
import os
import unicodedata

import pytest

from seq2seq_jax.data import tokenizers
from seq2seq_jax.data import vocabulary
from seq2seq_jax.data.tokenizers import JOINER as J
from seq2seq_jax.data.vocabulary import BOS_ID, EOS_ID, PAD_ID, UNK_ID

ENG_FRA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                       "eng-fra", "eng-fra.txt")
needs_eng_fra = pytest.mark.skipif(not os.path.exists(ENG_FRA),
                                   reason="shared eng-fra corpus absent")

FRENCH = ["Où est l’hôtel\u202f? C'est « ici ».", "Je suis déçu\u202f!",
          "Ça coûte 3,50\u00a0€ (environ).", "L'élève a dit\u202f: «\u202fnon\u202f»."]


def _french_lines(count):
  with open(ENG_FRA, encoding="utf-8") as f:
    return [next(f).rstrip("\n").split("\t")[1] for _ in range(count)]


def _spaced(text):
  """Text with every whitespace run (U+202F, U+00A0 included) one space."""
  return " ".join(text.split())


@pytest.mark.parametrize("text, tokens", [
    ("Hello, world!", ["Hello", J + ",", "world", J + "!"]),
    ("l'homme", ["l", J + "'" + J, "homme"]),
    ("Cours\u202f!", ["Cours", "!"]),
    ("3.5 (ok)...", ["3", J + "." + J, "5", "(" + J, "ok", J + ")"] + [J + "."] * 3),
    ("students' books", ["students", J + "'", "books"]),
    ("déçu\u00a0!", ["déçu", "!"]),
])
def test_split_punctuation(text, tokens):
  assert tokenizers.split_punctuation(text) == tokens
  assert tokenizers.join_punctuation(tokens) == _spaced(text)


def test_split_punctuation_composes_decomposed_accents():
  assert tokenizers.split_punctuation("de\u0301ja\u0300") == ["déjà"]


def test_word_vocabulary_counts_orders_and_caps():
  texts = ["b a a", "c a b"]  # a: 3, b: 2, c: 1
  vocab = tokenizers.WordVocabulary.build(texts)
  assert vocab.words == ["a", "b", "c"] and vocab.size == 7
  assert vocab.encode("a b c") == [4, 5, 6]
  assert tokenizers.WordVocabulary.build(texts, min_count=2).words == ["a", "b"]
  assert tokenizers.WordVocabulary.build(texts, max_size=5).words == ["a"]
  with pytest.raises(ValueError, match="max_size"):
    tokenizers.WordVocabulary.build(texts, max_size=4)


def test_word_vocabulary_unknown_words_and_decode_rules():
  vocab = tokenizers.WordVocabulary.build(["Je suis là."])
  ids = vocab.encode("Je suis ici.")
  assert ids[2] == UNK_ID and UNK_ID not in ids[:2] + ids[3:]
  assert vocab.decode(ids) == "Je suis <unk>."
  assert set(vocab.encode("<s> </s> <pad> <unk>")) == {UNK_ID}  # not specials
  je, suis = vocab.encode("Je suis")
  assert vocab.decode([BOS_ID, je, PAD_ID, suis, EOS_ID, je, je]) == "Je suis"
  assert vocab.decode([je, 10_000]) == "Je <unk>"


def test_word_vocabulary_round_trips_accents_and_narrow_spaces():
  vocab = tokenizers.WordVocabulary.build(FRENCH)
  for text in FRENCH:
    ids = vocab.encode(text)
    assert UNK_ID not in ids
    assert vocab.decode(ids) == _spaced(text)


@needs_eng_fra
def test_word_vocabulary_round_trips_real_french():
  lines = _french_lines(3000)
  assert any("\u202f" in line for line in lines)
  vocab = tokenizers.WordVocabulary.build(lines)
  for line in lines:
    assert vocab.decode(vocab.encode(line)) == _spaced(unicodedata.normalize("NFC", line))


def test_whitespace_pretokenizer_for_normalized_text():
  vocab = tokenizers.WordVocabulary.build(["je suis la !"], pretokenizer="whitespace")
  assert vocab.words == ["!", "je", "la", "suis"]
  assert vocab.decode(vocab.encode("je suis la !")) == "je suis la !"
  with pytest.raises(ValueError, match="valid: punctuation, whitespace"):
    tokenizers.WordVocabulary.build(["x"], pretokenizer="moses")


@pytest.fixture(scope="module")
def sentencepiece_texts():
  if os.path.exists(ENG_FRA):
    return _french_lines(2000) + FRENCH
  return FRENCH * 50 + [f"phrase numéro {i} ici" for i in range(200)]


@pytest.fixture(scope="module")
def sentencepiece_vocab(sentencepiece_texts):
  return tokenizers.SentencePieceVocabulary.train(sentencepiece_texts, vocab_size=300)


def test_sentencepiece_special_ids(sentencepiece_vocab):
  sp = sentencepiece_vocab._sp  # pylint: disable=protected-access
  assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]
  assert sentencepiece_vocab.size == 300
  ids = sentencepiece_vocab.encode("Je suis là.")
  assert ids and BOS_ID not in ids and EOS_ID not in ids and PAD_ID not in ids


def test_sentencepiece_round_trip(sentencepiece_vocab, sentencepiece_texts):
  for text in sentencepiece_texts:
    ids = sentencepiece_vocab.encode(text)
    assert UNK_ID not in ids
    # nmt_nfkc: U+202F and U+00A0 become plain spaces; accents are kept.
    assert sentencepiece_vocab.decode(ids) == _spaced(unicodedata.normalize("NFKC", text))
  assert sentencepiece_vocab.decode(sentencepiece_vocab.encode(FRENCH[0])) == (
      "Où est l’hôtel ? C'est « ici ».")


def test_sentencepiece_decode_rules_and_unknown_characters(sentencepiece_vocab):
  ids = sentencepiece_vocab.encode("Je suis")
  assert sentencepiece_vocab.decode([BOS_ID] + ids + [EOS_ID] + ids) == "Je suis"
  assert UNK_ID in sentencepiece_vocab.encode("Je suis 猫")


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_is_deterministic(sentencepiece_texts, model_type):
  first = tokenizers.SentencePieceVocabulary.train(
      sentencepiece_texts, vocab_size=250, model_type=model_type)
  second = tokenizers.SentencePieceVocabulary.train(
      sentencepiece_texts, vocab_size=250, model_type=model_type)
  assert first.fingerprint() == second.fingerprint()
  other = tokenizers.SentencePieceVocabulary.train(
      sentencepiece_texts[:-1], vocab_size=250, model_type=model_type)
  assert other.fingerprint() != first.fingerprint()


def test_sentencepiece_vocab_size_is_a_soft_limit_but_must_cover_characters():
  texts = ["le chat dort", "le chien mange", "un chat mange"]
  vocab = tokenizers.SentencePieceVocabulary.train(texts, vocab_size=1000)
  assert 4 < vocab.size < 1000
  assert vocab.decode(vocab.encode("le chien dort")) == "le chien dort"
  with pytest.raises(ValueError, match="vocab_size=8 is too small"):
    tokenizers.SentencePieceVocabulary.train(texts, vocab_size=8)
  with pytest.raises(ValueError, match="no non-empty training texts"):
    tokenizers.SentencePieceVocabulary.train(["", " "], vocab_size=100)


@pytest.mark.parametrize("kind", ["word", "sentencepiece"])
def test_save_and_load_preserve_fingerprint(tmp_path, sentencepiece_texts, kind):
  vocab = tokenizers.build_vocabulary(kind, sentencepiece_texts, vocab_size=300,
                                      min_count=1, model_type="unigram")
  path = str(tmp_path / "vocab.json")
  vocabulary.save(vocab, path)
  loaded = tokenizers.load(path)
  assert type(loaded) is type(vocab) and loaded.kind == kind
  assert loaded.fingerprint() == vocab.fingerprint()
  assert loaded.size == vocab.size
  for text in FRENCH:
    assert loaded.encode(text) == vocab.encode(text)


def test_fingerprint_depends_on_content():
  a = tokenizers.WordVocabulary(["le", "chat"])
  assert a.fingerprint() == tokenizers.WordVocabulary(["le", "chat"]).fingerprint()
  assert a.fingerprint() != tokenizers.WordVocabulary(["chat", "le"]).fingerprint()
  assert a.fingerprint() != tokenizers.WordVocabulary(
      ["le", "chat"], pretokenizer="whitespace").fingerprint()


def test_from_json_handles_char_and_lists_kinds():
  char = vocabulary.CharVocabulary("abc")
  assert tokenizers.from_json(char.to_json()).fingerprint() == char.fingerprint()
  with pytest.raises(ValueError, match="valid: char, sentencepiece, word"):
    tokenizers.from_json({"kind": "bytes"})


def test_one_registry_loads_every_kind(tmp_path):
  """Files of each kind load through tokenizers.load, with nothing to register."""
  kinds = {
      "char": vocabulary.CharVocabulary("abc"),
      "word": tokenizers.WordVocabulary(["le", "chat"]),
  }
  assert set(tokenizers.KINDS) == {"char", "word", "sentencepiece"}
  for kind, vocab in kinds.items():
    path = str(tmp_path / f"{kind}.json")
    vocabulary.save(vocab, path)
    loaded = tokenizers.load(path)
    assert type(loaded) is tokenizers.KINDS[kind]  # pylint: disable=unidiomatic-typecheck
    assert loaded.fingerprint() == vocab.fingerprint()


def test_build_vocabulary_errors_list_valid_names():
  with pytest.raises(ValueError, match="valid: sentencepiece, word"):
    tokenizers.build_vocabulary("bytes", ["a"], vocab_size=10, min_count=1,
                                model_type="unigram")
  with pytest.raises(ValueError, match="valid: unigram, bpe"):
    tokenizers.build_vocabulary("sentencepiece", ["a b"], vocab_size=10,
                                min_count=1, model_type="char")
  word = tokenizers.build_vocabulary("word", ["a a b"], vocab_size=None,
                                     min_count=2, model_type="unigram")
  assert word.words == ["a"]


def test_the_fast_paths_split_as_the_general_loop_does():
  cases = ["", " ", "!", "_", "a_", "word_ x", "x !", "x  .", "é.",
           "l'homme, non.", "a.b", "…", "Va\u202f!", "12,5.", "x\t",
           "Je vois 3 chats.", "Tom's here!", "Qu'est-ce ?", "ok.."]
  if os.path.exists(ENG_FRA):  # the tutorial's 135,842 pairs, both sides
    with open(ENG_FRA, encoding="utf-8") as f:
      cases += [side for line in f for side in line.rstrip("\n").split("\t")[:2]]
  for text in cases:
    general = tokenizers._split_chunks(  # pylint: disable=protected-access
        unicodedata.normalize("NFC", text).split())
    assert tokenizers.split_punctuation(text) == general, text


@pytest.mark.parametrize("name", sorted(tokenizers.PRETOKENIZERS))
def test_a_pretokenizer_splits_its_chunks_alone(name):
  pretokenizer = tokenizers.PRETOKENIZERS[name]
  texts = ["l'homme, non.", "Tom's here!", "Va\u202f!", "a_b c", "x  y."]
  if os.path.exists(ENG_FRA):
    with open(ENG_FRA, encoding="utf-8") as f:
      texts += [side for line in f for side in line.rstrip("\n").split("\t")[:2]]
  for text in texts:
    by_chunk = [token for chunk in pretokenizer.normalize(text).split()
                for token in pretokenizer.split_chunk(chunk)]
    assert pretokenizer.split(text) == by_chunk, text
