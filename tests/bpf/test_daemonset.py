"""tlstap deployed as deploy/kubernetes/tlstap.yaml deploys it: in a container
of its own, run by runc for a private containerd, with what the manifest's pod
spec asks for (the host's pid namespace, privilege, the host paths it mounts)
and its args. It must see the host's processes and other containers' as
tlstap on the host does: pids, executables, containers and pods, every byte."""
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from containerd import Containerd
from harness import (CURL, TLSTAP_BIN, Tlstap, assert_connection, assert_exchange, remove_cgroup_tree)

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFEST = DEPLOY / "kubernetes" / "tlstap.yaml"
IMAGE_DIR = "/opt/tlstap"  # where the test's container finds the binary (the image's is on its PATH)


def daemonset_pod():
    """The pod spec and the tlstap container of the manifest's DaemonSet."""
    with open(MANIFEST) as f:
        [daemonset] = [d for d in yaml.safe_load_all(f) if d and d["kind"] == "DaemonSet"]
    pod = daemonset["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, container


def ctr_options(pod, container):
    """What the kubelet and containerd's CRI make of the pod spec, as `ctr run`
    options and bind mounts. Raises on fields this translation does not know,
    so a manifest change cannot pass untested."""
    def assert_known(fields, known, where):
        assert set(fields) <= known, f"the test does not know {where} {set(fields) - known}"

    assert_known(pod, {"hostPID", "tolerations", "terminationGracePeriodSeconds", "containers", "volumes"}, "pod")
    assert_known(container, {"name", "image", "imagePullPolicy", "args", "securityContext", "resources",
                             "volumeMounts"}, "container")
    assert_known(container.get("securityContext", {}), {"privileged"}, "securityContext")
    for mount in container.get("volumeMounts", []):
        assert_known(mount, {"name", "mountPath", "readOnly", "mountPropagation"}, "volumeMount")
    for volume in pod.get("volumes", []):
        assert_known(volume, {"name", "hostPath"}, "volume")
    options = []
    if pod.get("hostPID"):
        # The test's own pid namespace is the host's (this machine's pid 1 may be unreadable).
        options.append(f"--with-ns=pid:/proc/{os.getpid()}/ns/pid")
    if container.get("securityContext", {}).get("privileged"):
        # All capabilities, no seccomp, /sys read-write. ctr makes no cgroup
        # namespace (the CRI makes none for privileged containers either).
        options.append("--privileged")
    host_paths = {v["name"]: v["hostPath"] for v in pod.get("volumes", [])}
    mounts = []
    for mount in container.get("volumeMounts", []):
        host = host_paths[mount["name"]]
        if host.get("type") == "DirectoryOrCreate":
            os.makedirs(host["path"], exist_ok=True)
        mounts.append((host["path"], mount["mountPath"], "ro" if mount.get("readOnly") else "rw"))
    return options, mounts


@pytest.fixture
def containerd(procs, tmp_path):
    runtime = Containerd(procs, tmp_path / "containerd")
    yield runtime
    runtime.cleanup()


def curl(cert, url):
    return [CURL, "-sS", "--http1.1", "--cacert", cert.cert, url]


@dataclass
class Run:
    capture: object
    container_id: str
    pod_uid: str
    in_pod_pid: int
    in_pod_record: object
    on_host_pid: int
    on_host_record: object


def run_as_the_daemonset(procs, server, cert, containerd, tmp_path, extra_args, pod_first):
    """tlstap in the DaemonSet's container (its args, then extra_args(pod UID))
    while curl runs in a pod's container, then on the host. pod_first: the pod
    runs before tlstap starts, else it is scheduled after (its container waits
    for tlstap to find it). tlstap is stopped with SIGINT, which ctr passes on."""
    pod, container = daemonset_pod()
    options, mounts = ctr_options(pod, container)
    args = list(container.get("args", []))
    # The harness asks for JSON itself, into a file it reads (the DaemonSet writes to its log).
    assert args[:2] == ["--format", "json"], "the DaemonSet is expected to write JSON lines"
    top = f"/tlstap-test-{os.getpid()}-daemonset"
    pod_uid = str(uuid.uuid4())
    try:
        go_file = tmp_path / "go"

        def start_pod():
            names = {"io.kubernetes.cri.sandbox-namespace": "shop", "io.kubernetes.cri.sandbox-name": "web-0",
                     "io.kubernetes.cri.container-name": "client"}
            argv = ["sh", "-c", f'while [ ! -e {go_file} ]; do sleep 0.05; done; exec "$@"', "sh",
                    *curl(cert, server.url("/from-a-pod"))]
            container_id, in_pod = containerd.start(argv, f"{top}/kubepods/besteffort/pod{pod_uid}",
                                                    shared_dirs=(tmp_path, cert.cert.parent), annotations=names)
            return container_id, in_pod, containerd.pid_of(container_id)

        if pod_first:
            container_id, in_pod, in_pod_pid = start_pod()
        tap_id, launcher = containerd.run_command(
            [], f"{top}/kubepods/burstable/pod{uuid.uuid4()}", options,
            [*mounts, (os.path.dirname(TLSTAP_BIN), IMAGE_DIR, "ro"), (tmp_path, tmp_path, "rw")])
        tap = Tlstap(procs, tmp_path / "capture.json", [*args[2:], *extra_args(pod_uid)], launcher=launcher,
                     binary=f"{IMAGE_DIR}/{os.path.basename(TLSTAP_BIN)}")
        tap_pid = containerd.pid_of(tap_id)
        assert os.readlink(f"/proc/{tap_pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"), \
            "tlstap is not in a container of its own"
        if not pod_first:
            container_id, in_pod, in_pod_pid = start_pod()
            tap.stderr.wait_for(f"--pod {pod_uid}: started".encode(), timeout=10)

        go_file.touch()
        in_pod.wait(timeout=60)
        assert in_pod.returncode == 0, in_pod.stderr.read()
        in_pod_record = server.next_connection()

        on_host = procs.run(curl(cert, server.url("/from-the-host")))
        on_host_record = server.next_connection()
        capture = tap.stop()
    finally:
        containerd.cleanup()
        remove_cgroup_tree(top)
    return Run(capture, container_id, pod_uid, in_pod_pid, in_pod_record, on_host.pid, on_host_record)


def assert_pod_client(run, server):
    """The pod's curl: its connection byte for byte, its container and pod names on every line."""
    capture = run.capture
    record = run.in_pod_record
    assert_connection(capture.connection(run.in_pod_pid), comm="curl", exe=CURL, local=record.peer,
                      remote=server.address, role="client", egress=record.received, ingress=record.sent,
                      egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    placement = ("container_id", "pod_uid", "pod_namespace", "pod_name", "container_name")
    assert {tuple(e.get(k) for k in placement) for e in capture.of_pid(run.in_pod_pid)} == \
        {(run.container_id, run.pod_uid, "shop", "web-0", "client")}
    [exchange] = capture.exchanges_of(run.in_pod_pid, "/from-a-pod")
    assert (exchange["pod_namespace"], exchange["pod_name"], exchange["container_name"]) == \
        ("shop", "web-0", "client")


def test_daemonset_captures_the_host_and_its_pods(procs, server, cert, containerd, tmp_path):
    """As the manifest runs it: a host process and a pod's container, with host
    pids, executables, the other container's ID and pod names, both ends of
    each exchange byte for byte."""
    run = run_as_the_daemonset(procs, server, cert, containerd, tmp_path, extra_args=lambda pod_uid: (),
                               pod_first=True)
    assert_exchange(run.capture, server, run.on_host_record, run.on_host_pid, comm="curl", exe=CURL,
                    egress_functions=("SSL_write",), ingress_functions=("SSL_read",))
    assert {e.get("container_id") for e in run.capture.of_pid(run.on_host_pid)} == {None}
    assert_pod_client(run, server)


def test_daemonset_narrowed_to_one_pod(procs, server, cert, containerd, tmp_path):
    """With --pod added, as the manifest suggests, for a pod scheduled onto the
    node after tlstap started there: tlstap waits, finds the pod's cgroup
    through the host's /sys/fs/cgroup the manifest mounts, and captures its
    process alone."""
    run = run_as_the_daemonset(procs, server, cert, containerd, tmp_path,
                               extra_args=lambda pod_uid: ("--pod", pod_uid), pod_first=False)
    assert {e["pid"] for e in run.capture.events} == {run.in_pod_pid}
    assert_pod_client(run, server)


def runtime_packages(dockerfile):
    """The packages the Dockerfile's last stage installs."""
    last_stage = dockerfile.read_text().rsplit("\nFROM ", 1)[1]
    command = re.search(r"apt-get install (.*?)(?:&&|$)", last_stage.replace("\\\n", " "), re.S).group(1)
    return {word for word in command.split() if not word.startswith("-")}


def test_image_installs_what_tlstap_links():
    """deploy/Dockerfile's runtime stage installs the package of every shared
    library the binary links, and no package it does not need."""
    libraries = re.findall(r"=> (/\S+)", subprocess.run(["ldd", TLSTAP_BIN], capture_output=True, text=True,
                                                       check=True).stdout)
    needed = set()
    for library in libraries:
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(library)], capture_output=True, text=True)
        if owner.returncode != 0:  # merged /usr: dpkg knows the path the package installed
            owner = subprocess.run(["dpkg", "-S", library], capture_output=True, text=True, check=True)
        needed.add(owner.stdout.split(":")[0])
    assert runtime_packages(DEPLOY / "Dockerfile") == needed
