# SPDX-License-Identifier: Apache-2.0
"""The help, each command's help, the man page and the ARTIFUSE_* variables all come from one
option table (fs/options.c): they must list the same options, and every variable they
document must be read."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import BIN, ROOT

BUILD = os.environ.get("ARTIFUSE_BUILD_DIR", os.path.join(ROOT, "build"))
MAN = os.path.join(BUILD, "fs", "artifuse.1")
COMMANDS = ("mount", "run", "flush", "drain", "status", "keys")

pytestmark = pytest.mark.skipif(not os.path.exists(BIN), reason=f"artifuse is not built at {BIN}")


def clean_env(**extra):
    """The caller's environment without ARTIFUSE_* or ARGO_* settings, plus @extra."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ARTIFUSE_") and not k.startswith("ARGO_")}
    env.update(extra)
    return env


def artifuse(*args, env=None):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30,
                          env=env or clean_env(), stdin=subprocess.DEVNULL)


def man_source():
    r = artifuse("help", "--man")
    assert r.returncode == 0, r.stderr
    return r.stdout


def roff_to_text(src):
    """What a reader sees, near enough to compare words: escapes and fonts removed."""
    text = src.replace("\\-", "-").replace("\\:", "").replace("\\&", "").replace("\\e", "\\")
    return re.sub(r"\\f[BIRP]", "", text)


def long_options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def short_options(text):
    return set(re.findall(r"(?m)^\s+(-[a-zA-Z]), --", text))


def option_lines(text):
    """The options a help text lists as entries (its left column), not those it mentions."""
    return set(re.findall(r"(?m)^  (?:-[a-zA-Z], )?(--[a-z][a-z0-9-]*)", text))


def documented_env():
    """ARTIFUSE_* -> (option, takes a value), from the man page's ENVIRONMENT section."""
    src = man_source()
    env = src[src.index(".SH ENVIRONMENT"):src.index(".SH \"EXIT STATUS\"")]
    found = {}
    for name, opt, rest in re.findall(r"\.TP\n\.B (ARTIFUSE_\w+)\n\\fB((?:\\-|[a-z])+)\\fR(.*)\n",
                                      env):
        found[name] = (opt.replace("\\-", "-"), "true" not in rest)
    return found


def test_the_built_man_page_is_the_binarys():
    if not os.path.exists(MAN):
        pytest.skip(f"no man page at {MAN} (a cross build does not run the binary)")
    with open(MAN) as f:
        assert f.read() == man_source()


def test_help_and_man_page_list_the_same_options():
    help_text = artifuse("--help").stdout
    man = roff_to_text(man_source())
    assert long_options(help_text) == long_options(man)
    assert short_options(help_text) == {"-f", "-o", "-v", "-q", "-h", "-V"}
    for short in short_options(help_text):
        assert f"{short}, --" in man, short
    # every option the help lists is an entry of the man page's OPTIONS, and back
    man_entries = set(re.findall(r"(?m)^\.B (?:-[a-zA-Z], )?(--[a-z][a-z0-9-]*)",
                                 man_source().replace("\\&", "").replace("\\-", "-")))
    assert option_lines(help_text) == man_entries


@pytest.mark.parametrize("cmd", COMMANDS)
def test_command_help_is_that_commands(cmd):
    r = artifuse(cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Usage: artifuse {cmd} "), r.stdout[:200]
    assert r.stdout == artifuse("help", cmd).stdout == artifuse(cmd, "-h").stdout
    everything = option_lines(artifuse("--help").stdout)
    assert option_lines(r.stdout) <= everything
    assert "--help" in option_lines(r.stdout)


def test_keys_help_is_keys_not_the_global_one():
    r = artifuse("keys", "--help")
    assert r.returncode == 0
    assert r.stdout != artifuse("--help").stdout
    opts = option_lines(r.stdout)
    assert {"--spec", "--artifact-repository", "--var", "--as"} <= opts
    # mount's, status's and S3's options are not keys' business
    assert not opts & {"--spool", "--foreground", "--sync-close", "--json", "--endpoint"}
    assert "Commands:" not in r.stdout


def test_status_help_lists_json_and_spool():
    opts = option_lines(artifuse("status", "--help").stdout)
    assert {"--spool", "--json"} <= opts
    assert "--artifact-repository" not in opts


@pytest.mark.parametrize("args,flag", [(["keys", "--spec"], "--spec"),
                                       (["keys", "--endpoint"], "--endpoint"),
                                       (["mount", "-o"], "-o")])
def test_a_missing_value_is_named(args, flag):
    r = artifuse(*args)
    assert r.returncode == 1
    assert r.stderr == f"artifuse: error: option '{flag}' needs a value\n"


def test_man_page_renders_without_warnings():
    with tempfile.NamedTemporaryFile("w", suffix=".1") as f:
        f.write(man_source())
        f.flush()
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
        if shutil.which("man"):
            r = subprocess.run(["man", "--warnings", "-l", f.name], capture_output=True,
                               text=True, env=env, timeout=60)
        elif shutil.which("groff"):
            r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", f.name],
                               capture_output=True, text=True, env=env, timeout=60)
        else:
            pytest.skip("neither man nor groff is installed: the man page cannot be rendered")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr


def test_every_option_has_its_variable():
    """README: every option can be set as ARTIFUSE_<NAME> (but --help, --version, --var)."""
    env = documented_env()
    man_opts = long_options(roff_to_text(man_source()))
    for name, (opt, _) in env.items():
        assert name == "ARTIFUSE_" + opt[2:].upper().replace("-", "_")
        assert opt in man_opts
    expected = option_lines(artifuse("--help").stdout) - {"--help", "--version", "--var"}
    assert {opt for opt, _ in env.values()} == expected


def test_every_documented_flag_variable_is_read():
    flags = [name for name, (_, value) in documented_env().items() if not value]
    assert "ARTIFUSE_NO_OVERWRITE" in flags and "ARTIFUSE_VERBOSE" in flags
    for name in flags:
        r = artifuse("keys", "--artifact-repository", "s3://b/k", "/x",
                     env=clean_env(**{name: "maybe"}))
        assert r.returncode == 1, (name, r.stdout, r.stderr)
        assert f"${name}: 'maybe' is not true or false" in r.stderr, (name, r.stderr)
        r = artifuse("keys", "--artifact-repository", "s3://b/k", "/x",
                     env=clean_env(**{name: "false"}))
        assert r.returncode == 0, (name, r.stderr)


# The variables whose values are checked: a bad one stops the command and is named.
CHECKED = ("UPLOAD_CONCURRENCY", "PART_CONCURRENCY", "UPLOAD_ATTEMPTS", "RETRY_FOR",
           "CONNECT_TIMEOUT", "LOW_SPEED_TIME", "DRAIN_TIMEOUT", "MULTIPART_THRESHOLD",
           "PART_SIZE", "SPOOL_LIMIT", "UNMATCHED", "ARCHIVE_DEFAULT", "ADDRESSING", "CHECKSUM",
           "SSE", "STORAGE_CLASS", "TAG", "METADATA")


@pytest.mark.parametrize("suffix", CHECKED)
def test_checked_value_variables_are_read(suffix):
    name = "ARTIFUSE_" + suffix
    assert name in documented_env()
    r = artifuse("keys", "--artifact-repository", "s3://b/k", "/x",
                 env=clean_env(**{name: "bogus!"}))
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode == 1 and len(lines) == 1, (name, r.stderr)
    assert lines[0].startswith(f"artifuse: error: ${name}: 'bogus!'"), lines[0]


def test_string_variables_are_read(tmp_path):
    r = artifuse("keys", "/out/x.txt", env=clean_env(
        ARTIFUSE_ARTIFACT_REPOSITORY="s3://env-bucket/pre", ARTIFUSE_AS="/out"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "/out/x.txt\ts3://env-bucket/pre/x.txt\n"
    # flags win over the environment
    r = artifuse("keys", "--artifact-repository", "s3://flag-bucket/p", "/out/x.txt",
                 env=clean_env(ARTIFUSE_ARTIFACT_REPOSITORY="s3://env-bucket/pre",
                               ARTIFUSE_AS="/out"))
    assert r.stdout == "/out/x.txt\ts3://flag-bucket/p/x.txt\n", r.stderr
    # the spool, and a flag variable with a value (status --json)
    (tmp_path / "files").mkdir()
    (tmp_path / "journal").mkdir()
    r = artifuse("status", env=clean_env(ARTIFUSE_SPOOL=str(tmp_path), ARTIFUSE_JSON="true"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('{"spool":"' + str(tmp_path) + '"'), r.stdout


def test_meson_install_installs_the_man_page(tmp_path):
    if not shutil.which("meson") or not os.path.exists(os.path.join(BUILD, "build.ninja")):
        pytest.skip(f"no meson build directory at {BUILD}")
    if not os.path.exists(MAN):
        pytest.skip(f"no man page at {MAN} (a cross build does not run the binary)")
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir",
                        str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    found = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs
             if f == "artifuse.1"]
    assert len(found) == 1 and found[0].endswith(os.path.join("man1", "artifuse.1")), found
