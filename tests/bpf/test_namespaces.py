"""Containers, pods and network namespaces: every line names where its process
runs, and --netns captures one network namespace (a pod's) and nothing else."""
import os
import subprocess
import uuid

from harness import CURL, TlsServer, assert_connection, assert_exchange, cgroup2_mount, in_cgroup


def own_cgroup(pid):
    with open(f"/proc/{pid}/cgroup") as lines:
        return next(line[3:].rstrip("\n") for line in lines if line.startswith("0::"))


def test_lines_name_the_container_and_pod(procs, tlstap, server, cert):
    """A process in a cgroup laid out as the kubelet and containerd lay out a
    pod's container: its data and http lines carry the container's ID, the
    pod's UID, its cgroup and network namespace; a host process's carry no
    container."""
    mount = cgroup2_mount()
    assert mount, "this test needs the cgroup v2 hierarchy (mounted on unified and hybrid hosts)"
    pod_uid = str(uuid.uuid4())
    container_id = uuid.uuid4().hex + uuid.uuid4().hex
    top = f"tlstap-test-{os.getpid()}-pods"
    cgroup = (f"/{top}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{pod_uid.replace('-', '_')}"
              f".slice/cri-containerd-{container_id}.scope")
    os.makedirs(mount + cgroup)
    try:
        tap = tlstap()
        inside = procs.run(in_cgroup(mount + cgroup, [CURL, "-sS", "--http1.1", "--cacert", cert.cert,
                                                      server.url("/in-a-pod")]))
        inside_record = server.next_connection()
        outside = procs.run([CURL, "-sS", "--http1.1", "--cacert", cert.cert, server.url("/on-the-host")])
        server.next_connection()
        capture = tap.stop()
    finally:
        path = mount + cgroup
        while path != mount:
            os.rmdir(path)
            path = os.path.dirname(path)

    netns = os.stat("/proc/self/ns/net").st_ino
    assert_connection(capture.connection(inside.pid), comm="curl", exe=CURL, local=inside_record.peer,
                      remote=server.address, role="client", egress=inside_record.received,
                      ingress=inside_record.sent, egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    in_pod = [e for e in capture.events if e["pid"] == inside.pid]
    on_host = [e for e in capture.events if e["pid"] == outside.pid]
    assert in_pod and on_host
    placement = ("cgroup", "container_id", "pod_uid", "netns")
    assert {tuple(e.get(k) for k in placement) for e in in_pod} == {(cgroup, container_id, pod_uid, netns)}
    assert {tuple(e.get(k) for k in placement) for e in on_host} == {(own_cgroup(os.getpid()), None, None, netns)}
    [exchange] = capture.exchanges_of(inside.pid, "/in-a-pod")
    assert (exchange["container_id"], exchange["pod_uid"], exchange["cgroup"]) == (container_id, pod_uid, cgroup)
    [exchange] = capture.exchanges_of(outside.pid, "/on-the-host")
    assert "container_id" not in exchange and "pod_uid" not in exchange


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
