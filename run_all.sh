#!/usr/bin/env bash
# Set up gmval on a fresh machine and regenerate the paper's tables and figures.
#
#   ./run_all.sh                      set up, then run every notebook with the default profile
#   ./run_all.sh --profile ci|default|paper
#   ./run_all.sh --only 02            run only notebooks whose name starts with 02 (repeatable)
#   ./run_all.sh --setup-only         only create .venv and install gmval with its test tools
#   ./run_all.sh --force              rerun notebooks that already finished for this profile
#   ./run_all.sh --retrain            train every generator here instead of installing the committed
#                                     weights (gmval/models/weights/; see figures/training/ for the time)
#
# Executed notebooks go to notebooks/executed/<profile>/, figures and tables to figures/, a
# byte-stable copy of each executed notebook to figures/notebooks/ and each step's wall time to
# figures/timings/run_all.csv (gmval/runlog.py).
# A notebook that finished is skipped on the next run (its executed copy carries a
# .done stamp), so a run that failed half-way resumes where it stopped; the expensive
# steps inside notebooks are cached artefacts under data/cache as well.
set -euo pipefail
cd "$(dirname "$0")"

profile=default
only=()
setup_only=0
force=0
retrain=0
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --only) only+=("$2"); shift 2 ;;
    --setup-only) setup_only=1; shift ;;
    --force) force=1; shift ;;
    --retrain) retrain=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$profile" in ci|default|paper) ;; *) echo "run_all.sh: profile must be ci, default or paper" >&2; exit 2 ;; esac

started=$(date +%s)
# A run that finds no caches computes every artefact itself: its timings are a fresh clone's.
data_dir=${GMVAL_DATA:-data}
if [ -d "$data_dir/cache" ] || [ -d "$data_dir/models" ]; then fresh=0; else fresh=1; fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
# This venv caches bytecode even where the environment sets PYTHONDONTWRITEBYTECODE: without
# .pyc files every notebook kernel and worker process recompiles the ~5,000 modules it imports
# (measured: 16.4 s instead of 7.4 s for a notebook's imports, 8.0 s instead of 3.3 s for a
# worker's).
unset PYTHONDONTWRITEBYTECODE
if ! "$VPY" -c "import gmval, torch, papermill, pytest, ruff" 2>/dev/null; then
  # uv installs the same pinned set in 36 s where pip took 87 s (measured here, fresh venvs,
  # same versions); pip stays the fallback. uv reads no pip configuration, so the machine's
  # extra indexes, find-links and constraints (a local wheel mirror, a version cap) are passed
  # on, and pip's rule of taking the best version across all indexes with them.
  if "$VPY" -m pip install -q uv 2>/dev/null; then
    install=("$VPY" -m uv pip install -q --python "$VPY" --index-strategy unsafe-best-match)
    while IFS= read -r line; do
      key=${line#*.}; key=${key%%=*}; value=${line#*=\'}; value=${value%\'}
      case "$key" in
        extra-index-url|find-links|constraint) for v in $value; do install+=("--$key" "$v"); done ;;
      esac
    done < <("$VPY" -m pip config list 2>/dev/null)
  else
    # --no-compile: byte-compiling every installed module took 66 of pip's 176 install seconds;
    # Python compiles (and caches, see above) the ~5,000 modules a run imports on first import.
    install=("$VPY" -m pip install -q --no-compile)
  fi
  # torch first and pinned: other packages' loose torch requirements must not pull another build.
  "${install[@]}" "torch==2.14.1" "torchvision==0.29.1"
  "${install[@]}" -e ".[test]"
  # Compiles (once) what every notebook, worker and test imports; the rest compiles on first use.
  "$VPY" -c "import gmval.valuator, gmval.models.zoo, gmval.counterfactual, gmval.baselines, papermill, ipykernel.kernelapp"
fi
# Fashion-MNIST offline comes from Debian; online, torchvision downloads it instead.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 ||
   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) ||
    echo "run_all.sh: could not install dataset-fashion-mnist; Fashion-MNIST will be downloaded when online" >&2
fi
[ "$setup_only" = 1 ] && exit 0
"$VPY" -m gmval.runlog record "$profile" setup "$(( $(date +%s) - started ))" "$fresh"

export MPLBACKEND=Agg GMVAL_PROFILE="$profile" GMVAL_RETRAIN="$retrain"
out="notebooks/executed/$profile"
mkdir -p "$out" figures
shopt -s nullglob
notebooks=(notebooks/[0-9][0-9]_*.ipynb)
[ ${#notebooks[@]} -gt 0 ] || { echo "run_all.sh: no notebooks found in notebooks/" >&2; exit 1; }
for nb in "${notebooks[@]}"; do
  name=$(basename "$nb" .ipynb)
  if [ ${#only[@]} -gt 0 ]; then
    keep=0; for o in "${only[@]}"; do [[ "$name" == "$o"* ]] && keep=1; done
    [ "$keep" = 1 ] || continue
  fi
  stamp="$out/$name.done"
  if [ "$force" = 0 ] && [ -f "$stamp" ] && [ "$stamp" -nt "$nb" ]; then
    echo "== $name: done earlier for profile $profile (use --force to rerun)"
    continue
  fi
  echo "== $name (profile $profile)"
  start=$(date +%s)
  .venv/bin/papermill "$nb" "$out/$name.ipynb" -p profile "$profile" --cwd notebooks -k python3 --log-output
  echo "$(( $(date +%s) - start ))" > "$stamp"
  "$VPY" -m gmval.runlog record "$profile" "$name" "$(cat "$stamp")" "$fresh" --executed "$out/$name.ipynb" >/dev/null
  echo "== $name finished in $(cat "$stamp") s"
done
.venv/bin/python -m gmval.reproduction figures/REPRODUCTION.md
