#!/usr/bin/env bash
# The CLI's input contract (tests/test_fuzz_cli.py) fuzzed at length: N examples per property (default 2000),
# printing how many inputs each property tried. Every one must end in success or a one-line error with exit
# status 2 (or, for a damaged store, a listing that names the damage); a failing example is printed in full.
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
LOG=$(mktemp)
GROKLAB_FUZZ_EXAMPLES=$N python -m pytest -q -p no:cacheprovider tests/test_fuzz_cli.py --hypothesis-show-statistics "${@:2}" >"$LOG" 2>&1
STATUS=$?
grep -E "^tests/|passing|FAILED" "$LOG"
[ $STATUS -eq 0 ] || { echo "--- failures (full log: $LOG)"; grep -E "^E  |Error|Falsifying|Draw [0-9]" "$LOG" | head -60; }
PROPS=$(grep -c "^def test_" tests/test_fuzz_cli.py)
echo "$PROPS properties x $N examples; each line 'N passing, 0 failing' is a property that held (pytest exit $STATUS)"
exit $STATUS
