#!/usr/bin/python3
"""textfeat_reference.py - the text featurizer, version 2 (docs/text.md),
written again from the specification in Python (standard library only), to
check the C implementation (common/textfeat.c) against it.

    tools/textfeat_reference.py --vectors > tests/data/textfeat-vectors.json

writes, for each of a fixed list of texts, the sparse feature vector at a
small dim (raw signed counts, and TF-normalised without IDF), which
tests/test_textfeat.c compares with the C output.  Python's unicodedata
(NFKC, str.casefold) stands in for utf8proc; the texts are chosen where the
two agree (no characters new in recent Unicode versions).
"""
import json
import math
import sys
import unicodedata

FNV_OFFSET, FNV_PRIME = 2166136261, 16777619


def fnv(h, data):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & 0xFFFFFFFF
    return h


def fmix(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    h ^= h >> 16
    return h


def ngram_hash(kind, s):
    return fmix(fnv(fnv(FNV_OFFSET, kind.encode()), s.encode("utf-8")))


def unspaced(cp):
    return any(a <= cp <= b for a, b in (
        (0x0E00, 0x0EFF), (0x0F00, 0x0FFF), (0x1000, 0x109F), (0x1780, 0x17FF),
        (0x3040, 0x30FF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
        (0xF900, 0xFAFF), (0x20000, 0x3134F)))


def is_space(ch):
    return unicodedata.category(ch) in ("Zs", "Zl", "Zp", "Cc")


def is_content(ch):
    return unicodedata.category(ch)[0] in "LNS"


def is_word_char(ch):
    if ch in "'\u2019":
        return True
    c = unicodedata.category(ch)
    return (c[0] in "LMN" or c == "Pc") and not unspaced(ord(ch))


def normalise(text):
    # utf8proc: COMPAT + CASEFOLD + IGNORE (default ignorables: here the
    # format characters) + COMPOSE
    s = unicodedata.normalize("NFKD", text).casefold()
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", s)


def features(text, dim=16, char=(1, 3), word_max=2, raw=False, sublinear=True):
    if "\0" in text:
        raise ValueError("NUL")
    seq = [" "]
    content = False
    for ch in normalise(text):
        if is_space(ch):
            if seq[-1] != " ":
                seq.append(" ")
            continue
        content |= is_content(ch)
        seq.append(ch)
    if seq[-1] != " ":
        seq.append(" ")
    if not content:
        raise ValueError("no letter, digit or symbol")
    acc = {}

    def add(h):
        b = h & (dim - 1)
        acc[b] = acc.get(b, 0) + (-1 if h >> 31 else 1)

    lo, hi = char
    for i in range(len(seq)):
        for n in range(max(lo, 1), hi + 1):
            if i + n > len(seq) or hi == 0:
                break
            if n == 1 and seq[i] == " ":
                continue
            add(ngram_hash("c", "".join(seq[i:i + n])))
    words, i = [], 0
    while i < len(seq):
        if not is_word_char(seq[i]):
            i += 1
            continue
        j = i
        while j < len(seq) and is_word_char(seq[j]):
            j += 1
        w = "".join(seq[i:j])
        if any(c not in "'\u2019" for c in w):
            words.append(w)
        i = j
    for w in range(len(words)):
        for n in range(1, word_max + 1):
            if w + n > len(words):
                break
            add(ngram_hash("w", " ".join(words[w:w + n])))
    out = {b: float(c) for b, c in acc.items() if c != 0}
    if raw:
        return out
    for b, c in out.items():
        a = abs(c)
        if sublinear:
            a = 1 + math.log(a)
        out[b] = -a if c < 0 else a
    norm = math.sqrt(sum(v * v for v in out.values()))
    return {b: v / norm for b, v in out.items()}


TEXTS = [
    "Hello, World!",
    "hello world",
    "Don't STOP-me, café 42!",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ１２３",
    "ﬁne ﬂour",
    "Straße STRASSE",
    "e\u0301te\u0301 été",
    "soft\u00adhyphen zero\u200bwidth",
    "这是一个正面的评论",
    "质量还不错，内容只适合边上厕所便消遣了",
    "これはペンです。とても良い！",
    "ภาษาไทยไม่มีช่องว่าง",
    "Привет, мир! ПРИВЕТ",
    "مرحبا بالعالم",
    "  tabs\tand\nnewlines   ",
    "a",
    "😀😀 great 👍",
    "aaa aaa aaa aaa",
    "x" * 40,
]


def main():
    if "--vectors" not in sys.argv:
        print(__doc__)
        return 2
    cases = []
    for t in TEXTS:
        for dim in (16, 4096):
            cases.append({
                "text": t, "dim": dim,
                "raw": sorted([b, v] for b, v in features(t, dim, raw=True).items()),
                "tf": sorted([b, round(v, 7)] for b, v in features(t, dim).items()),
            })
    json.dump({"hashes": {k + ":" + s: ngram_hash(k, s) for k, s in
                          (("c", "a"), ("c", " a"), ("c", "ab"), ("w", "hello"),
                           ("w", "hello world"), ("c", "好"), ("c", "正面"))},
               "cases": cases}, sys.stdout, ensure_ascii=False, separators=(",", ":"))
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
