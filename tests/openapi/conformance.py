"""OpenAPI conformance: schemathesis against Kratos' API document (kratos-api.json, vendored) on both listeners of a
`sallyport serve --dev`.

Zero server errors (5xx) are allowed. Every other finding — a response that violates the schema, an undocumented
status code — must be listed in allowlist.json with the reason Sallyport answers that way (usually: exactly as
Kratos does, where the document is wrong); anything else fails. An allow-list entry no finding used is reported, so
the list shrinks when a behaviour is fixed.

Usage: conformance.py <sallyport binary> [examples per operation, default 15]
Needs `st` (schemathesis, pinned in .ci/run) on PATH or next to this Python.
"""
import json
import os
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = HERE / "kratos-api.json"
ALLOW = HERE / "allowlist.json"
SERVER_ERRORS = {"ST101", "ST102"}  # `not_a_server_error`: never allow-listable
# (listener, path filter) — the public listener gets every path but the admin ones; the admin listener its
# `/admin/*` paths plus the metadata endpoints Kratos serves there.
RUNS = [
    ("public", ["--exclude-path-regex", "^/admin"]),
    ("admin", ["--include-path-regex", "^/admin|^/version$|^/health/"]),
]


def st_binary():
    local = Path(sys.executable).parent / "st"
    return str(local) if local.exists() else shutil.which("st") or sys.exit("schemathesis (st) is not installed")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, workdir):
    # A port free when picked can be taken before the server binds it (another process's outgoing
    # connection): a server that exits before it is ready is started again on other ports.
    for _ in range(3):
        public_port, admin_port = free_port(), free_port()
        env = dict(
            os.environ,
            SERVE_PUBLIC_PORT=str(public_port),
            SERVE_ADMIN_PORT=str(admin_port),
            SERVE_PUBLIC_HOST="127.0.0.1",
            SERVE_ADMIN_HOST="127.0.0.1",
            SELFSERVICE_FLOWS_RECOVERY_ENABLED="true",
            SELFSERVICE_FLOWS_VERIFICATION_ENABLED="true",
            SELFSERVICE_METHODS_CODE_ENABLED="true",
            SELFSERVICE_METHODS_PASSWORD_CONFIG_HAVEIBEENPWNED_ENABLED="false",
            LOG_LEVEL="error",
        )
        log = open(workdir / "server.log", "w")
        proc = subprocess.Popen([binary, "serve", "--dev"], cwd=workdir, env=env, stdout=log, stderr=log)
        urls = {"public": f"http://127.0.0.1:{public_port}", "admin": f"http://127.0.0.1:{admin_port}"}
        for _ in range(150):
            if proc.poll() is not None:
                break
            try:
                if urllib.request.urlopen(urls["public"] + "/health/ready", timeout=1).status == 200:
                    return proc, urls
            except Exception:
                time.sleep(0.2)
        else:
            proc.kill()
            break
        print("the server exited before it was ready; starting it again on other ports:\n"
              + (workdir / "server.log").read_text(), file=sys.stderr)
    sys.exit("the server did not start:\n" + (workdir / "server.log").read_text())


def run(st, listener, url, filters, examples, workdir):
    report_dir = workdir / f"report-{listener}"
    cmd = [
        st, "run", str(SPEC), "--url", url, *filters,
        "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
        "--max-examples", str(examples), "--phases", "examples,fuzzing", "--no-shrink",
        "--seed", "4052", "--request-timeout", "10", "--max-time", "60",
        "--report", "json", "--report-dir", str(report_dir), "--no-color",
    ]
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=240)
    reports = sorted(report_dir.glob("json-*.json"))
    if not reports:
        sys.exit(f"schemathesis wrote no report for the {listener} listener:\n{out.stdout[-4000:]}\n{out.stderr[-2000:]}")
    report = json.loads(reports[-1].read_text())
    if report.get("errors"):
        sys.exit(f"schemathesis could not test some operations on {listener}:\n{out.stdout[-6000:]}")
    findings = set()
    for failure in report["failures"]:
        for op in failure["operations"]:
            findings.add((listener, op if isinstance(op, str) else op.get("label", str(op)), failure["code"]))
    return findings, report, out.stdout


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    examples = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    allow = json.loads(ALLOW.read_text())
    allowed = {(a["listener"], a["operation"], a["check"]): a["reason"] for a in allow}
    st = st_binary()
    workdir = Path(tempfile.mkdtemp(prefix="sallyport-openapi-"))
    proc, urls = start(binary, workdir)
    problems, used = [], set()
    try:
        for listener, filters in RUNS:
            findings, report, stdout = run(st, listener, urls[listener], filters, examples, workdir)
            print(f"{listener}: {report['operations']['tested']} operations, "
                  f"{report['test_cases']['generated']} requests, {len(findings)} finding(s)")
            for f in sorted(findings):
                if f[2] in SERVER_ERRORS:
                    problems.append(f"SERVER ERROR {f}")
                elif f in allowed:
                    used.add(f)
                else:
                    problems.append(f"not allow-listed: {f}")
            if any(f not in allowed for f in findings):
                print(stdout[-12000:])
    finally:
        proc.kill()
        proc.wait()
    for key in sorted(set(allowed) - used):
        print(f"note: allow-list entry not seen in this run: {key}")
    if problems:
        print("\n".join(problems))
        print(f"server log: {workdir / 'server.log'}")
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"OpenAPI conformance: no server errors; {len(used)} known, allow-listed differences")


if __name__ == "__main__":
    main()
