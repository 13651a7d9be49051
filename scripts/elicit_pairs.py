#!/usr/bin/env python3
"""Peer reports for information elicitation: two dictionaries written independently define
the same nouns. Pairs each headword's first noun sense in WordNet 3.0 (Debian dict-wn) with
its first noun sense in GCIDE (Debian dict-gcide), cleaned of markup, cross-references,
pronunciations, etymologies, examples and citations.

Reads the installed dictd files (/usr/share/dictd/{wn,gcide}.{index,dict.dz}; dictzip is
gzip-compatible). Python 3 standard library only; the output is deterministic (sorted by
word). Writes JSON lines {"word", "report" (WordNet), "peer" (GCIDE), "source"}.
GCIDE is GPL and WordNet has its own licence: the output is generated at build/test time
into an ignored path, never committed.

usage: elicit_pairs.py --out pairs.jsonl [--dict-dir /usr/share/dictd] [--max-words 40]
"""

import argparse
import gzip
import json
import os
import re
import sys

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64_number(s):
    n = 0
    for c in s:
        n = n * 64 + B64.index(c)
    return n


def read_dict(directory, name):
    """(headword, entry text) for every index line, in index order."""
    index = os.path.join(directory, name + ".index")
    data_path = os.path.join(directory, name + ".dict.dz")
    for path in (index, data_path):
        if not os.path.exists(path):
            sys.exit(f"elicit_pairs.py: {path} is missing (install Debian's dict-wn and dict-gcide)")
    with gzip.open(data_path) as f:
        data = f.read()
    out = []
    with open(index, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3:
                continue
            word, off, length = parts
            start = b64_number(off)
            out.append((word, data[start : start + b64_number(length)].decode("utf-8", "replace")))
    return out


WORD = re.compile(r"^[a-z]{3,}$")


def squash(text):
    return re.sub(r"\s+", " ", text).strip()


def strip_brackets(text):
    """Removes [...] spans, nested ones included (GCIDE's etymologies hold [a^]-style
    pronunciation marks)."""
    out, depth = [], 0
    for c in text:
        if c == "[":
            depth += 1
        elif c == "]" and depth:
            depth -= 1
        elif not depth:
            out.append(c)
    return "".join(out)


def clean(text, max_words):
    """A definition's first clause, plain: no braces, brackets, quotes or trailing stops."""
    text = re.sub(r"\{([^}]*)\}", r"\1", text)  # cross-reference markup, keep the word
    text = strip_brackets(text)  # [syn: ...], [1913 Webster], [Obs.], etymologies
    text = squash(text)
    text = text.split(";")[0]  # first clause; examples and alternatives follow ';'
    text = re.sub(r"\s*--.*$", "", text)  # "-- Shak." citations
    text = re.sub(r"\.\s+See .*$", "", text)  # "See X, under Y" pointers
    text = squash(text).strip(" .,:")
    words = text.split()
    if len(words) < 2 or len(words) > max_words or any(c in text for c in '"{}[]\\'):
        return None
    return text


def wordnet_noun(entry):
    """WordNet's first noun sense: the text after 'n 1:' (or 'n :' for one sense)."""
    m = re.search(r"^\s+n (?:1: |: )(.*?)(?=^\s+(?:\d+:|[a-z]+ (?:1: |: ))|\Z)", entry, re.M | re.S)
    if not m:
        return None
    return re.sub(r';?\s*"[^"]*"', "", m.group(1))  # drop quoted examples


GCIDE_HEAD = re.compile(r"^(\S[^\\]*?)\s*\\[^\\]*\\")


def gcide_noun(entry, word):
    """GCIDE's first noun sense of an entry headed by `word`: sense '1.' if numbered, else
    the text after the header's part of speech, label and etymology."""
    head = GCIDE_HEAD.match(entry)
    if not head or head.group(1).lower() != word:
        return None
    rest = entry[head.end() :]
    pos = re.match(r"\s*(?:\([^)]*\)\s*)?,\s*n\.(?:\s|,|$)", rest)
    if not pos:
        return None
    body = rest[pos.end() :]
    numbered = re.search(r"^\s+1\.\s(.*?)(?=^\s+2\.\s|^\s*\[|^\s*$|^\s+Note:|\Z)", body, re.M | re.S)
    if numbered:
        text = numbered.group(1)
    else:
        # Header leftovers: plural forms, labels and the etymology in brackets.
        body = re.sub(r"^\s*(?:pl\.[^\n]*\n|\([^)]*\)\s*)*", "", body)
        if body.lstrip().startswith("["):
            body = strip_brackets(body.lstrip())
        para = re.split(r"\n\s*\n|\[1913 Webster\]|\[Webster", body)[0]
        text = para
    text = re.sub(r"^\s*\((?:[^)]*)\)\s*", "", text)  # a leading domain label, e.g. (Zool.)
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--dict-dir", default="/usr/share/dictd")
    ap.add_argument("--max-words", type=int, default=40)
    args = ap.parse_args()

    wn = {}
    for word, entry in read_dict(args.dict_dir, "wn"):
        if WORD.match(word) and word not in wn:
            d = wordnet_noun(entry)
            d = d and clean(d, args.max_words)
            if d:
                wn[word] = d
    gc = {}
    for word, entry in read_dict(args.dict_dir, "gcide"):
        lw = word.lower()
        if lw in wn and lw not in gc and WORD.match(lw):
            d = gcide_noun(entry, lw)
            d = d and clean(d, args.max_words)
            if d:
                gc[lw] = d
    words = sorted(w for w in gc if wn[w].lower() != gc[w].lower())
    with open(args.out, "w", encoding="utf-8") as f:
        for w in words:
            line = {"word": w, "report": wn[w], "peer": gc[w], "source": "report: WordNet 3.0; peer: GCIDE"}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"elicit_pairs.py: {len(words)} words defined by both, written to {args.out}", file=sys.stderr)
    if len(words) < 1000:
        sys.exit(f"elicit_pairs.py: only {len(words)} pairs (expected at least 1,000)")


if __name__ == "__main__":
    main()
