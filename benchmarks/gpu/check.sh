#!/usr/bin/env bash
# The one device check of issue 16: on a GPU machine (torch with CUDA, Triton, nvcc; no network), from the
# repository root:
#
#     bash benchmarks/gpu/check.sh            # logs and tables under $OUT (default: ./gpu-out)
#
# 1. env       GPU, driver, Python / torch / Triton / nvcc versions, which Python packages are missing
# 2. build     the extension with the CUDA kernels against this machine's torch, in place (MAX_JOBS=16,
#              EMBEDFAST_CUDA=1, sm_90, no build isolation, nothing installed); ptxas register / spill report
# 3. cuda      pytest -m gpu on tests/test_*_cuda.py (CUDA vs CPU ops; EMBEDFAST_REQUIRE_CUDA=1: no skipping)
# 4. gather    benchmarks/gpu/bench_gather.py (CUDA, Triton, compile fullgraph, reduce-overhead, pure PyTorch)
# 5. sgns      benchmarks/gpu/bench_sgns.py (words/s: CUDA, Triton, pure PyTorch, CPU)
# 5b. subword  benchmarks/gpu/bench_subword.py (issue 13: the Triton sub-word skip-gram kernel against the CPU op,
#              then words/s of both; exit 1 when they differ -- embedfast._backend.TRITON_UNVERIFIED until it passes)
# 6. memcheck  compute-sanitizer memcheck on benchmarks/gpu/sanitize_cases.py
# 7. triton    pytest -m gpu on the Triton tests (compiled kernels on CUDA tensors; the sub-word kernel's included)
# 8. racecheck compute-sanitizer racecheck on the same small cases
# 9. quality   CUDA vs CPU training on the embedded corpus (WS353, SimLex, analogy)
#
# The whole run stops itself after CHECK_SECONDS (default 340, under 6 minutes); every step has its own limit
# (times CHECK_LIMIT_SCALE, default 1),
# shortened to what is left, and a step that no longer fits is skipped (and says so). $OUT/summary.md lists each
# step with its exit status and time; a failing step does not stop the later ones. CHECK_STEPS="build triton ..."
# runs only the steps named (a second run for what the first had no time left for). Python packages the machine
# lacks and that are pure Python (pytest and its dependencies, tqdm) are taken from build/gpu-pylib when it was
# carried along, the evaluation files from bench-data/eval (benchmarks/gpu/README.md); nothing is downloaded.
set -uo pipefail

CHECK_SECONDS=${CHECK_SECONDS:-340}
if [ -z "${EMBEDFAST_CHECK_INNER:-}" ]; then
  export EMBEDFAST_CHECK_INNER=1 EMBEDFAST_CHECK_START=$(date +%s)
  exec timeout --kill-after=5 "$CHECK_SECONDS" bash "$0" "$@"
fi

ROOT=$(pwd)
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
DRY=${CHECK_DRY_RUN:-0}  # 1: the CPU dry run (no GPU steps; the bench scripts on the CPU)
DEADLINE=$((EMBEDFAST_CHECK_START + CHECK_SECONDS - 10))
SUMMARY=$OUT/summary.md
echo "| step | exit | seconds | log |" > "$SUMMARY"
echo "|---|---|---|---|" >> "$SUMMARY"

export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1 MAX_JOBS=${MAX_JOBS:-16} EMBEDFAST_CUDA=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export EMBEDFAST_PTXAS_VERBOSE=1
[ "$DRY" = 1 ] || export EMBEDFAST_REQUIRE_CUDA=1  # on the GPU machine a CUDA test may fail, never skip

# step NAME SECONDS COMMAND...: runs COMMAND with a limit of min(SECONDS, time left), output in $OUT/NAME.log
step() {
  local name=$1 limit=$2
  shift 2
  if [ -n "${CHECK_STEPS:-}" ] && [[ " $CHECK_STEPS " != *" $name "* ]]; then
    echo "| $name | not selected (CHECK_STEPS) | 0 | - |" >> "$SUMMARY"
    return 0
  fi
  local left=$((DEADLINE - $(date +%s)))
  if [ "$left" -lt 15 ]; then
    echo "| $name | skipped: ${left}s left | 0 | - |" >> "$SUMMARY"
    echo "== $name: skipped (${left}s left)"
    return 0
  fi
  limit=$((limit * ${CHECK_LIMIT_SCALE:-1}))  # >1 for a slow machine (the CPU dry run on a shared box)
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s)"
  local t0=$(date +%s)
  timeout --kill-after=5 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local dt=$(($(date +%s) - t0))
  [ "$rc" -eq 124 ] && rc="124 (timed out)"
  echo "| $name | $rc | $dt | $name.log |" >> "$SUMMARY"
  echo "   exit $rc after ${dt}s; last lines:"
  tail -n 4 "$OUT/$name.log" | sed 's/^/   /'
}

env_step() {
  nvidia-smi || true
  $PY - <<'EOF'
import importlib, platform, sys
print("python", platform.python_version(), sys.executable)
for m in ("torch", "triton", "numpy", "tqdm", "pytest", "ninja", "setuptools", "gensim"):
    try:
        mod = importlib.import_module(m)
        print(m, getattr(mod, "__version__", "?"))
    except Exception as e:
        print(m, "MISSING", type(e).__name__)
import torch
print("torch.version.cuda", torch.version.cuda, "| cuda available", torch.cuda.is_available(),
      "| devices", torch.cuda.device_count())
if torch.cuda.is_available():
    print(torch.cuda.get_device_name(), torch.cuda.get_device_capability())
EOF
  command -v nvcc && nvcc --version | tail -n 2
  command -v compute-sanitizer || ls "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer"
  nproc
}

# pure-Python packages this machine lacks, from build/gpu-pylib (carried along), first on PYTHONPATH
if [ -d "$ROOT/build/gpu-pylib" ]; then
  FALLBACK=$OUT/.pylib
  rm -rf "$FALLBACK" && mkdir -p "$FALLBACK"
  for pkg in pytest _pytest pluggy iniconfig packaging pygments tqdm; do
    if ! $PY -c "import $pkg" 2>/dev/null && [ -e "$ROOT/build/gpu-pylib/$pkg" ]; then
      ln -s "$ROOT/build/gpu-pylib/$pkg" "$FALLBACK/$pkg"
      echo "using the carried $pkg"
    fi
  done
  for f in "$ROOT"/build/gpu-pylib/py.py; do [ -e "$f" ] && ! $PY -c "import py" 2>/dev/null && ln -s "$f" "$FALLBACK/"; done
  export PYTHONPATH=$PYTHONPATH:$FALLBACK
fi

# the evaluation files of the quality step, when gensim (which ships them) is missing
if [ -d "$ROOT/bench-data/eval" ] && ! $PY -c "import gensim" 2>/dev/null; then
  export EMBEDFAST_EVAL_DIR=$ROOT/bench-data/eval
fi
export -f env_step
export PY
SANITIZER=$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")
PYTEST=($PY -m pytest -p no:cacheprovider -q -m gpu -rfEs)
SMALL_GATHER=()
SMALL_SGNS=()
SMALL_SUBWORD=()
SUBWORD_ENV=()
if [ "$DRY" = 1 ]; then
  SMALL_SUBWORD=(--device cpu --tokens 300 --baseline-tokens 300 --vocab 300 --buckets 5000 --check-cases 2
    --check-sentences 2)
  SUBWORD_ENV=(env TRITON_INTERPRET=1)  # the dry run runs the Triton kernel in the interpreter
  SMALL_GATHER=(--device cpu --V 2000 --D 60 --N 4096 --reps 3 --copy-mb 64)
  SMALL_SGNS=(--device cpu --tokens 300000 --vocab 5000 --chunk 100000 --baseline-tokens 100000)
fi

step env 20 bash -c env_step
if [ "$DRY" = 1 ]; then
  echo "| build | skipped: dry run | 0 | - |" >> "$SUMMARY"
else
  step build 170 bash -c "$PY setup.py build_ext --inplace 2>&1 | tee '$OUT/build-raw.log'; rc=\${PIPESTATUS[0]}; \
    grep -nE '(: warning|warning #[0-9]|ptxas warning)' '$OUT/build-raw.log' > '$OUT/warnings.txt'; \
    echo \"compiler warnings: \$(wc -l < '$OUT/warnings.txt')\"; \
    $PY benchmarks/gpu/ptxas_report.py '$OUT/build-raw.log' > '$OUT/ptxas.md'; exit \$rc"
fi
step cuda 80 "${PYTEST[@]}" tests/test_word2vec_cuda.py tests/test_fusion_cuda.py --junitxml="$OUT/cuda-junit.xml"
step gather 50 $PY benchmarks/gpu/bench_gather.py "${SMALL_GATHER[@]}" --json "$OUT/bench.jsonl"
step sgns 60 $PY benchmarks/gpu/bench_sgns.py "${SMALL_SGNS[@]}" --json "$OUT/bench.jsonl"
step subword 60 "${SUBWORD_ENV[@]}" $PY benchmarks/gpu/bench_subword.py "${SMALL_SUBWORD[@]}" --json "$OUT/bench.jsonl"
if [ "$DRY" != 1 ]; then
  step memcheck 40 "$SANITIZER" --tool memcheck --error-exitcode 3 $PY benchmarks/gpu/sanitize_cases.py
  step triton 80 "${PYTEST[@]}" tests/test_word2vec_triton.py tests/test_word2vec_triton_models.py \
    tests/test_word2vec_triton_subword.py \
    tests/test_fusion_triton.py \
    --junitxml="$OUT/triton-junit.xml"
  step racecheck 30 "$SANITIZER" --tool racecheck --error-exitcode 3 $PY benchmarks/gpu/sanitize_cases.py
  step quality 45 $PY benchmarks/gpu/bench_sgns.py --no-speed --quality --json "$OUT/bench.jsonl"
fi
echo
cat "$SUMMARY"
echo "logs: $OUT (total $(($(date +%s) - EMBEDFAST_CHECK_START))s)"
