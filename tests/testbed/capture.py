"""The testbeds' capture: tcpdump writing a pcap on one interface, run through a namespace wrapper.

Used by the IP plant's runner (tests/testbed/runner.py) and the layer-2 recorders (tests/testbed/stacks/l2.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path


class Tcpdump:
    """``tcpdump -U -s 0 -n -w pcap`` on ``iface`` (plus a filter), started inside ``wrap``'s namespace.

    ``start`` returns once tcpdump says "listening on" (its stderr is kept in ``err``); ``stop`` sends SIGINT,
    so the last packets are written, and kills it after 5 s.
    """

    def __init__(self, wrap: Callable[[list[str]], list[str]], iface: str, pcap: Path,
                 capture_filter: Sequence[str] = ()) -> None:
        self.wrap = wrap
        self.iface = iface
        self.pcap = pcap
        self.capture_filter = list(capture_filter)
        self.proc: subprocess.Popen[bytes] | None = None
        self.err: list[str] = []

    def start(self, timeout: float = 10.0) -> None:
        argv = ["tcpdump", "-i", self.iface, "-U", "-s", "0", "-n", "-w", str(self.pcap), *self.capture_filter]
        if os.geteuid() == 0:
            argv[1:1] = ["-Z", "root"]  # keep ownership simple; don't drop to tcpdump user
        proc = self.proc = subprocess.Popen(self.wrap(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                            start_new_session=True)
        ready = threading.Event()

        def reader() -> None:
            assert proc.stderr is not None
            for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                self.err.append(line)
                if "listening on" in line:
                    ready.set()

        threading.Thread(target=reader, daemon=True).start()
        if not ready.wait(timeout) or proc.poll() is not None:
            raise RuntimeError(f"tcpdump did not start: {self.err}")

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
