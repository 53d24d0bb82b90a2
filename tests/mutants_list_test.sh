#!/usr/bin/env bash
# mutants_list_test.sh — every mutant of dev/mutants.txt still applies to the code (its find
# text occurs exactly once in its file), so moving code cannot silently shrink mutation
# testing; and dev/mutate.sh --check refuses a list whose text is missing or repeated.
# The mutants themselves run with dev/mutate.sh (an hour on the development machine).
source "$(dirname "$0")/testlib.sh"

check "every mutant in dev/mutants.txt applies" dev/mutate.sh --check

# A list with a missing find text and one with a repeated one: both refused, naming the mutant.
printf 'file: src/core/draws.h\nfind: no such text in the file\nrepl: x\nwhy:  gone\n' \
    >"$TMP/missing.txt"
printf 'file: src/core/isa.c\nfind: return\nrepl: x\nwhy:  repeated\n' >"$TMP/repeated.txt"
refused() { # LIST REGEX: --check exits 2 and prints REGEX
    local out rc
    out=$(dev/mutate.sh --check --list "$1" 2>&1)
    rc=$?
    [ "$rc" -eq 2 ] && grep -Eq "$2" <<<"$out" && return 0
    echo "exit $rc, output: $out" >&2
    return 1
}
check "--check refuses a missing find text" \
    refused "$TMP/missing.txt" "#1 .*gone: find text occurs 0 times"
check "--check refuses a repeated find text" \
    refused "$TMP/repeated.txt" "#1 .*repeated: find text occurs [0-9]+ times"

finish
