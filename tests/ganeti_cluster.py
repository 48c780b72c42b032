"""A live single-node Ganeti 3.0 (Debian's ganeti, fake hypervisor) in its own namespaces.

ganeti_cluster.sh brings the cluster up inside fresh mount, UTS, network and
pid namespaces, with Ganeti's state bind-mounted from a temporary directory,
and keeps it up while its stdin is open. Commands (`gnt-*`, provider
installs) run inside those namespaces through nsenter; whatever runs outside
(nefeli-eventd watching STATE/lib/queue, nefeli-blockd serving a unix socket
under /tmp) is reachable from inside, since the file system outside /srv,
/run and Ganeti's own directories is the host's. Closing stdin (or killing
unshare) ends the pid namespace and every Ganeti daemon with it, so a crashed
test leaves no cluster behind.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from peers import require_program, require_root

SCRIPT = Path(__file__).resolve().parent / "ganeti_cluster.sh"
NODE = "node1.example.test"
CLUSTER = "cluster.example.test"
# A new instance on this node: the noop OS, one NIC on the bridge, no DNS checks.
INSTANCE_ARGS = ["-o", "noop+default", "-n", NODE, "--no-name-check", "--no-ip-check", "--net", "0:link=gntbr0",
                 "-B", "memory=128M,vcpus=1"]


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def require_cluster_peers() -> None:
    """Skip (fail under CI) without root or Debian's ganeti; call it before starting anything else."""
    require_root("namespaces and bind mounts for a throw-away Ganeti cluster")
    require_program("gnt-cluster", "gnt-instance", "unshare", "nsenter", "ip", "/usr/sbin/sshd")


class GanetiError(AssertionError):
    pass


class GanetiCluster:
    def __init__(self, state: Path, disk_templates: str = "diskless,file") -> None:
        self.state = state
        self.disk_templates = disk_templates
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0  # the namespaces' init (host pid)
        self.log = state.parent / f"{state.name}-cluster.log"

    def start(self, timeout: float = 240) -> GanetiCluster:
        require_cluster_peers()
        (self.state / "lib").mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--uts", "--net", "--pid", "--fork", "--kill-child", "--mount-proc",
                 "bash", str(SCRIPT), str(self.state), self.disk_templates],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, cwd=self.state.parent,
            )
        deadline = time.monotonic() + timeout
        while not (self.state / "ready").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise GanetiError(f"the Ganeti cluster did not come up:\n{self.log_tail()}")
            time.sleep(0.2)
        self.pid = self._child(self.proc.pid)
        return self

    @staticmethod
    def _child(pid: int) -> int:
        """unshare's one child, the init of the new pid namespace."""
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN: look for the parent pid
            children = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == pid]
        if len(children) != 1:
            raise GanetiError(f"unshare {pid} has children {children}, expected one")
        return int(children[0])

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def run(self, *cmd: str, check: bool = True, timeout: float = 180, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
        """Run CMD inside the cluster's namespaces; with check, a failure shows its output."""
        assert self.pid, "the cluster is not running"
        r = subprocess.run(
            ["nsenter", f"--target={self.pid}", "--mount", "--uts", "--net", "--pid",
             f"--wd={cwd or self.state}", *cmd],
            capture_output=True, text=True, timeout=timeout,
        )
        if check and r.returncode != 0:
            raise GanetiError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def wait_for_jobs(self) -> None:
        for job in self.run("gnt-job", "list", "--no-headers", "-o", "id").stdout.split():
            self.run("gnt-job", "wait", job)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
        self.proc = None
        self.pid = 0
