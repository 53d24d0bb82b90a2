#!/bin/sh
# public_api.sh HEADER — prints the name of every function HEADER declares, one per line
# (comments removed first), for the shared library's version script: the symbols
# libresnet.so exports are exactly the functions of include/resnet.h.
awk '{ text = text $0 "\n" } END {
        gsub(/\/\*([^*]|\*+[^*\/])*\*+\//, "", text)   # /* ... */ comments
        gsub(/\/\/[^\n]*/, "", text)                     # // comments
        print text }' "$1" |
    grep -o '\brn_[a-z0-9_]*[[:space:]]*(' | sed 's/[[:space:]]*($//' | sort -u
