#!/usr/bin/env bash
# Fails when a numbered rule of a protocol spec (docs/protocol/*.md) has no test citing it, when
# two specs use the same rule prefix, or when a test name cites a rule no spec declares; prints
# what is wrong. Run by scripts/test.sh before ctest. How tests cite rules: tests/README.md
# ("Rules and tests"); which files may cite a spec's rules: tests/rule-scopes.txt.
#   scripts/check-rules.sh [--verbose]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
"""Every numbered rule of a protocol spec has a test citing it (tests/README.md, "Rules and tests").

A spec is docs/protocol/<name>.md; it declares a rule as a bold id at the start of the rule,
`**N-17.**` or `**S-22**`. A test cites rule P-n when one of the spec's test files (its scope,
tests/rule-scopes.txt) holds the test name prefix `Pn_` (`TEST(NodeNativeWire, N17_...)`) or
the id `P-n` itself (a comment, or the title of a JS test: `test('W-13: ...')`). Ranges such as
`W-4..W-7` cite only their ends.

Fails (exit 1) and prints what is wrong when:
  - a rule has no citing test in its spec's scope;
  - two specs declare rules with the same prefix (unless tests/rule-scopes.txt allows that
    pair for now with `shared-prefix`, and the two scopes share no file);
  - a test name cites a rule that no spec declares (`N19_...` without N-19).
Standard library only.
"""

import glob
import os
import re
import sys

ROOT = os.getcwd()
SPEC_DIR = os.path.join(ROOT, "docs", "protocol")
SCOPES = os.path.join(ROOT, "tests", "rule-scopes.txt")
# Test sources when a spec has no scope line: every test file, never the support code.
DEFAULT_SCOPE = ["tests/unit/*_test.cc", "tests/integration/*_test.cc",
                 "tests/fuzz/*_fuzz.cc", "tests/e2e/node/*.test.js",
                 "tests/e2e/browser/*.test.js"]

RULE_DECL = re.compile(r"\*\*([A-Z]{1,4})-([0-9]+)\.?\*\*")
TEST_NAME = re.compile(r"\bTEST(?:_F|_P)?\(\s*\w+\s*,\s*([A-Z]{1,4})([0-9]+)_")


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def load_scopes():
    """spec name -> list of globs; set of allowed shared prefixes {(prefix, frozenset(specs))}."""
    scopes, shared = {}, set()
    if not os.path.exists(SCOPES):
        return scopes, shared
    last = None  # an indented line continues the previous spec's list
    for n, raw in enumerate(read(SCOPES).splitlines(), 1):
        line = raw.split("#", 1)[0].split()
        if not line:
            continue
        if raw[0].isspace() and last:
            scopes[last] += line
        elif line[0] == "shared-prefix" and len(line) == 4:
            shared.add((line[1], frozenset(line[2:])))
            last = None
        elif line[0].endswith(".md") and len(line) >= 2:
            scopes[line[0]] = line[1:]
            last = line[0]
        else:
            sys.exit(f"check-rules: {SCOPES}:{n}: cannot read this line")
    return scopes, shared


def files_of(globs):
    out = set()
    for g in globs:
        out.update(p for p in glob.glob(os.path.join(ROOT, g), recursive=True) if os.path.isfile(p))
    return sorted(out)


def main():
    verbose = "--verbose" in sys.argv[1:]
    scopes, shared = load_scopes()
    specs = {}  # spec name -> [(prefix, number)] in declaration order
    for path in sorted(glob.glob(os.path.join(SPEC_DIR, "*.md"))):
        rules = []
        for m in RULE_DECL.finditer(read(path)):
            rule = (m.group(1), int(m.group(2)))
            if rule not in rules:
                rules.append(rule)
        if rules:
            specs[os.path.basename(path)] = rules
    for name in scopes:
        if name not in specs:
            print(f"check-rules: tests/rule-scopes.txt names {name}, which declares no rule "
                  f"in docs/protocol/", file=sys.stderr)
    problems = []

    # One prefix, one spec.
    owners = {}
    for name, rules in specs.items():
        for prefix, _ in rules:
            owners.setdefault(prefix, set()).add(name)
    scope_files = {name: files_of(scopes.get(name, DEFAULT_SCOPE)) for name in specs}
    for prefix, names in sorted(owners.items()):
        if len(names) < 2:
            continue
        overlap = set.intersection(*(set(scope_files[n]) for n in names))
        if (prefix, frozenset(names)) in shared and not overlap:
            print(f"check-rules: warning: prefix {prefix}- is used by {', '.join(sorted(names))} "
                  f"(allowed for now by tests/rule-scopes.txt; rename it)", file=sys.stderr)
            continue
        why = f" and their scopes share {len(overlap)} files" if overlap else ""
        problems.append(f"prefix {prefix}- is declared by {', '.join(sorted(names))}{why}")
    for prefix, names in sorted(shared):
        if owners.get(prefix, set()) != set(names):
            print(f"check-rules: warning: tests/rule-scopes.txt allows shared prefix {prefix}- "
                  f"for {', '.join(sorted(names))}, no longer needed: remove the line",
                  file=sys.stderr)

    # Every rule cited in its spec's scope.
    total = 0
    for name, rules in specs.items():
        text = "\n".join(read(p) for p in scope_files[name])
        uncited = []
        for prefix, number in rules:
            total += 1
            cited = re.search(rf"\b{prefix}{number}_|\b{prefix}-{number}(?![0-9])", text)
            if not cited:
                uncited.append(f"{prefix}-{number}")
        if verbose:
            print(f"check-rules: docs/protocol/{name}: {len(rules)} rules, "
                  f"{len(scope_files[name])} test files")
        if uncited:
            problems.append(f"docs/protocol/{name}: no test cites {' '.join(uncited)}")

    # Test names cite rules that exist.
    declared = {rule for rules in specs.values() for rule in rules}
    for path in files_of(DEFAULT_SCOPE):
        for m in TEST_NAME.finditer(read(path)):
            rule = (m.group(1), int(m.group(2)))
            if rule[0] in owners and rule not in declared:
                problems.append(f"{os.path.relpath(path, ROOT)}: test name cites "
                                f"{rule[0]}-{rule[1]}, which no spec declares")

    if problems:
        for p in problems:
            print(f"check-rules: {p}", file=sys.stderr)
        return 1
    print(f"check-rules: {total} rules in {len(specs)} specs, each cited by a test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
PY
