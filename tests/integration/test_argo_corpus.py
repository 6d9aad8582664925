# SPDX-License-Identifier: Apache-2.0
"""The Argo compatibility corpus: `artifuse keys` against keys worked out from argo.md.

One test per directory in tests/integration/argo_corpus/ (see its README.md for the layout).
No S3 server and no mount: `artifuse keys` is a dry run. Each case runs with a clean
environment (no ARGO_*, ARTIFUSE_* or AWS_* variables from the caller) plus the case's `env`
file, in the case's directory, so relative file names in messages are stable.
"""
import difflib
import os
import shlex
import subprocess

import pytest

from helpers import BIN, ROOT, SANITIZER_MARKS

CORPUS = os.path.join(ROOT, "tests", "integration", "argo_corpus")
ARGO_TEMPLATE_FILE = "/var/run/argo/template"

# File in a case directory -> the flag that names it, added unless `args` names it already.
AUTO_FILES = (("spec.yaml", "--spec"), ("template.json", "--argo-template"),
              ("repository.yaml", "--repository-config"))


def _cases():
    return sorted(d for d in os.listdir(CORPUS) if os.path.isdir(os.path.join(CORPUS, d)))


def _read(case_dir, name):
    p = os.path.join(case_dir, name)
    if not os.path.exists(p):
        return None
    with open(p, encoding="utf-8") as f:
        return f.read()


def _lines(text):
    """One item per line; empty lines are ignored."""
    return [line for line in (text or "").split("\n") if line != ""]


def _env(case_dir):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C",
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
           "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}
    for line in _lines(_read(case_dir, "env")):
        name, sep, value = line.partition("=")
        assert sep, f"{case_dir}/env: '{line}' is not NAME=VALUE"
        env[name] = value
    return env


def _argv(case_dir, paths=()):
    extra = _lines(_read(case_dir, "args"))
    argv = [BIN, "keys"]
    for fname, flag in AUTO_FILES:
        if os.path.exists(os.path.join(case_dir, fname)) and flag not in extra:
            argv += [flag, fname]
    return argv + extra + list(paths)


def _run(case_dir, argv):
    env = _env(case_dir)
    r = subprocess.run(argv, cwd=case_dir, env=env, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    shown = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                     if k not in ("PATH", "LC_ALL", "ASAN_OPTIONS", "UBSAN_OPTIONS"))
    repro = f"cd {shlex.quote(case_dir)} && env -i {shown} {' '.join(shlex.quote(a) for a in argv)}"
    bad = [line for line in r.stderr.splitlines() if any(m in line for m in SANITIZER_MARKS)]
    assert not bad, f"sanitizer report:\n{r.stderr}\nreproduce with:\n{repro}"
    return r, repro


def _diff(want, got, what):
    return "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        f"{what} (expected)", f"{what} (artifuse)"))


@pytest.mark.parametrize("case", _cases())
def test_case(case):
    case_dir = os.path.join(CORPUS, case)
    if not os.path.exists(BIN):
        pytest.skip(f"artifuse is not built at {BIN} (set ARTIFUSE_BIN)")
    expected = _read(case_dir, "expected")
    expected_error = _read(case_dir, "expected_error")
    paths = _lines(_read(case_dir, "paths"))
    expected_paths = _read(case_dir, "expected_paths")
    assert (expected is not None) + (expected_error is not None) == 1, \
        f"{case}: give exactly one of expected and expected_error"
    assert bool(paths) == (expected_paths is not None), \
        f"{case}: paths and expected_paths go together"
    if "--spec" not in _argv(case_dir) and "--argo-template" not in _argv(case_dir) \
            and os.path.exists(ARGO_TEMPLATE_FILE):
        pytest.skip(f"{ARGO_TEMPLATE_FILE} exists here and would be read instead of the case's input")

    r, repro = _run(case_dir, _argv(case_dir))
    if expected_error is not None:
        want = expected_error.strip("\n")
        errs = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 1 and r.stdout == "" and len(errs) == 1 and \
            errs[0].startswith("artifuse: error: ") and want in errs[0], (
                f"expected exit status 1 and one error line containing:\n  {want}\n"
                f"got exit status {r.returncode}\nstderr:\n{r.stderr}stdout:\n{r.stdout}"
                f"reproduce with:\n{repro}")
        return
    assert r.returncode == 0, f"exit status {r.returncode}\nstderr:\n{r.stderr}\nreproduce with:\n{repro}"
    assert r.stdout == expected, (_diff(expected, r.stdout, "keys") + f"stderr:\n{r.stderr}"
                                  f"reproduce with:\n{repro}")
    if paths:
        r, repro = _run(case_dir, _argv(case_dir, paths))
        assert r.returncode == 0, f"exit status {r.returncode}\nstderr:\n{r.stderr}\nreproduce with:\n{repro}"
        assert r.stdout == expected_paths, (_diff(expected_paths, r.stdout, "keys PATH...") +
                                            f"stderr:\n{r.stderr}reproduce with:\n{repro}")


def test_corpus_is_large_enough():
    """The corpus is the compatibility claim: keep it broad."""
    assert len(_cases()) >= 25
