"""What running hosted code as a user of its own costs a start, against the same start as the portal's user.

    .venv/bin/python bench/hosted_users.py [--rounds N] [--markdown FILE]

A gateway server (``python -m gateways.server``, the portal's command) started by a real keeper
(``keeper.launch``) in its Landlock sandbox, timed from the launch until its readiness probe (a
ping over the gateway protocol) made it running, then stopped. Two columns, interleaved round by
round so that the machine's noise falls on both alike:

* **before**: as the portal's own user in the Landlock sandbox alone, as every start was before
  hosted users (and the mount namespace) came;
* **baseline**: as the portal's own user (no account in the Spec: the portal as an ordinary user,
  or PORTAL_HOSTED_USERS=off), with the sandbox's private mount namespace, which it gets since it
  owns var/;
* **own user**: as a dynamic user (uid 40999, its home made and given to it first, as the start
  task does with ``own_folder``), the portal's default when it runs as root.

The ratio of the medians is the cost; target: within 10 % (no noticeable slowdown). Needs root
(to switch users); otherwise it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal.process import accounts, keeper, sandbox  # noqa: E402
from portal.process.spec import Spec  # noqa: E402
from portal.process.states import EXITED, FATAL, RUNNING  # noqa: E402

UID = 40999


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start(base: Path, name: str, account: accounts.Account | None, namespace: bool = True) -> float:
    var = base / "var"
    run_dir = var / "run" / name
    home = base / "hosted" / name
    accounts.own_folder(str(home), account)
    port = free_port()
    spec = Spec(
        name=name,
        argv=[sys.executable, "-m", "gateways.server", "--host", "127.0.0.1", "--port", str(port), "--log-file", "-"],
        env={"PYTHONPATH": str(ROOT)}, cwd=str(ROOT),
        probe={"kind": "import", "path": "gateways.probe:ping", "host": "127.0.0.1", "port": port, "timeout": 2.0},
        init_timeout=15, restart_policy="never",
        sandbox=sandbox.portal_policy(var_dir=str(var), base_dir=str(ROOT), run_dir=str(home),
                                      hidden=[str(base / "hosted")], rest="writable"),
        account=account.to_dict() if account else None,
    )
    assert spec.sandbox is not None
    spec.sandbox["namespace"] = namespace
    t0 = time.perf_counter()
    keeper.launch(spec, run_dir, trigger="bench")
    status = keeper.wait_for(run_dir, {RUNNING, FATAL, EXITED}, timeout=20, interval=0.002)
    elapsed = time.perf_counter() - t0
    if status.get("state") != RUNNING:
        raise SystemExit(f"{name} did not start: {status.get('error')}")
    keeper.request_stop(run_dir, trigger="bench")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    if not accounts.can_switch():
        print("hosted_users: skipped, the portal switches users only as root (run it as root)")
        return 0
    # As the start task does: shares the bytecode too, the gateway's server's (GatewayAdapter.hosted_code) with it.
    problem = accounts.installation_problem(str(ROOT), shared=("gateways", "gateways/protocol"))
    if problem:
        print(f"hosted_users: skipped, {problem}")
        return 0
    base = Path(tempfile.mkdtemp(prefix="bench-hosted-"))
    base.chmod(0o711)
    (base / "var").mkdir(mode=0o700)
    before, portal_user, own_user = ("before: the portal's user, Landlock only", "baseline: the portal's own user",
                                     "own user (dynamic uid)")
    columns: dict[str, list[float]] = {before: [], portal_user: [], own_user: []}
    own = accounts.dynamic(UID, str(base / "hosted" / "own"))
    try:
        one_start(base, "warm", None)  # imports and caches warm for every column
        for i in range(args.rounds):
            order = [(None, False, before), (None, True, portal_user), (own, True, own_user)]
            for account, namespace, label in order if i % 2 == 0 else reversed(order):
                columns[label].append(one_start(base, label.split(":")[0].split()[0], account, namespace))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    base_median = statistics.median(columns[portal_user])
    lines = [f"### Start of a gateway by its keeper, {args.rounds} interleaved rounds", "",
             "| | median | min | max | × baseline |", "|---|---:|---:|---:|---:|"]
    for label, values in columns.items():
        median = statistics.median(values)
        lines.append(f"| {label} | {median * 1000:.0f} ms | {min(values) * 1000:.0f} ms | "
                     f"{max(values) * 1000:.0f} ms | {median / base_median:.2f} |")
    ratio = statistics.median(columns[own_user]) / base_median
    lines += ["", f"Target: own user within 1.10x of the baseline: {'met' if ratio <= 1.10 else 'MISSED'}."]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
