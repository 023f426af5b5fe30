#!/usr/bin/env bash
# tests/func-length.sh [MAX] FILE...: every function longer than MAX lines
# (default 80), as "file:line: name N lines", one a line; exit 1 if any.
#
# The code style (STYLE.md) makes a definition easy to find without a parser:
# the function name at column 1 (return type on the line above), the opening
# "{" alone at column 0 right after the signature's closing ")", the closing
# "}" at column 0. N counts the lines from that "{" to that "}", both
# included; "line" is the line of the name (what grep -n '^name(' gives).
# A "{" at column 0 not right after a line ending in ")" (an initializer) is
# no function. MAX may also be written max=N.
# Exit: 0 none too long, 1 some, 2 usage error or an unreadable file.
set -u
max=80
case ${1:-} in
max=*) max=${1#max=}; shift ;;
[0-9]*) max=$1; shift ;;
esac
if ! [[ $max =~ ^[0-9]+$ ]] || [ $# -eq 0 ]; then
    echo "usage: tests/func-length.sh [MAX] FILE..." >&2
    exit 2
fi
for f in "$@"; do
    [ -r "$f" ] || { echo "func-length: cannot read $f" >&2; exit 2; }
done
awk -v max="$max" '
FNR == 1 { infn = 0; name = ""; last = "" }
infn {
    if ($0 ~ /^}/) {
        n = FNR - start + 1
        seen++
        if (n > max) { printf "%s:%d: %s %d lines\n", FILENAME, nameline, name, n; bad++ }
        infn = 0; name = ""
    }
    next
}
/^\{/ {
    if (name != "" && last ~ /\)[ \t]*$/) { infn = 1; start = FNR }
    next
}
# A line at column 0 that opens with an identifier and has a "(": the name is
# the identifier right before its first "(" (skipping __attribute__).
/^[A-Za-z_][A-Za-z0-9_ \t*]*\(/ {
    s = $0
    gsub(/__attribute__[ \t]*\(\(([^()]|\([^()]*\))*\)\)/, "", s)
    if (match(s, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
        name = substr(s, RSTART, RLENGTH)
        sub(/[ \t]*\($/, "", name)
        nameline = FNR
    }
}
# the last line that is not blank and not a comment, to check the "{" follows ")"
!/^[ \t]*$/ && !/^[ \t]*(\/\*|\*|\/\/)/ { last = $0 }
END {
    # no function found in C files: the layout was not recognised, not "all short"
    if (seen == 0) { print "func-length: no function found: cannot judge" > "/dev/stderr"; exit 2 }
    exit bad ? 1 : 0
}
' "$@"
