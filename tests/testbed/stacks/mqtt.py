"""MQTT (port 1883): Debian's ``mosquitto`` broker, paho-mqtt clients.

Server config: ``allow_anonymous`` (true: the scenario's broker accepts clients without a user
name, which is what the attacker relies on).  The broker runs as a child of the agent, in the
agent's host (namespace), with a generated config file.

Client options: ``user``/``password`` (none: anonymous CONNECT), ``client_id``.
Actions: ``publish`` (topic, payload, qos; ``{i}`` in the payload is the repetition index,
``{v}`` a seeded random reading), ``subscribe`` (topic, qos), ``listen`` (s: stay connected,
counting messages received).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import STOP, emit, supervise

PORT = 1883
TRANSPORT = "tcp"


def serve(cfg: dict[str, Any]) -> int:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    tmp = tempfile.TemporaryDirectory(prefix="qn-mosquitto-")
    conf = Path(tmp.name) / "mosquitto.conf"
    conf.write_text(
        f"listener {int(cfg['port'])} {cfg['bind']}\n"
        f"allow_anonymous {'true' if cfg.get('allow_anonymous', True) else 'false'}\n"
        "persistence false\n"
        "log_dest stderr\n"
        "log_type error\n"
        "user root\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL)
    try:
        return supervise(proc, cfg, "mosquitto", stack="mqtt", broker="mosquitto")
    finally:
        tmp.cleanup()
        emit("stopped")


class Session:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.opts = spec.get("options", {})
        self.client: Any = None
        self.received = 0
        self.rng = random.Random(int(spec.get("seed", 0)))

    def get(self) -> Any:
        import paho.mqtt.client as mqtt

        if self.client is None:
            cid = str(self.opts.get("client_id", f"qn-{self.spec.get('label', 'client')}"))
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
            if self.opts.get("user"):
                client.username_pw_set(str(self.opts["user"]), self.opts.get("password"))

            def on_message(_c: Any, _u: Any, _msg: Any) -> None:
                self.received += 1

            client.on_message = on_message
            client.connect(self.spec["target"], int(self.spec["port"]), keepalive=30)
            client.loop_start()
            deadline = time.monotonic() + float(self.spec.get("timeout", 3.0))
            while not client.is_connected() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not client.is_connected():
                client.loop_stop()
                raise ConnectionError("MQTT CONNACK not received")
            self.client = client
        return self.client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.disconnect()
                self.client.loop_stop()
            finally:
                self.client = None


def _publish(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    payload = str(a.get("payload", "")).replace("{i}", str(a.get("index", 0))).replace(
        "{v}", f"{s.rng.uniform(float(a.get('lo', 20.0)), float(a.get('hi', 25.0))):.2f}")
    info = s.get().publish(str(a["topic"]), payload, qos=int(a.get("qos", 0)))
    info.wait_for_publish(timeout=2.0)
    return {"mid": info.mid, "rc": info.rc}


def _subscribe(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    rc, mid = s.get().subscribe(str(a["topic"]), qos=int(a.get("qos", 0)))
    return {"rc": int(rc), "mid": mid}


def _listen(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.get()
    before = s.received
    STOP.wait(float(a.get("s", 1.0)))
    return {"received": s.received - before}


ACTIONS = {"publish": _publish, "subscribe": _subscribe, "listen": _listen}
