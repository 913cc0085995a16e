#!/usr/bin/env bash
# The CLI's input contract (tests/test_fuzz_cli.py) fuzzed at length: N examples per property (default 2000),
# printing how many inputs were tried. Every one must end in success or a one-line error with exit status 2.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
GROKLAB_FUZZ_EXAMPLES=$N python -m pytest -q -p no:cacheprovider tests/test_fuzz_cli.py --hypothesis-show-statistics "${@:2}" \
    | grep -E "^tests/|passing|FAILED|Error" || true
echo "8 properties x $N examples; each line 'N passing, 0 failing' is a property that held"
