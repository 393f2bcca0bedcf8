"""Write ``semcode/common_terms.py``: how common each frequent word is in code, for the lexical list of a search.

    python scripts/common_terms.py --data /work/train/data      # DIR/pairs.jsonl: python -m encoder.training prepare

A word's share is the share of code snippets that contain it (document frequency), over the training corpus's code
side (``pairs.jsonl``: the pinned PyPI, npm and Debian sources of ``encoder/training/data.py``, eight languages; no
project of the question benchmark is among them). Words as the full-text index reads them: runs of letters and
digits, lower case, with ``semcode.query_terms.stem``. Kept: words in at least ``--min-share`` of the snippets.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from semcode.query_terms import stem  # noqa: E402

TERM = re.compile(r"[^\W_]+")
OUT = ROOT / "semcode" / "common_terms.py"


def shares(pairs: Path) -> tuple[int, collections.Counter[str]]:
    df: collections.Counter[str] = collections.Counter()
    n = 0
    with pairs.open(encoding="utf-8") as f:
        for line in f:
            code = json.loads(line)["code"]
            df.update({stem(t.lower()) for t in TERM.findall(code)})
            n += 1
    return n, df


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="the training data folder (with pairs.jsonl)")
    p.add_argument("--min-share", type=float, default=0.005, help="keep words in at least this share of snippets")
    args = p.parse_args()
    n, df = shares(args.data / "pairs.jsonl")
    kept = [(w, c / n) for w, c in sorted(df.items(), key=lambda x: (-x[1], x[0])) if c / n >= args.min_share]
    lines = [f'    "{w}": {s:.4f},' for w, s in kept if w.isascii()]
    OUT.write_text(
        '"""How common a word is in code: the share of code snippets that contain it (written by\n'
        f"``scripts/common_terms.py`` from {n:,} snippets of the training corpus; words in at least\n"
        f'{args.min_share:.1%} of them, as ``semcode.query_terms.stem`` gives them). Do not edit."""\n\n'
        "SHARES: dict[str, float] = {\n" + "\n".join(lines) + "\n}  # fmt: skip\n",
        encoding="utf-8",
    )
    print(f"{OUT}: {len(lines)} words from {n:,} snippets")


if __name__ == "__main__":
    main()
