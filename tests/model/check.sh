#!/bin/sh
# check.sh: verify a Promela model with spin, once per configuration.
# Usage: check.sh pass|fail MODEL.pml WORKDIR [CONFIG...]
# A CONFIG is one argument holding spin's -D flags ("" for none; one empty
# CONFIG if none is given). Each runs in WORKDIR/<n>: spin -a, cc pan.c
# (-DSAFETY: assertions and invalid end states), ./pan. "pass" wants every
# search complete with "errors: 0"; "fail" (a mutant) wants "errors: N" with
# N > 0 from every configuration. Anything else (no verdict from pan, a
# search cut short) fails the check either way. $SPIN and $CC name the tools.
# A CONFIG is split into its flags on purpose (unquoted, with globbing off).
# shellcheck disable=SC2086
set -euf

if [ $# -lt 3 ]; then
  echo "usage: $0 pass|fail MODEL.pml WORKDIR [CONFIG...]" >&2
  exit 2
fi
expect=$1
model=$2
workdir=$3
shift 3
case $expect in
  pass | fail) ;;
  *)
    echo "check.sh: expected pass or fail, got '$expect'" >&2
    exit 2
    ;;
esac
[ $# -gt 0 ] || set -- ""
case $model in
  /*) ;;
  *) model=$(pwd)/$model ;;
esac
spin=${SPIN:-spin}
cc=${CC:-cc}
name=$(basename "$model")

n=0
for config in "$@"; do
  n=$((n + 1))
  dir=$workdir/$n
  rm -rf "$dir"
  mkdir -p "$dir"
  log=$dir/pan.out
  (cd "$dir" && "$spin" -a $config "$model") >"$dir/spin.out" 2>&1 || {
    cat "$dir/spin.out"
    echo "check.sh: $name [$config]: spin -a failed" >&2
    exit 2
  }
  (cd "$dir" && "$cc" -O2 -w -DSAFETY -DMEMLIM=2048 -o pan pan.c) >"$dir/cc.out" 2>&1 || {
    cat "$dir/cc.out"
    echo "check.sh: $name [$config]: cc pan.c failed" >&2
    exit 2
  }
  # pan exits 0 whatever it finds: the verdict is in its report.
  (cd "$dir" && ./pan -m100000) >"$log" 2>&1 || true
  errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
  states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$log" | head -n 1)
  secs=$(sed -n 's/^pan: elapsed time \([0-9.e+-]*\) .*/\1/p' "$log" | head -n 1)
  if [ -z "$errors" ]; then
    cat "$log"
    echo "check.sh: $name [$config]: no verdict from pan" >&2
    exit 2
  fi
  summary="$name [${config:-no flags}]: errors: $errors ($states states, ${secs:-?} s)"
  if [ "$expect" = pass ]; then
    if [ "$errors" -ne 0 ]; then
      cat "$log"
      [ ! -f "$dir/$name.trail" ] || (cd "$dir" && "$spin" -t -p -g $config "$model") 2>&1 | tail -n 60
      echo "FAIL $summary: the model has an error" >&2
      exit 1
    fi
    if grep -q -e 'Search not completed' -e 'max search depth too small' -e 'reached -DMEMLIM' "$log"; then
      cat "$log"
      echo "FAIL $summary: the search did not complete" >&2
      exit 1
    fi
    echo "ok   $summary"
  else
    if [ "$errors" -eq 0 ]; then
      cat "$log"
      echo "FAIL $summary: the mutant was not caught" >&2
      exit 1
    fi
    echo "ok   $summary, as a mutant must: $(grep -m 1 '^pan:[0-9]' "$log")"
  fi
done
