"""Starting and stopping a `cada serve` process for the end-to-end tests."""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

from e2e_common import assert_no_backtrace


class Served:
    """`cada serve` on a free loopback port; `url` is its /v1 base. Stop with stop() (SIGTERM)."""

    def __init__(self, cada, model, workdir, name="served", extra=(), env=None):
        self.port_file = os.path.join(workdir, f"{name}.port")
        self.log_path = os.path.join(workdir, f"{name}.log")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([str(cada), "serve", "--model", str(model), "--port", "0", "--port-file",
                                      self.port_file, *map(str, extra)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 120
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"cada serve did not start:\n{self.output()}")
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + "/v1"
        while self.get("/health")[0] != 200:
            time.sleep(0.05)

    def output(self):
        self.log.flush()
        return open(self.log_path).read()

    def request(self, method, path, body=None, raw=None, headers=None, timeout=120):
        """(status, parsed JSON or text) of one request; body is JSON, raw bytes are sent as is."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.root + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path):
        try:
            return self.request("GET", path, timeout=10)
        except (urllib.error.URLError, ConnectionError):
            return 0, None

    def post(self, path, body, **kw):
        return self.request("POST", path, body=body, **kw)

    def stop(self, expect_rc=0, signal_sent=False):
        """SIGTERM (unless already sent), wait, check the exit code and that nothing printed a backtrace."""
        if self.proc.poll() is None and not signal_sent:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=120)
        out = self.output()
        assert_no_backtrace(out, "cada serve")
        if expect_rc is not None and rc != expect_rc:
            raise SystemExit(f"cada serve exited {rc}, expected {expect_rc}:\n{out[-3000:]}")
        return out
