#!/usr/bin/env bash
# report_test.sh — `resnet report`, `resnet train --log-grads` and `resnet experiment
# degradation`:
#  - a report of small run directories written here by hand: the number of <svg> charts, the
#    series and legend entries of each chart, axis labels, heatmap cells, the summary table's
#    numbers, every <svg> well-formed XML, balanced HTML, nothing fetched from elsewhere;
#  - bad input (no metrics.jsonl, a malformed line, a non-number, ...): a non-zero exit and
#    one line on stderr naming the file and line;
#  - grads.jsonl as training writes it (one line per logged step, every parameter and block),
#    truncated on resume; the experiment's runs, skip of finished runs, resume of an
#    unfinished one, Ctrl-C, and settings that do not match;
#  - in headless Chromium (skipped when it is not installed): a screenshot that is not blank
#    and holds the palette's colours, the DOM's charts, and a printed PDF.
# Needs python3 (standard library only). Ends with "N passed, N failed".
# Environment: RESNET, the program's path.
set -u
RESNET=${RESNET:-$(dirname "$0")/../resnet}
RESNET=$(cd "$(dirname "$RESNET")" && pwd)/$(basename "$RESNET")
passed=0
failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

source "$(dirname "$0")/expect.sh" # ok, bad, run, expect_error

# check NAME PYTHON_SCRIPT ARGS...: the script prints lines "ok: ..." / "FAILED: ..."; each counts.
check() {
    local name=$1
    shift
    local outp
    outp=$(python3 "$@" 2>&1)
    local rc=$?
    while IFS= read -r line; do
        case "$line" in
        ok:*) ok "$name: ${line#ok: }" ;;
        FAILED:*) bad "$name: ${line#FAILED: }" ;;
        *) [ -n "$line" ] && echo "   $line" ;;
        esac
    done <<<"$outp"
    [ $rc -eq 0 ] || bad "$name: the checking script failed (exit $rc)"
}

if [ ! -x "$RESNET" ]; then
    echo "FAILED: $RESNET is not an executable program"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! command -v python3 >/dev/null; then
    echo "FAILED: python3 is needed to check the report"
    echo "0 passed, 1 failed"
    exit 1
fi

# ---- synthetic runs ----
# plain8 and resnet8: 10 training lines (steps 10..100), validation + test at 50 and 100, and
# grads.jsonl at every logged step (one norm of plain8 null). r20-nograds: resnet20, training lines, one test evaluation,
# no validation, no grads.jsonl. train_acc of line i is 0.5 + 0.04 i: the mean error of the last
# five is 18%; best validation error 30%, test error 35%.
python3 - "$tmp/runs" <<'EOF' || { echo "FAILED: cannot write the synthetic runs"; echo "0 passed, 1 failed"; exit 1; }
import json, os, sys
root = sys.argv[1]

def params_of_cifar(n):
    names = ["conv1.weight", "bn1.weight", "bn1.bias"]
    for s in range(1, 4):
        for b in range(n):
            for c in (1, 2):
                names += [f"layer{s}.{b}.conv{c}.weight", f"layer{s}.{b}.bn{c}.weight",
                          f"layer{s}.{b}.bn{c}.bias"]
    return names + ["linear.weight", "linear.bias"]

def config(model, d, iters, val):
    return {"model": model, "data": "mnist:/nowhere", "out": d, "backend": "", "init": "",
            "threads": 1, "resize_h": 0, "resize_w": 0, "batch": 32, "epochs": 1,
            "iters": iters, "val": val, "seed": "7", "lr": 0.1, "momentum": 0.9, "wd": 0.0001,
            "gamma": 0.1, "nesterov": False, "wd_skip_bn": False, "schedule": "multistep",
            "milestones": [50, 75], "milestone_unit": "percent", "warmup": 0,
            "warmup_factor": 0, "label_smoothing": 0, "augment": True, "shuffle": True,
            "log_every": 10, "eval_every": 1, "ckpt_every": 0, "log_grads": True}

def run(name, model, plain, grads, evals):
    d = os.path.join(root, name)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config(model, d, 100, 16 if evals == "val+test" else 0), f, indent=1)
    with open(os.path.join(d, "metrics.jsonl"), "w") as m:
        for i in range(1, 11):
            s = 10 * i
            lr = 0.1 if s <= 50 else 0.01 if s <= 75 else 0.001
            m.write(json.dumps({"step": s, "epoch": 0, "lr": lr, "train_loss": 2.0 / i,
                                "train_acc": 0.5 + 0.04 * i, "images_per_s": 100.0 + i,
                                "elapsed_s": 1.5 * i}) + "\n")
            if evals == "val+test" and s in (50, 100):
                m.write(json.dumps({"step": s, "epoch": 0, "elapsed_s": 1.5 * i + 0.2,
                                    "val_loss": 1.0, "val_acc": 0.6 if s == 50 else 0.7,
                                    "test_loss": 1.1, "test_acc": 0.6 if s == 50 else 0.65})
                        + "\n")
            if evals == "test" and s == 100:
                m.write(json.dumps({"step": s, "epoch": 0, "elapsed_s": 16.0, "test_loss": 1.1,
                                    "test_acc": 0.5}) + "\n")
    if grads:
        with open(os.path.join(d, "grads.jsonl"), "w") as g:
            for i in range(1, 11):
                p = {k: (0.5 ** j if plain else 1.0) * (1 + 0.1 * i)
                     for j, k in enumerate(params_of_cifar(1))}
                b = {f"layer{s}.0": (0.1 * s if plain else 1.0 + 0.01 * s) for s in (1, 2, 3)}
                if plain and i == 1:
                    p["conv1.weight"] = None  # what training logs for a non-finite norm
                g.write(json.dumps({"step": 10 * i, "params": p, "blocks": b}) + "\n")

run("plain8", "plain8", True, True, "val+test")
run("resnet8", "resnet8", False, True, "val+test")
run("r20-nograds", "resnet20", False, False, "test")
EOF
R=$tmp/runs

# ---- a report and its structure ----
if run "$RESNET" report "$R/plain8" "$R/resnet8/" "$R/r20-nograds" -o "$tmp/report.html"; then
    if grep -qF "wrote $tmp/report.html (3 runs, 8 charts)" "$tmp/out"; then
        ok "report of 3 runs ($(cat "$tmp/out"))"
    else
        bad "report: unexpected output: $(cat "$tmp/out")"
    fi
else
    bad "report failed: $(cat "$tmp/err")"
fi

cat >"$tmp/check_report.py" <<'EOF'
import re, sys, xml.dom.minidom
from html.parser import HTMLParser

path = sys.argv[1]
grad_step = sys.argv[2] if len(sys.argv) > 2 else "100"
html = open(path, encoding="utf-8").read()

def expect(name, cond, detail=""):
    print(("ok: " if cond else "FAILED: ") + name + (f" ({detail})" if detail else ""))

svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
expect("8 <svg> charts", len(svgs) == 8, f"{len(svgs)} found")
docs = []
for i, s in enumerate(svgs):
    try:
        docs.append(xml.dom.minidom.parseString(s))
    except Exception as e:
        expect(f"svg {i} is well-formed XML", False, str(e))
        docs.append(None)
expect("every <svg> is well-formed XML", all(d is not None for d in docs), f"{len(docs)} parsed")

def title(d):
    t = d.documentElement.getElementsByTagName("title")
    return t[0].firstChild.data if t and t[0].firstChild else ""

def groups(d, cls):
    return [g for g in d.getElementsByTagName("g") if g.getAttribute("class") == cls]

def texts(el):
    return [t.firstChild.data for t in el.getElementsByTagName("text") if t.firstChild]

def axis_labels(d):
    return [t.firstChild.data for t in d.getElementsByTagName("text")
            if t.getAttribute("class") == "axis-label" and t.firstChild]

by_title = {title(d): d for d in docs if d}
expect("every chart has a <title>", all(title(d) for d in docs if d), ", ".join(by_title))
want = ["Error", "Training loss", "Learning rate", "Throughput", "Gradient reaching each block",
        "Gradient reaching the first block", "plain8: gradient norm per layer",
        "resnet8: gradient norm per layer"]
expect("chart titles", sorted(by_title) == sorted(want), str(sorted(by_title)))

err = by_title.get("Error")
if err:
    series = groups(err, "series")
    polylines = sum(len(g.getElementsByTagName("polyline")) for g in series)
    # plain8, resnet8: training, validation, test; r20-nograds: training and a one-point test
    expect("error chart: 8 series", len(series) == 8, f"{len(series)}")
    expect("error chart: 7 polylines (a one-point test series is a dot)", polylines == 7,
           f"{polylines}")
    bold = [g for g in series if float(g.getAttribute("stroke-width")) > 2]
    expect("error chart: 3 bold test series with dots",
           len(bold) == 3 and all(g.getElementsByTagName("circle") for g in bold), f"{len(bold)}")
    dashed = [g for g in series if g.getAttribute("stroke-dasharray")]
    expect("error chart: 2 dashed validation series", len(dashed) == 2, f"{len(dashed)}")
    leg = texts(groups(err, "legend")[0]) if groups(err, "legend") else []
    expect("error chart: legend", leg == ["plain8", "resnet8", "r20-nograds", "training (thin)",
                                          "validation (dashed)", "test (bold)"], str(leg))
    expect("error chart: axis labels",
           axis_labels(err) == ["iteration (optimizer steps)", "error (%)"], str(axis_labels(err)))
    colors = [g.getAttribute("stroke") for g in series]
    expect("error chart: Okabe-Ito colours by run",
           colors[:3] == ["#0072B2"] * 3 and colors[3:6] == ["#D55E00"] * 3
           and colors[6:] == ["#009E73"] * 2, str(colors))

for name, ylabel in [("Training loss", "loss (nats)"), ("Throughput", "images/s"),
                     ("Learning rate", "learning rate (log scale)")]:
    d = by_title.get(name)
    if not d:
        continue
    series = groups(d, "series")
    n_points = [len(g.getElementsByTagName("polyline")[0].getAttribute("points").split())
                for g in series if g.getElementsByTagName("polyline")]
    expect(f"{name}: 3 series of 10 points", n_points == [10, 10, 10], str(n_points))
    leg = texts(groups(d, "legend")[0]) if groups(d, "legend") else []
    expect(f"{name}: legend", leg == ["plain8", "resnet8", "r20-nograds"], str(leg))
    expect(f"{name}: axis labels", axis_labels(d) == ["iteration (optimizer steps)", ylabel],
           str(axis_labels(d)))

blk = by_title.get("Gradient reaching each block")
if blk:
    series = groups(blk, "series")
    pts = [len(g.getElementsByTagName("polyline")[0].getAttribute("points").split())
           for g in series]
    expect("block chart: 2 runs of 3 blocks", pts == [3, 3], str(pts))
    leg = texts(groups(blk, "legend")[0])
    expect(f"block chart: legend at iteration {grad_step}",
           leg == [f"plain8 (it. {grad_step})", f"resnet8 (it. {grad_step})"], str(leg))
    expect("block chart: axis labels", axis_labels(blk) == [
        "block (1 = nearest the input)", "gradient norm at block input (log)"],
        str(axis_labels(blk)))

for run in ("plain8", "resnet8"):
    h = by_title.get(f"{run}: gradient norm per layer")
    if not h:
        continue
    cells = groups(h, "cells")
    n = len(cells[0].getElementsByTagName("rect")) if cells else 0
    # 7 conv layers and the linear layer, 10 logged steps
    expect(f"{run} heatmap: 8 layers x 10 steps", n == 80, f"{n} cells")
    grey = [r for r in cells[0].getElementsByTagName("rect") if r.getAttribute("fill") == "#d9d9d9"]
    want_grey = 1 if run == "plain8" else 0
    expect(f"{run} heatmap: {want_grey} grey cell(s) for null norms", len(grey) == want_grey,
           f"{len(grey)}")
    labels = texts(h)
    expect(f"{run} heatmap: layer names, no BN rows",
           "conv1" in labels and "linear" in labels and not any("bn" in t for t in labels),
           ", ".join(t for t in labels if "." in t or t in ("conv1", "linear")))
    expect(f"{run} heatmap: a colour bar",
           len(groups(h, "colorbar")) == 1 and h.getElementsByTagName("linearGradient"))

# The summary table: 3 runs, plain8's numbers.
rows = re.findall(r"<tr><td class=\"l\"><span class=\"swatch\".*?</tr>", html, re.S)
expect("summary: 3 rows", len(rows) == 3, f"{len(rows)}")
if len(rows) == 3:
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[0])]
    expect("summary: plain8's row",
           cells == ["plain8", "plain8", "75,290*", "100", "18.00%", "30.00%", "35.00%",
                     "15.2s", "106"], str(cells))
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", rows[2])]
    expect("summary: a run without validation", cells[5] == "–" and cells[6] == "50.00%",
           str(cells))

# Self-contained: nothing is loaded from elsewhere, nothing runs.
outside = [m for m in re.findall(r"https?://[^\"' )]+", html) if m != "http://www.w3.org/2000/svg"]
expect("no scripts, links, imports or remote URLs",
       not re.search(r"<script|<link|<img|<iframe|@import|@font-face", html, re.I)
       and not outside and all(u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", html)),
       str(outside[:3]))
expect("print styles", "@media print" in html and "break-inside:avoid" in html)

# Balanced HTML: every opened element is closed, in order.
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}
SVG_EMPTY = {"rect", "line", "circle", "polyline", "path", "stop"}

class Balance(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []
    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)
    def handle_startendtag(self, tag, attrs):
        pass
    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else ''}>")
        else:
            self.stack.pop()

p = Balance()
p.feed(html)
expect("the HTML is balanced", not p.errors and not p.stack, str(p.errors[:3] + p.stack[:3]))
EOF
check "report" "$tmp/check_report.py" "$tmp/report.html"

# --grad-step picks the nearest logged step (47 -> 50).
if run "$RESNET" report "$R/plain8" "$R/resnet8" "$R/r20-nograds" -o "$tmp/report47.html" \
    --grad-step 47; then
    if grep -qF "plain8 (it. 50)" "$tmp/report47.html"; then ok "--grad-step 47 draws iteration 50"
    else bad "--grad-step 47: no 'plain8 (it. 50)' in the page"; fi
else
    bad "report --grad-step failed: $(cat "$tmp/err")"
fi

# The same files give the same page.
run "$RESNET" report "$R/plain8" "$R/resnet8/" "$R/r20-nograds" -o "$tmp/again.html"
if cmp -s "$tmp/report.html" "$tmp/again.html"; then ok "the report is reproducible byte for byte"
else bad "two reports of the same runs differ"; fi

# A last line still being written (no newline yet) is skipped.
cp -r "$R/plain8" "$tmp/partial"
printf '{"step": 110, "epoch": 0, "lr": 0.0' >>"$tmp/partial/metrics.jsonl"
if run "$RESNET" report "$tmp/partial" -o "$tmp/partial.html"; then
    ok "an unfinished last line is skipped"
else
    bad "an unfinished last line: $(cat "$tmp/err")"
fi

# ---- bad input ----
mkdir -p "$tmp/bad"
cp -r "$R/plain8" "$tmp/bad/nometrics" && rm "$tmp/bad/nometrics/metrics.jsonl"
expect_error "a directory without metrics.jsonl" "nometrics/metrics.jsonl: cannot read" \
    "$RESNET" report "$R/resnet8" "$tmp/bad/nometrics" -o "$tmp/bad.html"
if [ -e "$tmp/bad.html" ] || ls "$tmp"/bad.html.tmp* >/dev/null 2>&1; then
    bad "a failed report left a file behind"
else
    ok "a failed report writes nothing"
fi
cp -r "$R/plain8" "$tmp/bad/malformed"
sed -i '3s/.*/{"step": 30, "lr": 0.1, oops/' "$tmp/bad/malformed/metrics.jsonl"
expect_error "a malformed metrics line" "malformed/metrics.jsonl:3: not a JSON object" \
    "$RESNET" report "$tmp/bad/malformed" -o "$tmp/bad.html"
cp -r "$R/plain8" "$tmp/bad/notnum"
sed -i '2s/"train_acc": [0-9.]*/"train_acc": "high"/' "$tmp/bad/notnum/metrics.jsonl"
expect_error "a field that is not a number" 'metrics.jsonl:2: "train_acc" is not a number' \
    "$RESNET" report "$tmp/bad/notnum" -o "$tmp/bad.html"
cp -r "$R/plain8" "$tmp/bad/badgrads"
sed -i '4s/.*/{"step": 40, "params": 5, "blocks": {}}/' "$tmp/bad/badgrads/grads.jsonl"
expect_error "a malformed grads line" "badgrads/grads.jsonl:4: expected \"params\" and \"blocks\"" \
    "$RESNET" report "$tmp/bad/badgrads" -o "$tmp/bad.html"
cp -r "$R/plain8" "$tmp/bad/noconfig" && rm "$tmp/bad/noconfig/config.json"
expect_error "a directory without config.json" "noconfig/config.json: cannot read" \
    "$RESNET" report "$tmp/bad/noconfig" -o "$tmp/bad.html"
expect_error "a directory that does not exist" "nowhere/config.json: cannot read" \
    "$RESNET" report "$tmp/nowhere" -o "$tmp/bad.html"
expect_error "no run directories" "no run directories given" "$RESNET" report -o "$tmp/bad.html"
expect_error "an output that cannot be written" "cannot write" \
    "$RESNET" report "$R/plain8" -o "$tmp/no/such/dir/r.html"
expect_error "a bad --grad-step" "--grad-step: expected an integer" \
    "$RESNET" report "$R/plain8" --grad-step soon

# ---- grads.jsonl from training ----
python3 - "$tmp/idx" <<'EOF'
import os, random, struct, sys
d = sys.argv[1]
os.makedirs(d)
random.seed(3)
def write(prefix, n):
    imgs, labs = bytearray(), bytearray()
    for i in range(n):
        k = i % 4
        labs.append(k)
        for y in range(8):
            for x in range(8):
                v = 200 if (x // 2 + y // 2 + k) % 4 == 0 else 30
                imgs.append(max(0, min(255, v + random.randint(-20, 20))))
    open(os.path.join(d, prefix + "-images-idx3-ubyte"), "wb").write(
        struct.pack(">IIII", 0x803, n, 8, 8) + imgs)
    open(os.path.join(d, prefix + "-labels-idx1-ubyte"), "wb").write(
        struct.pack(">II", 0x801, n) + labs)
write("train", 96)
write("t10k", 32)
EOF
mkdir -p "$tmp/train"
T=$tmp/train/plain8
if run "$RESNET" train --model plain8 --data "mnist:$tmp/idx" --batch 16 --iters 6 --log-every 2 \
    --val 16 --threads 1 --log-grads --quiet --out "$T"; then
    ok "train --log-grads"
else
    bad "train --log-grads failed: $(cat "$tmp/err")"
fi
cat >"$tmp/check_grads.py" <<'EOF'
import json, math, sys
d = sys.argv[1]
def expect(name, cond, detail=""):
    print(("ok: " if cond else "FAILED: ") + name + (f" ({detail})" if detail else ""))
train_steps = [j["step"] for j in map(json.loads, open(d + "/metrics.jsonl")) if "train_loss" in j]
lines = [json.loads(l) for l in open(d + "/grads.jsonl")]
steps = [l["step"] for l in lines]
# 80 training images in batches of 16: 5 steps an epoch; logged at 2, 4, 5 (epoch end), 6
expect("a grads line at every logged step", steps == train_steps == [2, 4, 5, 6],
       f"grads {steps}, metrics {train_steps}")
params = ["conv1.weight", "bn1.weight", "bn1.bias"]
for s in (1, 2, 3):
    for c in (1, 2):
        params += [f"layer{s}.0.conv{c}.weight", f"layer{s}.0.bn{c}.weight", f"layer{s}.0.bn{c}.bias"]
params += ["linear.weight", "linear.bias"]
expect("every parameter tensor, in order", all(list(l["params"]) == params for l in lines),
       f"{len(lines[0]['params'])} of {len(params)}")
expect("every block", all(list(l["blocks"]) == ["layer1.0", "layer2.0", "layer3.0"] for l in lines),
       str(list(lines[0]["blocks"])))
vals = [v for l in lines for v in list(l["params"].values()) + list(l["blocks"].values())]
expect("norms are finite and non-negative", all(math.isfinite(v) and v >= 0 for v in vals),
       f"min {min(vals):.3g}, max {max(vals):.3g}")
expect("weight and block norms are positive",
       all(l["params"][k] > 0 for l in lines for k in params if "conv" in k or "linear" in k)
       and all(v > 0 for l in lines for v in l["blocks"].values()))
cfg = json.load(open(d + "/config.json"))
expect("config.json keeps log_grads", cfg.get("log_grads") is True, str(cfg.get("log_grads")))
EOF
[ -f "$T/grads.jsonl" ] && check "grads.jsonl" "$tmp/check_grads.py" "$T"

# Resume keeps only the lines up to the checkpoint (here the end: step 6).
if [ -f "$T/grads.jsonl" ]; then
    echo '{"step": 7, "params": {}, "blocks": {}}' >>"$T/grads.jsonl"
    echo '{"step": 7, "epoch": 1, "lr": 0.1, "train_loss": 1, "train_acc": 0.5}' >>"$T/metrics.jsonl"
    if run "$RESNET" train --resume "$T" --quiet; then
        if grep -q '"step": 7' "$T/grads.jsonl" "$T/metrics.jsonl"; then
            bad "resume left lines past the checkpoint in grads.jsonl or metrics.jsonl"
        elif [ "$(wc -l <"$T/grads.jsonl")" -eq 4 ]; then
            ok "resume truncates grads.jsonl to the checkpoint's step"
        else
            bad "resume: grads.jsonl has $(wc -l <"$T/grads.jsonl") lines, expected 4"
        fi
    else
        bad "resume failed: $(cat "$tmp/err")"
    fi
    if run "$RESNET" report "$T" -o "$tmp/trained.html" && grep -qF "(1 run, 7 charts)" "$tmp/out"
    then ok "a report of a trained run ($(cat "$tmp/out"))"
    else bad "a report of a trained run: $(cat "$tmp/out" "$tmp/err")"; fi
fi

# ---- resnet experiment degradation ----
# config_field RUN_DIR KEY: one field of the run's config.json.
config_field() {
    python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1/config.json" "$2"
}
E=$tmp/exp
exp_args=(experiment degradation --data "mnist:$tmp/idx" --depths 8 --iters 4 --batch 16 --val 16
    --warmup 3 --threads 1 --quiet --out "$E")
if run "$RESNET" "${exp_args[@]}"; then
    if [ -f "$E/plain8/grads.jsonl" ] && [ -f "$E/resnet8/grads.jsonl" ] && [ -f "$E/report.html" ] &&
        grep -qE '^plain8 +plain8 +[0-9.]+% +[0-9.]+% +[0-9.]+%$' "$tmp/out" &&
        grep -qE '^resnet8 +resnet8 +[0-9.]+% +[0-9.]+% +[0-9.]+%$' "$tmp/out"; then
        ok "experiment: both runs, their grads, the report and the table"
    else
        bad "experiment: missing files or table rows:"
        cat "$tmp/out"
        ls -R "$E" | head -20
    fi
    w=$(config_field "$E/resnet8" warmup)
    [ "$w" = 3 ] && ok "experiment passes --warmup to its runs" || bad "experiment run's warmup: $w"
    b=$(config_field "$E/plain8" backend)
    [ "$b" = cpu-winograd ] && ok "experiment runs on cpu-winograd by default" ||
        bad "experiment run's backend: '$b', expected cpu-winograd"
    grep -q 'warm-up 3 steps · momentum 0.9 .* seed 1 · cpu-winograd<' "$E/report.html" &&
        ok "experiment report: the settings show the warm-up and the backend" ||
        bad "experiment report: no warm-up or backend in the settings"
    n=$(grep -o '<svg' "$E/report.html" | wc -l)
    [ "$n" -eq 8 ] && ok "experiment report: 8 charts" || bad "experiment report: $n charts, expected 8"
else
    bad "experiment failed: $(cat "$tmp/err")"
fi
if run "$RESNET" "${exp_args[@]}" && [ "$(grep -c 'finished before, skipped' "$tmp/err")" -eq 2 ]
then ok "experiment again: both runs skipped"
else bad "experiment again: $(cat "$tmp/err")"; fi
# A GPU run's settings name its device and precision instead of a CPU backend.
cp -r "$E/plain8" "$tmp/gpu8"
python3 - "$tmp/gpu8/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(device="cuda:1", precision="bf16")
json.dump(c, open(sys.argv[1], "w"))
PY
if run "$RESNET" report "$tmp/gpu8" -o "$tmp/gpu8.html" &&
    grep -q 'seed 1 · cuda:1 bf16<' "$tmp/gpu8.html"; then
    ok "report: a GPU run's settings show its device and precision"
else bad "report: no 'cuda:1 bf16' in a GPU run's settings"; fi
# One epoch and one warm-up step read in the singular.
cp -r "$E/plain8" "$tmp/one8"
python3 - "$tmp/one8/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(iters=0, epochs=1, warmup=1)
json.dump(c, open(sys.argv[1], "w"))
PY
if run "$RESNET" report "$tmp/one8" -o "$tmp/one8.html" &&
    grep -q 'warm-up 1 step · .* · 1 epoch · ' "$tmp/one8.html"; then
    ok "report: 1 epoch, 1 step"
else bad "report: no '1 epoch' and 'warm-up 1 step' in the settings"; fi

# An unfinished run (its checkpoint at step 2 and its logs cut there) is resumed.
python3 - "$E/resnet8" <<'EOF'
import json, struct, sys
d = sys.argv[1]
path = d + "/checkpoint.safetensors"
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
header["__metadata__"]["checkpoint_step"] = "2"
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * (n - len(text))
assert len(text) == n, "header grew"
open(path, "wb").write(raw[:8] + text + raw[8 + n:])
for name in ("metrics.jsonl", "grads.jsonl"):
    keep = [l for l in open(f"{d}/{name}") if json.loads(l)["step"] <= 2]
    open(f"{d}/{name}", "w").writelines(keep)
EOF
if run "$RESNET" "${exp_args[@]}" && grep -q "resuming resnet8" "$tmp/err" &&
    grep -q "plain8: finished before, skipped" "$tmp/err" &&
    grep -q '"test_acc"' "$E/resnet8/metrics.jsonl" &&
    [ "$(python3 -c "import json,sys; print([json.loads(l)['step'] for l in open(sys.argv[1])])" \
        "$E/resnet8/grads.jsonl")" = "[2, 4]" ]; then
    ok "experiment resumes an unfinished run and skips the finished one"
else
    bad "experiment resume: $(cat "$tmp/err")"
fi

expect_error "experiment with other settings in --out" "holds a run with other settings (--iters 4)" \
    "$RESNET" experiment degradation --data "mnist:$tmp/idx" --depths 8 --iters 5 --batch 16 \
    --val 16 --threads 1 --quiet --out "$E"
expect_error "experiment without --out" "--out DIR is required" \
    "$RESNET" experiment degradation --data "mnist:$tmp/idx"
expect_error "experiment with a depth that has no model" "no model plain9" \
    "$RESNET" experiment degradation --data "mnist:$tmp/idx" --depths 9 --out "$tmp/e9"
expect_error "an unknown experiment" "expected \`resnet experiment degradation" \
    "$RESNET" experiment widening --out "$tmp/ew"

# Ctrl-C (SIGINT to the experiment alone; it passes it on) stops the run at a checkpoint.
"$RESNET" experiment degradation --data "mnist:$tmp/idx" --depths 8 --iters 1000000 --batch 16 \
    --val 16 --threads 1 --quiet --out "$tmp/int" >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!
for _ in $(seq 1 300); do
    [ -s "$tmp/int/plain8/metrics.jsonl" ] && break
    sleep 0.1
done
kill -INT $pid
wait $pid
rc=$?
if [ $rc -eq 130 ] && [ -f "$tmp/int/plain8/checkpoint.safetensors" ] &&
    [ ! -e "$tmp/int/resnet8" ] && grep -q "interrupted during plain8" "$tmp/int.err"; then
    ok "Ctrl-C: exit 130, a checkpoint, the next run not started ($(tail -n 1 "$tmp/int.err"))"
else
    bad "Ctrl-C: exit $rc: $(cat "$tmp/int.err")"
fi

# ---- in a browser ----
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chrome" ]; then
    echo "skipped: the browser checks (no chromium; apt-get install -y chromium)"
else
    cflags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp/chrome")
    timeout 120 "$chrome" "${cflags[@]}" --window-size=1280,2600 --screenshot="$tmp/shot.png" \
        "file://$tmp/report.html" >/dev/null 2>&1
    timeout 120 "$chrome" "${cflags[@]}" --dump-dom "file://$tmp/report.html" >"$tmp/dom.html" \
        2>/dev/null
    timeout 120 "$chrome" "${cflags[@]}" --no-pdf-header-footer --print-to-pdf="$tmp/print.pdf" \
        "file://$tmp/report.html" >/dev/null 2>&1
    cat >"$tmp/check_browser.py" <<'EOF'
import os, re, struct, sys, zlib
shot, dom, pdf = sys.argv[1:4]
def expect(name, cond, detail=""):
    print(("ok: " if cond else "FAILED: ") + name + (f" ({detail})" if detail else ""))

def png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, "unsupported PNG"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    prev, rows, i = bytearray(stride), [], 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, [[tuple(r[x * bpp:x * bpp + 3]) for x in range(w)] for r in rows]

if not os.path.exists(shot) or os.path.getsize(shot) == 0:
    expect("a screenshot", False, "chromium wrote none")
else:
    w, h, px = png_pixels(shot)
    flat = [p for row in px for p in row]
    ink = sum(1 for p in flat if p != (255, 255, 255)) / len(flat)
    colors = set(flat)
    blue = sum(1 for p in flat if p == (0x00, 0x72, 0xB2))
    verm = sum(1 for p in flat if p == (0xD5, 0x5E, 0x00))
    lum = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in flat]
    mean = sum(lum) / len(lum)
    var = sum((v - mean) ** 2 for v in lum) / len(lum)
    expect("the screenshot is not blank", ink > 0.03 and var > 100 and len(colors) > 200,
           f"{w}x{h}, {100 * ink:.1f}% non-white, luminance variance {var:.0f}, "
           f"{len(colors)} colours")
    expect("the runs' colours are on screen", blue > 200 and verm > 200,
           f"{blue} #0072B2 and {verm} #D55E00 pixels")
d = open(dom, encoding="utf-8", errors="replace").read()
n_svg = len(re.findall(r"<svg\b", d))
n_poly = len(re.findall(r"<polyline\b", d))
n_rect = len(re.findall(r"<rect\b", d))
expect("the DOM holds the 8 charts", n_svg == 8, f"{n_svg} <svg>, {n_poly} <polyline>")
expect("the DOM holds the series and heatmap cells", n_poly >= 20 and n_rect >= 160,
       f"{n_poly} polylines, {n_rect} rects")
pages = len(re.findall(rb"/Type\s*/Page\b", open(pdf, "rb").read())) if os.path.exists(pdf) else 0
expect("it prints", pages >= 2, f"{pages} pages")
EOF
    check "browser" "$tmp/check_browser.py" "$tmp/shot.png" "$tmp/dom.html" "$tmp/print.pdf"
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
