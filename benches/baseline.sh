#!/bin/sh
# Keeps criterion's figures for every hot-path bench in the repository, so that a change which
# makes a hot path slower shows up as a regression against them, on a fresh clone too.
#
#   benches/baseline.sh save     run the benches, keep their figures in benches/baseline/
#   benches/baseline.sh check    run the benches against the kept figures; criterion prints the
#                                change of each and says "Performance has regressed" where it did
#
# The figures are those of the machine that saved them (benches/baseline/MACHINE says which):
# compare on the same kind of machine, or save a baseline of your own before a change.
# Extra arguments go to criterion, e.g. `benches/baseline.sh check 'tee'` runs only the tee
# benches.
set -eu
cd "$(dirname "$0")/.."
name=kept
kept=benches/baseline
runs="target/criterion"
what="${1:-check}"
[ $# -gt 0 ] && shift

case "$what" in
save)
    cargo bench --bench hot_paths --bench families --bench typed -- --save-baseline "$name" "$@"
    rm -rf "$kept"
    (cd "$runs" && find . -type d -name "$name") | while read -r dir; do
        mkdir -p "$kept/$dir"
        cp "$runs/$dir"/*.json "$kept/$dir/"
    done
    {
        grep -m1 "model name" /proc/cpuinfo | sed 's/.*: //'
        echo "$(nproc) cores, $(rustc --version)"
        echo "saved $(date -u +%Y-%m-%dT%H:%MZ) at $(git rev-parse --short HEAD)"
    } > "$kept/MACHINE"
    echo "kept $(find "$kept" -name estimates.json | wc -l) benches in $kept"
    ;;
check)
    if [ ! -d "$kept" ]; then
        echo "no kept figures in $kept: run '$0 save' first" >&2
        exit 2
    fi
    (cd "$kept" && find . -type d -name "$name") | while read -r dir; do
        mkdir -p "$runs/$dir"
        cp "$kept/$dir"/*.json "$runs/$dir/"
    done
    echo "against the figures kept on: $(head -1 "$kept/MACHINE")"
    cargo bench --bench hot_paths --bench families --bench typed -- --baseline "$name" "$@"
    ;;
*)
    echo "usage: $0 save|check [criterion arguments]" >&2
    exit 2
    ;;
esac
