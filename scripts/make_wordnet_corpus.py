r"""Build ``monitor/data/wordnet_glosses.txt.gz`` and ``monitor/data/WORDNET_LICENSE`` from WordNet 3.0.

Source: the Debian package ``wordnet-base`` (version 1:3.0-37 when the shipped
file was made), i.e. Princeton WordNet 3.0 under the WordNet 3.0 license::

    DEBIAN_FRONTEND=noninteractive apt-get install -y wordnet-base
    .venv/bin/python scripts/make_wordnet_corpus.py

Subset rule (the shipped file is exactly what this script writes):

1. Every synset line of ``data.noun``, ``data.verb``, ``data.adj`` and
   ``data.adv`` (lines not starting with two spaces: those are the license
   header) holds its gloss after the first ``" | "``.
2. The definition is the gloss up to its first double quote (WordNet puts
   usage examples in double quotes after ``;`` or ``:``); backquotes are
   removed; dangling separators and lead-ins (``; : , (``, ``e.g.``,
   ``i.e.``, ``as in``) left at its end are stripped; whitespace is collapsed
   and the text lower-cased.
3. A definition is kept when its parentheses balance and it has between
   :data:`MIN_TOKENS` and :data:`MAX_TOKENS` word tokens
   (``metrics_core.text.tokenize``, the project's tokenizer).
4. Exact duplicates are removed and the distinct definitions sorted;
   ``numpy.random.default_rng(SEED).choice(len(distinct), N_GLOSSES,
   replace=False)`` picks the subset, written one per line in sorted order to
   a gzip file with mtime 0 (so equal inputs give byte-identical output).

The license file is the first two paragraphs of the package's
``/usr/share/doc/wordnet-base/copyright`` (header and the ``Files: *``
stanza with the WordNet 3.0 license), copied verbatim.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from metrics_core.text import tokenize  # noqa: E402

N_GLOSSES = 20_000
SEED = 20_060_301  # WordNet 3.0's release year and a date; any fixed value would do.
MIN_TOKENS = 3
MAX_TOKENS = 40
POS_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")

# Repeated until nothing changes: "appropriately (e.g.," -> "appropriately".
_TRAILING_JUNK = re.compile(r"(?:[\s;:,(]+|\b(?:e\.g\.?|i\.e\.?|as in)\s*)$")


def clean_definition(gloss: str) -> str:
    r"""The definition part of one WordNet gloss, cleaned (rule 2 of the module docstring).

    Args:
        gloss: the text after ``" | "`` on a synset line.

    Example:
        >>> clean_definition('a whole (a thing or person) of the same kind; "lard was used"  ')
        'a whole (a thing or person) of the same kind'
        >>> clean_definition('a summary list; as in e.g. "a news roundup"')
        'a summary list'
    """
    text = gloss.split('"', 1)[0].replace("`", "")
    previous = None
    while previous != text:
        previous, text = text, _TRAILING_JUNK.sub("", text)
    return " ".join(text.split()).lower()


def keep_definition(definition: str) -> bool:
    """Rule 3: balanced parentheses and MIN_TOKENS..MAX_TOKENS word tokens."""
    if definition.count("(") != definition.count(")"):
        return False
    return MIN_TOKENS <= len(tokenize(definition)) <= MAX_TOKENS


def read_definitions(wordnet_dir: Path) -> list[str]:
    """Rules 1-4 up to the subset: the sorted distinct kept definitions of all four POS files."""
    definitions = set()
    for name in POS_FILES:
        with open(wordnet_dir / name, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("  ") or " | " not in line:
                    continue  # license header
                definition = clean_definition(line.split(" | ", 1)[1])
                if keep_definition(definition):
                    definitions.add(definition)
    return sorted(definitions)


def license_text(copyright_path: Path) -> str:
    """The first two paragraphs (blank-line separated) of the Debian copyright file, verbatim."""
    text = copyright_path.read_text(encoding="utf-8")
    paragraphs = text.split("\n\n")
    if len(paragraphs) < 2 or "License: WordNet3.0" not in paragraphs[1]:
        raise ValueError(f"{copyright_path}: expected the WordNet3.0 stanza as its second paragraph")
    return "\n\n".join(paragraphs[:2]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--copyright", type=Path, default=Path("/usr/share/doc/wordnet-base/copyright"))
    parser.add_argument("--out-dir", type=Path, default=REPO / "monitor" / "data")
    parser.add_argument("--n", type=int, default=N_GLOSSES)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)

    distinct = read_definitions(args.wordnet_dir)
    if args.n > len(distinct):
        raise ValueError(f"--n: expected at most {len(distinct)} (distinct definitions), got {args.n}")
    chosen = np.random.default_rng(args.seed).choice(len(distinct), args.n, replace=False)
    subset = sorted(distinct[i] for i in chosen)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    payload = ("\n".join(subset) + "\n").encode("ascii")
    with open(args.out_dir / "wordnet_glosses.txt.gz", "wb") as raw:
        # filename="" and mtime=0 keep the gzip header free of build-time details.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            gz.write(payload)
    (args.out_dir / "WORDNET_LICENSE").write_text(license_text(args.copyright), encoding="utf-8")
    print(f"{len(distinct)} distinct definitions, wrote {len(subset)} to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
