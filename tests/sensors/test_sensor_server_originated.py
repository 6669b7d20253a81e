"""A connection opened by the host on the server port is still decoded with roles by port."""

from __future__ import annotations

from sensors.decoders.base import Direction
from sensors.engine import Sensor
from tests.sensors.sensor_helpers import CLIENT, SERVER, recording_spec, tcp_frame


def test_server_port_host_opening_the_connection_still_speaks_as_server() -> None:
    spec, rec = recording_spec(port=SERVER[1])
    sensor = Sensor(registry={"rec": spec}, file_sha256="0" * 64, file="t.pcap")
    # the host on the server port sends the SYN (seen on real PLCs and in suricata-verify's modbus.pcap)
    frames = [
        tcp_frame(seq=100, flags="S", to_server=False),
        tcp_frame(seq=500, ack=101, flags="SA", to_server=True),
        tcp_frame(b"ANSWER", seq=101, ack=501, flags="PA", to_server=False),
        tcp_frame(b"QUERY!", seq=501, ack=107, flags="PA", to_server=True),
    ]
    events = []
    for i, f in enumerate(frames, 1):
        events += sensor.process(i, 1000.0 + i, 1, f)
    events += sensor.finish()
    assert rec.stream(Direction.TO_CLIENT) == b"ANSWER"  # sent from the server port: a response
    assert rec.stream(Direction.TO_SERVER) == b"QUERY!"
    (flow,) = [e for e in events if e.event.dataset == "flow"]
    # the flow record keeps the true originator: the server-port host sent the SYN
    assert (flow.source.ip, flow.source.port) == (SERVER[0], SERVER[1])  # type: ignore[union-attr]
    assert flow.network.protocol == "rec"  # type: ignore[union-attr]
    assert CLIENT[0] in flow.related.ip  # type: ignore[union-attr]
