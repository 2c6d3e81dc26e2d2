"""A private containerd (its own root, state and socket under a test's tmp_path,
no CRI plugin) running real runc containers: the host's /usr and /etc
mounted read-only over an empty root, the host's network, any cgroup path."""
import os
import shutil
import signal
import subprocess
import time
import uuid

from harness import RUN_TIMEOUT

# Where containerd 1.6 puts shim sockets and stdio fifos whatever its state
# directory: removed after the test when it made them.
SHARED_RUN_DIR = "/run/containerd"

CONFIG = """
version = 2
root = "{dir}/root"
state = "{dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{dir}/sock"
"""


def new_container_id():
    return uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex digits, as runtimes make them


class Containerd:
    def __init__(self, procs, directory):
        self.directory = directory
        directory.mkdir()
        (directory / "config.toml").write_text(CONFIG.format(dir=directory))
        self.rootfs = directory / "rootfs"
        for sub in ("usr", "etc", "tmp"):
            (self.rootfs / sub).mkdir(parents=True)
        for link in ("bin", "lib", "lib64", "sbin"):  # Debian 12's merged /usr
            os.symlink(f"usr/{link}", self.rootfs / link)
        self.socket = directory / "sock"
        self.daemon = procs.start(["containerd", "--config", directory / "config.toml"], stop_signal=signal.SIGTERM,
                                  stdout=subprocess.DEVNULL, stderr=open(directory / "containerd.log", "wb"))
        deadline = time.monotonic() + RUN_TIMEOUT
        while not self.socket.exists():
            assert self.daemon.poll() is None, (directory / "containerd.log").read_text()
            assert time.monotonic() < deadline, "containerd did not start"
            time.sleep(0.05)
        self.procs = procs
        self.ids = []
        self.made_run_dir = not os.path.exists(SHARED_RUN_DIR)

    def ctr(self, *args, check=True):
        return subprocess.run(["ctr", "--address", self.socket, *args], capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, check=check)

    def shims(self):
        """Pids of the shims this containerd started (their command lines name its socket)."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if str(self.socket).encode() in cmdline.read().split(b"\0") and pid != str(self.daemon.pid):
                        found.append(int(pid))
            except OSError:
                pass
        return found

    def start(self, argv, cgroup_parent, shared_dirs=(), annotations=None):
        """`ctr run` of argv in a new container, whose cgroup is named after its
        ID under cgroup_parent (as the kubelet's cgroupfs driver does); returns
        the ID and the Popen, which ends with the container. shared_dirs are
        mounted at the same paths; annotations go into the OCI bundle, as
        Kubernetes' CRI plugin puts its pod and container names there."""
        container_id, run = self.run_command(argv, cgroup_parent, ["--net-host"],
                                             [(d, d, "rw") for d in shared_dirs], annotations)
        return container_id, self.procs.start(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run_command(self, argv, cgroup_parent, options=(), mounts=(), annotations=None):
        """The `ctr run` command line of a new container: ctr's options, the
        host's /usr and /etc read-only and mounts (source, destination, "ro" or
        "rw") on top; returns the container's ID and the command."""
        container_id = new_container_id()
        self.ids.append(container_id)
        binds = [f"type=bind,src={src},dst={dst},options=rbind:{mode}"
                 for src, dst, mode in (("/usr", "/usr", "ro"), ("/etc", "/etc", "ro"), *mounts)]
        return container_id, ["ctr", "--address", self.socket, "run", "--rm", *options,
                              "--runc-root", self.directory / "runc", "--cgroup", f"{cgroup_parent}/{container_id}",
                              "--env", "PATH=/usr/bin:/bin", *(f"--mount={m}" for m in binds),
                              *(f"--annotation={k}={v}" for k, v in (annotations or {}).items()),
                              "--rootfs", self.rootfs, container_id, *argv]

    def pid_of(self, container_id):
        """The host pid of the container's first process, once it runs."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            for line in self.ctr("task", "ls").stdout.splitlines()[1:]:
                fields = line.split()
                if fields[0] == container_id and fields[2] == "RUNNING":
                    return int(fields[1])
            time.sleep(0.05)
        raise AssertionError(f"container {container_id} did not start")

    def cleanup(self):
        """Whatever a failed test left: its tasks killed, its containers removed,
        then any shim still there; the daemon is the ProcessGroup's."""
        for container_id in self.ids:
            for args in (("task", "kill", "-s", "SIGKILL"), ("task", "delete", "-f"), ("container", "delete")):
                try:
                    self.ctr(*args, container_id, check=False)
                except subprocess.TimeoutExpired:
                    pass
        self.ids = []
        for pid in self.shims():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.made_run_dir:
            shutil.rmtree(SHARED_RUN_DIR, ignore_errors=True)

