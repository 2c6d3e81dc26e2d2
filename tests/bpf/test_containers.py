"""Containers started from one image share its layers' files: a library in a
layer, reached through each container's own overlay mount (each with its own
st_dev), is one file to the kernel's uprobes. tlstap attaches it once, and
every container's calls are captured once, with no call taken for abandoned.
The containers here are two overlay mounts of one lower layer holding a copy
of the system's libssl, used by Python clients through LD_LIBRARY_PATH."""
import os
import re
import shutil
import subprocess

import pytest

from harness import (PY_EGRESS, PY_INGRESS, PYTHON, RUN_TIMEOUT, assert_exchange, finish_py_client, go,
                     http_post, pattern, real_exe, start_py_client, system_libssl)


@pytest.fixture
def containers(tmp_path):
    """Two overlay mounts ("containers") of one image layer; unmounted afterwards."""
    layer = tmp_path / "layer"
    (layer / "lib").mkdir(parents=True)
    shutil.copy2(system_libssl(), layer / "lib" / "libssl.so.3")
    roots = []
    try:
        for name in ("a", "b"):
            for part in ("upper", "work", "root"):
                (tmp_path / name / part).mkdir(parents=True)
            root = tmp_path / name / "root"
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={layer},upperdir={tmp_path / name / 'upper'},workdir={tmp_path / name / 'work'}",
                            root], check=True, capture_output=True, timeout=30)
            roots.append(root)
        yield layer, roots
    finally:
        for root in roots:
            subprocess.run(["umount", root], check=True, timeout=30)


def test_a_library_in_a_shared_layer_is_attached_once(procs, tlstap, server, cert, tmp_path, containers):
    layer, roots = containers
    devices = {os.stat(root / "lib" / "libssl.so.3").st_dev for root in roots}
    assert len(devices) == 2, "each mount has its own st_dev"
    tap = tlstap("-v")
    runs = []
    for n, root in enumerate([roots[0], roots[1], roots[0]]):
        request = tmp_path / f"request{n}"
        request.write_bytes(http_post(server.address, pattern(3000 + n, f"container-{n}")))
        env = {**os.environ, "LD_LIBRARY_PATH": str(root / "lib")}
        client, out, _ = start_py_client(procs, server.host, server.port, cert.cert, request, "--wait-go", env=env)
        # The library is loaded from the container's mount: once tlstap has
        # seen it (attached, or known for the same file), the client sends. A
        # mount seen before is already covered: its file's probes are there.
        if n < 2:
            seen = re.compile(rf"tlstap: (attached \d+ probes to |)/proc/{client.pid}/root{re.escape(str(root))}/lib/"
                              .encode())
            assert tap.stderr.wait_for(seen, RUN_TIMEOUT), "\n".join(tap.stderr.lines[-20:])
        maps = open(f"/proc/{client.pid}/maps").read()
        assert f"{root}/lib/libssl.so.3" in maps, "the client uses the container's libssl"
        go(client)
        finish_py_client(client, out)
        runs.append((client.pid, server.next_connection()))
    capture = tap.stop()  # and no call taken for one left without its return

    for pid, record in runs:
        assert_exchange(capture, server, record, pid, comm="python3", exe=real_exe(PYTHON),
                        egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
    attached = [line for line in capture.stderr if re.search(r"attached \d+ probes to .*/root/lib/libssl\.so\.3", line)]
    assert len(attached) == 1 and str(roots[0]) in attached[0], attached
    known = [line for line in capture.stderr if "in an overlay layer, looked at already" in line]
    assert len(known) == 1 and str(roots[1]) in known[0] and f"{layer}/lib/libssl.so.3" in known[0], known
