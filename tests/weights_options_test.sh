#!/usr/bin/env bash
# weights_options_test.sh — the options every command that reads weights takes alike (eval,
# predict, export: --model, --mean, --std, cli/load.h): a state_dict saved by PyTorch without
# metadata runs with --model and gives what the same weights with metadata give; without
# --model the error names it; --mean/--std given explicitly override the metadata, and their
# mistakes are usage errors (exit status 2) in every command.
# Environment: RESNET (the program).
source "$(dirname "$0")/testlib.sh"
W=tests/data/resnet20_torch.safetensors # the state_dict, with metadata naming resnet20
IMG=tests/data/images/rgb32.png
st_strip_metadata "$W" "$TMP/state_dict.safetensors" # as torch.save_file(model.state_dict())
SD=$TMP/state_dict.safetensors
CIFAR_MEAN=0.4914,0.4822,0.4465
CIFAR_STD=0.2470,0.2435,0.2616

D=$TMP/data
folder_set "$D" 3

# same_output A B: two runs (each a quoted command line) print the same.
same_output() {
    local a b
    a=$(eval "$1") || return 1
    b=$(eval "$2") || return 1
    [ "$a" = "$b" ] || { echo "outputs differ:"; diff <(echo "$a") <(echo "$b"); } >&2
    [ "$a" = "$b" ] && echo "the same output"
}

# status_is N CMD...: CMD exits with N.
status_is() {
    local want=$1
    shift
    "$@" >/dev/null 2>&1
    local rc=$?
    [ "$rc" -eq "$want" ] || { echo "exit status $rc, expected $want" >&2; return 1; }
    echo "exit status $rc"
}

EVAL=(eval --data "folder:$D" --json)
NO_MODEL="state_dict.safetensors: no model name in the metadata \(name the model, e.g. --model resnet20\)"
check_error "eval, a state_dict without metadata: the error names --model" "$NO_MODEL" \
    "$RESNET" "${EVAL[@]}" --weights "$SD"
check_error "predict, the same" "$NO_MODEL" "$RESNET" predict --weights "$SD" "$IMG"
check_error "export, the same" "$NO_MODEL" "$RESNET" export --weights "$SD" -o "$TMP/m.onnx"

check "eval --model on a state_dict = eval of the same weights with metadata" same_output \
    "'$RESNET' ${EVAL[*]} --weights '$SD' --model resnet20 --mean $CIFAR_MEAN --std $CIFAR_STD | sed 's/\"weights\":\"[^\"]*\"//'" \
    "'$RESNET' ${EVAL[*]} --weights '$W' | sed 's/\"weights\":\"[^\"]*\"//'"
check "predict --model on a state_dict = predict with metadata" same_output \
    "'$RESNET' predict --weights '$SD' --model resnet20 '$IMG'" \
    "'$RESNET' predict --weights '$W' '$IMG'"
check "export --model on a state_dict" "$RESNET" export --weights "$SD" --model resnet20 \
    -o "$TMP/m.onnx"

# --mean/--std override: with other statistics the loss (and probabilities) change; with the
# defaults they do not.
differ() { ! same_output "$1" "$2" 2>/dev/null && echo "outputs differ"; }
check "eval --mean/--std override the normalization" differ \
    "'$RESNET' ${EVAL[*]} --weights '$W'" \
    "'$RESNET' ${EVAL[*]} --weights '$W' --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5"
check "predict --mean/--std override the normalization" differ \
    "'$RESNET' predict --weights '$W' '$IMG'" \
    "'$RESNET' predict --weights '$W' --mean 0.5,0.5,0.5 --std 0.5,0.5,0.5 '$IMG'"
ONNX_MEAN() { "$RESNET" export --weights "$W" --mean 0.25,0.5,0.75 -o "$TMP/n.onnx" &&
    grep -aq "0.25,0.5,0.75" "$TMP/n.onnx" && echo "mean 0.25,0.5,0.75 in the ONNX metadata"; }
check "export --mean overrides the metadata written to the ONNX file" ONNX_MEAN

# The same mistakes give the same one-line errors and exit status 2 in every command.
for cmd in "${EVAL[*]} --weights $W" "predict --weights $W $IMG" "export --weights $W -o $TMP/x.onnx"; do
    name=${cmd%% *}
    # shellcheck disable=SC2086
    check_error "$name --model resnet21" "unknown model 'resnet21' \(expected one of: resnet8 " \
        "$RESNET" $cmd --model resnet21
    # shellcheck disable=SC2086
    check "  ... exit status 2" status_is 2 "$RESNET" $cmd --model resnet21
    # shellcheck disable=SC2086
    check_error "$name --mean 0.5,0.5" "--mean/--std: expected 3 values \(one per input channel" \
        "$RESNET" $cmd --mean 0.5,0.5
    # shellcheck disable=SC2086
    check "  ... exit status 2" status_is 2 "$RESNET" $cmd --mean 0.5,0.5
    # shellcheck disable=SC2086
    check_error "$name --std 0.5,0,0.5" "--std: every value must be positive" \
        "$RESNET" $cmd --std 0.5,0,0.5
    # shellcheck disable=SC2086
    check "  ... exit status 2" status_is 2 "$RESNET" $cmd --std 0.5,0,0.5
    # shellcheck disable=SC2086
    check "$name --help names --model, --mean, --std and the override" \
        bash -c "'$RESNET' $name --help | grep -q 'Options given explicitly override the weights. metadata' &&
                 '$RESNET' $name --help | grep -q -- '--mean R,G,B' && echo ok"
done
finish
