#!/usr/bin/env python3
"""
compare_metrics.py — two runs' training-loss curves side by side (metrics.jsonl files), for
checking that one device or precision trains like another from the same start.

    tools/compare_metrics.py RUN_A/metrics.jsonl RUN_B/metrics.jsonl

Prints, per logged step both runs have, the two mean training losses and their difference,
then the largest and mean absolute difference.
"""
import json
import sys


def losses(path):
    out = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            if "train_loss" in r:
                out[r["step"]] = r["train_loss"]
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = losses(sys.argv[1]), losses(sys.argv[2])
    steps = sorted(set(a) & set(b))
    if not steps:
        sys.exit("compare_metrics: the two files share no logged step")
    print("%8s %12s %12s %10s" % ("step", "A", "B", "|A-B|"))
    diffs = []
    for s in steps:
        d = abs(a[s] - b[s])
        diffs.append(d)
        print("%8d %12.6f %12.6f %10.2e" % (s, a[s], b[s], d))
    print("max |A-B| %.3e, mean %.3e over %d logged steps" % (max(diffs), sum(diffs) / len(diffs),
                                                             len(steps)))


if __name__ == "__main__":
    main()
