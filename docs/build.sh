#!/usr/bin/env bash
# Build the documentation and run the doctests of its pages.
#
#   bash docs/build.sh [extra sphinx-build options]
#
# Uses the active `python` (set PYTHON to override), which needs the package
# built in place or installed and the [docs] extra.  Steps:
#   1. sphinx-build -W --keep-going: warnings are errors (numpydoc validation,
#      docstring checks, broken cross-references, failing gallery examples);
#      the gallery and the API stubs are regenerated from scratch; at the end
#      docs/_ext/offline_assets.py fails the build if a built page loads a
#      script, stylesheet or other resource from another host (MathJax is
#      served from _static/mathjax/, out of the sphinx-mathjax-offline package);
#   2. the `>>>` snippets of the landing page and the user guide run as doctests.
# Exits non-zero if either step fails.  Output: docs/_build/html/index.html
set -euo pipefail

PYTHON="${PYTHON:-python}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export MPLBACKEND=Agg
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

start=$(date +%s)
# stale gallery output or API stubs must not survive a change of the code
rm -rf docs/_build docs/auto_examples docs/generated docs/sg_execution_times.rst

status=0
"$PYTHON" -m sphinx -W --keep-going -E -b html docs docs/_build/html "$@" || status=$?
mid=$(date +%s)
echo "docs/build.sh: sphinx-build finished in $((mid - start)) s (exit $status)"

"$PYTHON" -m pytest -q -p no:cacheprovider --doctest-glob='*.rst' \
    -o doctest_optionflags="NORMALIZE_WHITESPACE ELLIPSIS" -o addopts="" \
    docs/index.rst docs/user_guide || status=$?
end=$(date +%s)
echo "docs/build.sh: doctests finished in $((end - mid)) s; total $((end - start)) s"

if [ "$status" -ne 0 ]; then
    echo "docs/build.sh: FAILED" >&2
fi
exit "$status"
