"""`embedfast eval`: score vectors on word-pair similarity and analogy files."""
from __future__ import annotations

import argparse

from ._args import add_command, positive_int


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the evaluation commands to ``sub``."""
    p = add_command(sub, "eval", eval_command, help="score word vectors on word-pair similarity and analogy files",
                    description="Score VECTORS (any format embedfast.load_vectors reads) on word-pair similarity "
                    "files (Spearman/Pearson) and an analogy file (accuracy). With no file given, uses the standard "
                    "WordSim353, SimLex-999 and Google analogy files from gensim's test data.")
    p.add_argument("vectors", metavar="VECTORS", help="vectors file (GloVe, word2vec text/binary, native)")
    p.add_argument("--similarity", metavar="FILE", action="append", default=[],
                   help="word-pair file 'word1<TAB>word2<TAB>score' ('#' comments); repeat for several")
    p.add_argument("--analogy", metavar="FILE", default=None, help="analogy file in questions-words.txt format")
    p.add_argument("--restrict-vocab", metavar="N", type=positive_int, default=300000,
                   help="only the first N (most frequent) words count as known and as answers (default 300000)")
    p.add_argument("--method", choices=("3cosadd", "3cosmul"), default="3cosadd", help="analogy method")
    p.add_argument("--case-sensitive", action="store_true", help="match words exactly (default: ignore case)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")


def _files(args: argparse.Namespace) -> tuple[list, object]:
    """The similarity files and the analogy file (the standard ones when none is given), checked readable."""
    from .._io import check_input_file
    from ..data import evaluation_file

    sim_files, ana_file = list(args.similarity), args.analogy
    if not sim_files and ana_file is None:
        sim_files = [evaluation_file("wordsim353.tsv"), evaluation_file("simlex999.txt")]
        ana_file = evaluation_file("questions-words.txt")
    for f in sim_files + ([ana_file] if ana_file else []):
        check_input_file(f, "evaluation file")
    return sim_files, ana_file


def eval_command(args: argparse.Namespace) -> int:
    """`embedfast eval VECTORS [--similarity FILE ...] [--analogy FILE]`."""
    import json

    from .. import evaluate, load_vectors

    sim_files, ana_file = _files(args)
    vectors = load_vectors(args.vectors)
    ci = not args.case_sensitive
    out: dict = {"vectors": args.vectors, "words": len(vectors.words), "similarity": {}, "analogy": None}
    for f in sim_files:
        r = evaluate.evaluate_word_pairs(vectors, f, restrict_vocab=args.restrict_vocab, case_insensitive=ci)
        r.pop("oov_pairs")
        out["similarity"][f] = r
    if ana_file:
        r = evaluate.evaluate_analogies(vectors, ana_file, restrict_vocab=args.restrict_vocab, method=args.method,
                                        case_insensitive=ci)
        out["analogy"] = {"file": ana_file, **r}
    if args.json:  # strict JSON: NaN / inf (a correlation of constant scores) are written as null
        print(json.dumps(_json_safe(out), indent=1, allow_nan=False))
    else:
        _print(out, args.restrict_vocab)
    return 0


def _print(out: dict, restrict_vocab: int) -> None:
    import os

    print(f"{out['vectors']}: {out['words']} words, restrict_vocab={restrict_vocab}")
    for f, r in out["similarity"].items():
        print(f"  {os.path.basename(f):<24} spearman {r['spearman']:.4f}  pearson {r['pearson']:.4f}  "
              f"pairs {r['used']}/{r['pairs']} (oov {r['oov']}, {100 * r['oov_ratio']:.1f}%)")
    r = out["analogy"]
    if r:
        print(f"  {os.path.basename(r['file']):<24} {r['method']} accuracy {100 * r['accuracy']:.2f}%  "
              f"correct {r['correct']}/{r['total']}  skipped {r['skipped']} of {r['questions']} (unknown words)")
        for s in r["sections"]:
            acc = "   n/a" if s["total"] == 0 else f"{100 * s['accuracy']:6.2f}%"
            print(f"    {s['section']:<28} {acc}  {s['correct']}/{s['total']}  skipped {s['skipped']}")


def _json_safe(x):
    """``x`` with every non-finite float replaced by None (JSON has no NaN or Infinity)."""
    import math

    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x
