"""The command line's contract: private output files, exit codes, clear errors."""
import stat

import pytest

from harness import TLSTAP_BIN, Tlstap


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_output_file_is_private(procs, tmp_path):
    fresh = tmp_path / "fresh.json"
    existing = tmp_path / "existing.json"
    existing.write_text("stale\n")
    existing.chmod(0o644)
    # umask 0: only tlstap's own choice of mode counts.
    for output in (fresh, existing):
        tap = Tlstap(procs, output, umask=0)
        assert mode(output) == 0o600, f"{output.name} is {oct(mode(output))} while capturing"
        tap.stop()
        assert mode(output) == 0o600
    assert "stale" not in existing.read_text()


def test_not_root_exits_3(procs, tmp_path):
    run = procs.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TLSTAP_BIN,
                     "--format", "json"], check=False, timeout=30)
    assert run.returncode == 3, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("tlstap: error:")]
    assert len(errors) == 1 and "root" in errors[0], run.stderr
    assert run.stdout == b""


@pytest.mark.parametrize("args, complaint", [
    pytest.param(["--bogus"], "--bogus", id="unknown-option"),
    pytest.param(["--format", "xml"], "xml", id="bad-format"),
    pytest.param(["--buffer-size", "0"], "buffer-size", id="buffer-size-0"),
    pytest.param(["--pid", "abc"], "abc", id="pid-not-a-number"),
    pytest.param(["--comm", "a-name-of-16-chr"], "15 characters", id="comm-too-long"),
    pytest.param(["--verbose", "--quiet"], "exclude", id="verbose-and-quiet"),
    pytest.param(["--cgroup", "/no/such/cgroup"], "not a cgroup v2 directory", id="cgroup-missing"),
    pytest.param(["--cgroup", "/tmp"], "not a cgroup v2 directory", id="cgroup-not-a-cgroup"),
    pytest.param(["--cgroup=/"] * 17, "at most 16", id="cgroup-too-many"),
    pytest.param(["--netns", "tlstap-no-such-ns"], "/run/netns/tlstap-no-such-ns: No such file", id="netns-missing"),
    pytest.param(["--netns", "/proc/self/ns/pid"], "not a network namespace", id="netns-of-another-kind"),
])
def test_usage_errors_exit_2(procs, tmp_path, args, complaint):
    output = tmp_path / "never.json"
    run = procs.run([TLSTAP_BIN, "--output", output, *args], check=False, timeout=30)
    assert run.returncode == 2, run.stderr
    assert run.stderr.startswith("tlstap: ") and complaint in run.stderr, run.stderr
    assert not output.exists(), "a usage error must not create the output file"


def test_help_exits_0(procs):
    run = procs.run([TLSTAP_BIN, "--help"], timeout=30)
    assert b"--pid" in run.stdout and b"--comm" in run.stdout and b"--buffer-size" in run.stdout
