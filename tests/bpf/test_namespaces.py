"""Containers, pods and network namespaces: every line names where its process
runs, and --netns captures one network namespace (a pod's) and nothing else."""
import os
import signal
import subprocess
import uuid

import pytest

from containerd import Containerd

from harness import (CURL, PY_EGRESS, PY_INGRESS, PYTHON, RUN_TIMEOUT, TESTPROGS, LineReader, PrivateLibsslClient,
                     TlsServer, assert_connection, assert_exchange, cgroup2_mount, finish_py_client, go, http_post,
                     in_cgroup, read_response, real_exe, remove_cgroup_tree)


def own_cgroup(pid):
    with open(f"/proc/{pid}/cgroup") as lines:
        return next(line[3:].rstrip("\n") for line in lines if line.startswith("0::"))


class FakePod:
    """cgroups laid out as the kubelet and containerd lay out a pod with two
    containers (under a test directory of the v2 hierarchy), removed on exit."""

    def __init__(self):
        self.mount = cgroup2_mount()
        assert self.mount, "this test needs the cgroup v2 hierarchy (mounted on unified and hybrid hosts)"
        self.uid = str(uuid.uuid4())
        self.top = f"/tlstap-test-{os.getpid()}-pods"
        self.pod = (f"{self.top}/kubepods.slice/kubepods-besteffort.slice/"
                    f"kubepods-besteffort-pod{self.uid.replace('-', '_')}.slice")
        self.container_ids = [uuid.uuid4().hex + uuid.uuid4().hex for _ in range(2)]
        self.containers = [f"{self.pod}/cri-containerd-{id}.scope" for id in self.container_ids]

    def __enter__(self):
        try:
            for cgroup in self.containers:
                os.makedirs(self.mount + cgroup)
        except BaseException:
            remove_cgroup_tree(self.top)
            raise
        return self

    def __exit__(self, *_):
        remove_cgroup_tree(self.top)

    def run_in(self, procs, container, argv):
        return procs.run(in_cgroup(self.mount + self.containers[container], argv))


def curl(cert, url):
    return [CURL, "-sS", "--http1.1", "--cacert", cert.cert, url]


def test_lines_name_the_container_and_pod(procs, tlstap, server, cert):
    """A process in a pod's container: its data and http lines carry the
    container's ID, the pod's UID, its cgroup and network namespace; a host
    process's carry no container."""
    with FakePod() as pod:
        tap = tlstap()
        inside = pod.run_in(procs, 0, curl(cert, server.url("/in-a-pod")))
        inside_record = server.next_connection()
        outside = procs.run(curl(cert, server.url("/on-the-host")))
        server.next_connection()
        capture = tap.stop()

    netns = os.stat("/proc/self/ns/net").st_ino
    assert_connection(capture.connection(inside.pid), comm="curl", exe=CURL, local=inside_record.peer,
                      remote=server.address, role="client", egress=inside_record.received,
                      ingress=inside_record.sent, egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    in_pod = [e for e in capture.events if e["pid"] == inside.pid]
    on_host = [e for e in capture.events if e["pid"] == outside.pid]
    assert in_pod and on_host
    placement = ("cgroup", "container_id", "pod_uid", "netns")
    assert {tuple(e.get(k) for k in placement) for e in in_pod} == \
        {(pod.containers[0], pod.container_ids[0], pod.uid, netns)}
    assert {tuple(e.get(k) for k in placement) for e in on_host} == {(own_cgroup(os.getpid()), None, None, netns)}
    [exchange] = capture.exchanges_of(inside.pid, "/in-a-pod")
    assert (exchange["container_id"], exchange["pod_uid"], exchange["cgroup"]) == \
        (pod.container_ids[0], pod.uid, pod.containers[0])
    [exchange] = capture.exchanges_of(outside.pid, "/on-the-host")
    assert "container_id" not in exchange and "pod_uid" not in exchange


def test_pod_and_container_filters(procs, tlstap, server, cert):
    """--pod UID captures every container of the pod and nothing else;
    --container with a short ID (12 digits, as docker ps shows) only that one."""
    with FakePod() as pod:
        def capture_with(option, value):
            tap = tlstap(option, value)
            first = pod.run_in(procs, 0, curl(cert, server.url("/first-container")))
            server.next_connection()
            second = pod.run_in(procs, 1, curl(cert, server.url("/second-container")))
            record = server.next_connection()
            procs.run(curl(cert, server.url("/on-the-host")))
            server.next_connection()
            return tap.stop(), first, second, record

        whole_pod, first, second, _ = capture_with("--pod", pod.uid)
        one_container, _, second_again, record = capture_with("--container", pod.container_ids[1][:12])

    assert {(e["pid"], e["container_id"]) for e in whole_pod.events} == \
        {(first.pid, pod.container_ids[0]), (second.pid, pod.container_ids[1])}
    assert {(e["pid"], e["container_id"]) for e in one_container.events} == \
        {(second_again.pid, pod.container_ids[1])}
    assert_connection(one_container.connection(second_again.pid), comm="curl", exe=CURL, local=record.peer,
                      remote=server.address, role="client", egress=record.received, ingress=record.sent,
                      egress_functions=("SSL_write",), ingress_functions=("SSL_read",))


def test_workloads_that_start_later(procs, tlstap, server, cert):
    """--pod and --container naming workloads that do not run yet (a DaemonSet's
    tlstap, before the pod is scheduled onto its node): tlstap starts, says it
    waits, and captures each once its cgroup appears, nothing else before or after."""
    pod = FakePod()
    tap = tlstap("--pod", pod.uid, "--container", pod.container_ids[1])
    assert f"--pod {pod.uid}: no pod of that UID runs on this host yet" in "\n".join(tap.stderr.lines)
    procs.run(curl(cert, server.url("/before-the-pod")))
    server.next_connection()
    with pod:
        # Looked for as the kernel reports their cgroups made: the pod by its
        # directory, the --container by its own (inside the pod's).
        tap.stderr.wait_for(f"--pod {pod.uid}: started".encode(), timeout=10)
        tap.stderr.wait_for(f"--container {pod.container_ids[1]}: started".encode(), timeout=10)
        first = pod.run_in(procs, 0, curl(cert, server.url("/first-container")))
        first_record = server.next_connection()
        second = pod.run_in(procs, 1, curl(cert, server.url("/second-container")))
        server.next_connection()
        procs.run(curl(cert, server.url("/on-the-host")))
        server.next_connection()
        capture = tap.stop()

    assert {(e["pid"], e["container_id"]) for e in capture.events} == \
        {(first.pid, pod.container_ids[0]), (second.pid, pod.container_ids[1])}
    assert_connection(capture.connection(first.pid), comm="curl", exe=CURL, local=first_record.peer,
                      remote=server.address, role="client", egress=first_record.received, ingress=first_record.sent,
                      egress_functions=("SSL_write",), ingress_functions=("SSL_read",))


def test_a_container_is_captured_from_its_first_call(procs, tlstap, server, cert):
    """A container that starts after tlstap and makes its TLS call at once (a
    job's curl, 0.1 s after its cgroup is made, about what a runtime takes to
    set a container up): the kernel reports the new cgroup, tlstap adds it to
    the filter in time, and that first call is captured whole. Looking once a
    second instead missed it about nine times in ten."""
    pod = FakePod()
    tap = tlstap("--container", pod.container_ids[0])
    with pod:
        job = pod.run_in(procs, 0, ["sh", "-c", 'sleep 0.1; exec "$@"', "sh",
                                    *curl(cert, server.url("/right-away"))])
        record = server.next_connection()
        capture = tap.stop()

    assert {e["pid"] for e in capture.events} == {job.pid}
    assert_connection(capture.connection(job.pid), comm="curl", exe=CURL, local=record.peer,
                      remote=server.address, role="client", egress=record.received, ingress=record.sent,
                      egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    assert f"--container {pod.container_ids[0]}: started" in "\n".join(tap.stderr.lines)


def test_processes_in_a_workload_before_it_is_found_are_attached(procs, tlstap, server, cert, tmp_path):
    """A process already in a container's cgroup when tlstap finds the container
    (its entrypoint ran before tlstap looked), with a TLS library of its own
    that nothing else uses: that library is attached when the container is,
    and the process's exchange is captured whole."""
    client = PrivateLibsslClient(tmp_path, server, cert, b"from the container's own libssl")
    pod = FakePod()
    tap = tlstap("--container", pod.container_ids[0])
    # Stopped while the container is made and its process starts: tlstap cannot
    # find the container before its process is in it.
    tap.proc.send_signal(signal.SIGSTOP)
    try:
        with pod:
            try:
                client.start(procs, lambda argv: in_cgroup(pod.mount + pod.containers[0], argv))
                tap.proc.send_signal(signal.SIGCONT)
                tap.stderr.wait_for(client.attached(), timeout=10)
                response = client.finish()
                record = server.next_connection()
                capture = tap.stop()
            finally:
                client.kill()
    finally:
        tap.proc.send_signal(signal.SIGCONT)

    assert response == record.sent
    assert {e["container_id"] for e in capture.events} == {pod.container_ids[0]}
    assert_connection(capture.connection(client.proc.pid), comm="python3", exe=real_exe(PYTHON), local=record.peer,
                      remote=server.address, role="client", egress=record.received, ingress=record.sent,
                      egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)


def test_a_process_moved_into_a_filtered_cgroup_is_attached(procs, tlstap, server, cert, tmp_path):
    """--cgroup: a process started outside the cgroup after tlstap (so tlstap
    never looked at it), with a TLS library of its own, then moved in (as a
    shell's echo into cgroup.procs, `systemd-run --scope` or a runtime's exec
    move processes): the library is attached when the process moves, and its
    exchange from then on is captured whole, and nothing of anyone else's."""
    mount = cgroup2_mount()
    assert mount, "this test needs the cgroup v2 hierarchy (mounted on unified and hybrid hosts)"
    top = f"/tlstap-test-{os.getpid()}-moved"
    client = PrivateLibsslClient(tmp_path, server, cert, b"from a process that moved in")
    os.makedirs(mount + top)
    try:
        tap = tlstap("--cgroup", top)
        try:
            client.start(procs)
            with open(f"{mount}{top}/cgroup.procs", "w") as members:
                members.write(str(client.proc.pid))
            tap.stderr.wait_for(client.attached(), timeout=10)
            response = client.finish()
            record = server.next_connection()
            procs.run(curl(cert, server.url("/outside")))
            server.next_connection()
            capture = tap.stop()
        finally:
            client.kill()
    finally:
        remove_cgroup_tree(top)

    assert response == record.sent
    assert {e["pid"] for e in capture.events} == {client.proc.pid}
    assert {e["cgroup"] for e in capture.events} == {top}
    assert_connection(capture.connection(client.proc.pid), comm="python3", exe=real_exe(PYTHON), local=record.peer,
                      remote=server.address, role="client", egress=record.received, ingress=record.sent,
                      egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)


def test_lines_follow_a_process_into_another_cgroup(procs, tlstap, server, cert, tmp_path):
    """No filter: a process tlstap knows moves into a pod's container between
    two exchanges (as a cgroup manager or `cgclassify` moves processes): the
    first exchange's lines keep the cgroup they were sent from, the second's
    name the container and the pod."""
    request = tmp_path / "request"
    request.write_bytes(http_post(server.address, b"sent twice"))
    with FakePod() as pod:
        tap = tlstap()
        client = procs.start([PYTHON, TESTPROGS / "tls_client.py", "--host", server.host, "--port", server.port,
                              "--cafile", cert.cert, "--request", request, "--again"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            out = LineReader(client.stdout)
            assert out.next(RUN_TIMEOUT), "tls_client.py did not connect"
            responses = [read_response(out)]
            records = [server.next_connection()]
            with open(pod.mount + pod.containers[0] + "/cgroup.procs", "w") as members:
                members.write(str(client.pid))
            go(client)
            assert out.next(RUN_TIMEOUT), "tls_client.py did not connect again"
            responses.append(finish_py_client(client, out))
            records.append(server.next_connection())
            capture = tap.stop()
        finally:
            if client.poll() is None:  # out of the pod's cgroup before it is removed
                client.kill()
                client.wait(RUN_TIMEOUT)

    placement = ("cgroup", "container_id", "pod_uid")
    expected = [(own_cgroup(os.getpid()), None, None), (pod.containers[0], pod.container_ids[0], pod.uid)]
    for record, response, where in zip(records, responses, expected):
        assert response == record.sent
        conn = capture.connection(client.pid, local=record.peer)
        assert_connection(conn, comm="python3", exe=real_exe(PYTHON), local=record.peer, remote=server.address,
                          role="client", egress=record.received, ingress=record.sent,
                          egress_functions=PY_EGRESS, ingress_functions=PY_INGRESS)
        assert {tuple(e.get(k) for k in placement) for e in conn.events} == {where}


def test_netns_filter(procs, tlstap, server, cert):
    """--netns NAME, a namespace `ip netns add` made: a server and a client in it
    are captured, both ends whole; the same exchange in the host's namespace is not."""
    name = f"tlstap-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=30)
        inside = ["ip", "netns", "exec", name]
        tap = tlstap("--netns", name)
        pod_server = TlsServer(procs, cert, wrap=inside)
        client = procs.run([*inside, CURL, "-sS", "--http1.1", "--cacert", cert.cert,
                            pod_server.url("/in-the-namespace")])
        record = pod_server.next_connection()
        procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, server.url("/on-the-host")])
        server.next_connection()
        capture = tap.stop()
        namespace = os.stat(f"/run/netns/{name}").st_ino
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=True, timeout=30)

    assert {e["pid"] for e in capture.events} == {client.pid, pod_server.pid}, \
        "processes outside the namespace leaked through --netns"
    assert_exchange(capture, pod_server, record, client.pid, comm="curl", exe=CURL, egress_functions=("SSL_write",),
                    ingress_functions=("SSL_read",))
    assert {e["netns"] for e in capture.events} == {namespace}
    # Each end's view of the one exchange.
    assert sorted((x["pid"], x["path"]) for x in capture.exchanges) == \
        sorted([(client.pid, "/in-the-namespace"), (pod_server.pid, "/in-the-namespace")])


@pytest.fixture
def containerd(procs, tmp_path):
    runtime = Containerd(procs, tmp_path / "containerd")
    yield runtime
    runtime.cleanup()


def test_real_containers(procs, tlstap, server, cert, containerd, tmp_path):
    """Containers runc starts for containerd, in a pod's cgroups named as the
    kubelet's cgroupfs driver names them and with the names Kubernetes' CRI
    plugin records in their bundles: --pod captures both of the pod's, each line
    with its container's real ID and names; --container with a 12-digit ID
    captures that container alone, every byte."""
    top = f"/tlstap-test-{os.getpid()}-containerd"
    pod_uid = str(uuid.uuid4())
    try:
        def run_pod(tap_args_of):
            """Two containers waiting for a go file each, then tlstap, then each curl in turn."""
            containers = []
            for name in ("first", "second"):
                go_file = tmp_path / f"go-{name}-{len(containerd.ids)}"
                argv = ["sh", "-c", f'while [ ! -e {go_file} ]; do sleep 0.05; done; exec "$@"', "sh",
                        *curl(cert, server.url(f"/{name}-container"))]
                names = {"io.kubernetes.cri.sandbox-namespace": "shop", "io.kubernetes.cri.sandbox-name": "web-0",
                         "io.kubernetes.cri.container-name": name}
                container_id, proc = containerd.start(argv, f"{top}/kubepods/besteffort/pod{pod_uid}",
                                                      shared_dirs=(tmp_path, cert.cert.parent), annotations=names)
                containers.append((container_id, proc, go_file))
            pids = [containerd.pid_of(container_id) for container_id, _, _ in containers]
            tap = tlstap(*tap_args_of([container_id for container_id, _, _ in containers]))
            records = []
            for container_id, proc, go_file in containers:
                go_file.touch()
                proc.wait(timeout=60)
                assert proc.returncode == 0, proc.stderr.read()
                records.append(server.next_connection())
            procs.run(curl(cert, server.url("/on-the-host")))
            server.next_connection()
            return tap.stop(), [container_id for container_id, _, _ in containers], pids, records

        whole_pod, pod_ids, pod_pids, _ = run_pod(lambda ids: ("--pod", pod_uid))
        one, one_ids, one_pids, one_records = run_pod(lambda ids: ("--container", ids[1][:12]))
    finally:
        containerd.cleanup()
        remove_cgroup_tree(top)

    placement = ("pid", "container_id", "pod_uid", "pod_namespace", "pod_name", "container_name")
    assert {tuple(e[k] for k in placement) for e in whole_pod.events} == \
        {(pod_pids[0], pod_ids[0], pod_uid, "shop", "web-0", "first"),
         (pod_pids[1], pod_ids[1], pod_uid, "shop", "web-0", "second")}
    assert {(e["pid"], e["container_id"]) for e in one.events} == {(one_pids[1], one_ids[1])}
    record = one_records[1]
    assert_connection(one.connection(one_pids[1]), comm="curl", exe=CURL, local=record.peer, remote=server.address,
                      role="client", egress=record.received, ingress=record.sent, egress_functions=("SSL_write",),
                      ingress_functions=("SSL_read",))
