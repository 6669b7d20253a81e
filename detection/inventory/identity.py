"""Identity claims from decoded protocol fields: who a device says it is, with the field that said it.

`claims(event)` returns what one event tells about the identity of its endpoints. Each claim names
the attribute (vendor, model, product, firmware, serial, name, hardware, ...), the value, the field
path it came from and a strength: 3 the device announced it (Modbus 43/14, S7 SZL, CIP identity,
BACnet device object, OPC UA BuildInfo, MMS identify, FINS controller data, DNP3 device attributes,
PROFINET DCP identify), 2 derived from an announced value (vendor from an S7 order number or a
BACnet/CIP/PROFINET vendor id), 1 a hint (MQTT client id, OPC UA application URI, OUI of the MAC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.protocols.profinet import Profinet
from pipeline.schema import Event

from .vendors import vendor_from_model

Side = Literal["source", "destination"]
STRONG, DERIVED, HINT = 3, 2, 1
ATTRS = ("vendor", "product", "model", "firmware", "hardware", "serial", "name", "device_type")


@dataclass(frozen=True)
class Claim:
    attr: str
    value: str
    path: str
    strength: int
    side: Side = "source"
    ip: str | None = None  # the asset's address when the event has none (PROFINET DCP: the IP the device announces)


def _add(out: list[Claim], attr: str, value: object, path: str, strength: int, side: Side = "source", ip: str | None = None) -> None:
    if value is None:
        return
    text = " ".join(str(value).split()).strip("\x00 ")
    if text and text.lower() not in ("unknown", "n/a", "none"):
        out.append(Claim(attr, text[:200], path, strength, side, ip))


def _is_response(e: Event) -> bool:
    n = e.network
    return n is not None and n.direction == "response"


def claims(e: Event) -> list[Claim]:
    """Identity claims one event makes (empty for most events)."""
    out: list[Claim] = []
    mb = e.modbus
    if mb is not None and mb.device_id is not None and mb.message_type == "response" and mb.exception_code is None:
        d, p = mb.device_id, "modbus.device_id."
        _add(out, "vendor", d.vendor_name, p + "vendor_name", STRONG)
        _add(out, "model", d.product_code, p + "product_code", STRONG)
        _add(out, "model", d.model_name, p + "model_name", DERIVED)
        _add(out, "product", d.product_name, p + "product_name", STRONG)
        _add(out, "product", d.product_code, p + "product_code", DERIVED)
        _add(out, "firmware", d.revision, p + "revision", STRONG)
        _add(out, "name", d.user_application_name, p + "user_application_name", STRONG)
    s7 = e.s7comm
    if s7 is not None and _is_response(e):
        p = "s7comm."
        _add(out, "model", s7.module_order_number, p + "module_order_number", STRONG)
        _add(out, "firmware", s7.firmware_version, p + "firmware_version", STRONG)
        _add(out, "hardware", s7.hardware_version, p + "hardware_version", STRONG)
        _add(out, "product", s7.module_type_name, p + "module_type_name", STRONG)
        _add(out, "name", s7.module_name, p + "module_name", STRONG)
        _add(out, "name", s7.system_name, p + "system_name", DERIVED)
        _add(out, "serial", s7.serial_number, p + "serial_number", STRONG)
        v = vendor_from_model(s7.module_order_number)
        if v is not None:
            _add(out, "vendor", v.name, p + "module_order_number", DERIVED)
        elif s7.copyright and "siemens" in s7.copyright.lower():
            _add(out, "vendor", "Siemens", p + "copyright", DERIVED)
        elif s7.module_type_name or s7.firmware_version:
            _add(out, "vendor", "Siemens", p + "szl_id", HINT)  # S7comm SZL identity is Siemens' protocol
    en = e.enip
    if en is not None and en.identity is not None:
        i, p = en.identity, "enip.identity."
        if i.vendor_name and not i.vendor_name.startswith("unknown_"):
            _add(out, "vendor", i.vendor_name, p + "vendor_name", STRONG)
        elif i.vendor_id is not None:
            _add(out, "vendor", f"CIP vendor {i.vendor_id}", p + "vendor_id", DERIVED)
        _add(out, "product", i.product_name, p + "product_name", STRONG)
        _add(out, "model", i.product_name, p + "product_name", STRONG)
        _add(out, "firmware", i.revision, p + "revision", STRONG)
        _add(out, "serial", i.serial_number, p + "serial_number", STRONG)
        _add(out, "device_type", i.device_type_name, p + "device_type_name", STRONG)
    bn = e.bacnet
    if bn is not None:
        if bn.service_name == "i_am":
            if bn.vendor_name:
                _add(out, "vendor", bn.vendor_name, "bacnet.vendor_name", DERIVED)
            elif bn.vendor_id is not None:
                _add(out, "vendor", f"BACnet vendor {bn.vendor_id}", "bacnet.vendor_id", DERIVED)
            if bn.device_instance is not None:
                _add(out, "device_type", "bacnet_device", "bacnet.device_instance", DERIVED)
        elif _is_response(e):
            props = bn.properties or []
            items = [(pp.object_type_name, pp.property_name, pp.value, f"bacnet.properties[{i}].value") for i, pp in enumerate(props)]
            if not items:
                items = [(bn.object_type_name, bn.property_name, bn.value, "bacnet.value")]
            for otype, pname, value, path in items:
                if otype != "device" or value is None:
                    continue
                attr = _BACNET_DEVICE_PROPS.get(pname or "")
                if attr is not None:
                    _add(out, attr[0], value, f"{path} ({pname})", attr[1])
    ua = e.opcua
    if ua is not None:
        if ua.is_response or _is_response(e):
            for i, ep in enumerate(ua.endpoints or []):
                _add(out, "product", ep.application_uri, f"opcua.endpoints[{i}].application_uri", HINT)
                _add(out, "name", ep.application_name, f"opcua.endpoints[{i}].application_name", DERIVED)
                _add(out, "product_uri", ep.product_uri, f"opcua.endpoints[{i}].product_uri", HINT)
            bi = ua.build_info
            if bi is not None:  # Server.ServerStatus.BuildInfo read from the server: what it announces itself
                p = "opcua.build_info."
                _add(out, "vendor", bi.manufacturer_name, p + "manufacturer_name", STRONG)
                _add(out, "model", bi.product_name, p + "product_name", STRONG)
                _add(out, "product", bi.product_name, p + "product_name", STRONG)
                _add(out, "product_uri", bi.product_uri, p + "product_uri", STRONG)
                _add(out, "firmware", bi.software_version, p + "software_version", STRONG)
                _add(out, "build", bi.build_number, p + "build_number", STRONG)
            _add(out, "name", ua.application_name, "opcua.application_name", DERIVED)
            _add(out, "product", ua.application_uri, "opcua.application_uri", HINT)
        else:
            _add(out, "name", ua.application_name, "opcua.application_name", HINT)
            _add(out, "product", ua.application_uri, "opcua.application_uri", HINT)
    mm = e.mms
    if mm is not None and mm.service == "identify" and mm.pdu_type == "confirmed-ResponsePDU":
        _add(out, "vendor", mm.vendor_name, "mms.vendor_name", STRONG)
        _add(out, "model", mm.model_name, "mms.model_name", STRONG)
        _add(out, "product", mm.model_name, "mms.model_name", DERIVED)
        _add(out, "firmware", mm.revision, "mms.revision", STRONG)
    fi = e.fins
    if fi is not None and fi.message_type == "response" and fi.controller_model:
        _add(out, "model", fi.controller_model, "fins.controller_model", STRONG)
        _add(out, "firmware", fi.controller_version, "fins.controller_version", STRONG)
        _add(out, "vendor", "Omron", "fins.controller_model", DERIVED)  # FINS is Omron's protocol
    dn = e.dnp3
    if dn is not None and dn.message_type in ("response", "unsolicited_response"):
        for i, o in enumerate(dn.objects or ()):
            attr = _DNP3_ATTRIBUTES.get(o.variation) if o.group == 0 else None
            if attr is None:
                continue
            for j, pt in enumerate(o.points or ()):
                value = pt.text if pt.text is not None else pt.value
                path = f"dnp3.objects[{i}].points[{j}] (g0v{o.variation})"
                for name, strength in attr:
                    _add(out, name, value, path, strength)
    pn = e.profinet
    if pn is not None:
        _profinet(pn, e, out)
    mq = e.mqtt
    if mq is not None and mq.client_id and mq.message_type_name == "connect":
        _add(out, "name", mq.client_id, "mqtt.client_id", HINT)
    return out


_BACNET_DEVICE_PROPS: dict[str, tuple[str, int]] = {
    "vendor-name": ("vendor", STRONG),
    "model-name": ("model", STRONG),
    "firmware-revision": ("firmware", STRONG),
    "application-software-version": ("software", STRONG),
    "object-name": ("name", STRONG),
    "serial-number": ("serial", STRONG),
    "description": ("description", DERIVED),
    "location": ("location", DERIVED),
}

# DNP3 device attributes (group 0) an outstation reports about itself, by variation (IEEE 1815-2012 11.9.2;
# the variation names Wireshark's DNP3 dissector shows).
_DNP3_ATTRIBUTES: dict[int, tuple[tuple[str, int], ...]] = {
    242: (("firmware", STRONG),),  # device manufacturer's software version
    243: (("hardware", STRONG),),  # device manufacturer's hardware version
    245: (("location", DERIVED),),  # user-assigned location
    246: (("asset_id", STRONG),),  # user-assigned ID code/number
    247: (("name", STRONG),),  # user-assigned device name
    248: (("serial", STRONG),),  # device serial number
    250: (("product", STRONG), ("model", DERIVED)),  # device product name and model
    252: (("vendor", STRONG),),  # device manufacturer's name
}

# PROFINET vendor ids (the PI-assigned VendorID of DCP DeviceID blocks and IO CM object UUIDs). Only ids a
# source names: 0x002a is Siemens (the corpus' S7-300EC answers DCP Identify with it; so do the ET 200 and
# S7 devices of the icsnpp IO CM traces). Other ids stay numbers ("PROFINET vendor 0x015a").
PROFINET_VENDORS: dict[int, str] = {0x002A: "Siemens"}
_PN_ROLES = ((0x01, "io_device"), (0x02, "io_controller"), (0x04, "io_multidevice"), (0x08, "io_supervisor"))


def _profinet_vendor(out: list[Claim], vendor_id: int, device_id: int | None, path: str, side: Side, ip: str | None) -> None:
    name = PROFINET_VENDORS.get(vendor_id)
    _add(out, "vendor", name or f"PROFINET vendor 0x{vendor_id:04x}", path + "vendor_id", DERIVED, side, ip)
    if device_id is not None:
        _add(out, "device_id", f"{vendor_id:04x}:{device_id:04x}", path + "device_id", STRONG, side, ip)


def _profinet(pn: Profinet, e: Event, out: list[Claim]) -> None:
    """DCP Identify/Get responses and Hello announce a device (for the IP its IP block gives: DCP is layer 2);
    IO CM object UUIDs name the vendor/device of the IO device (or controller) a request goes to."""
    if pn.service == "dcp" and (pn.dcp_service_type_name == "response" or pn.dcp_service_name == "hello"):
        ip = pn.ip if pn.ip and pn.ip != "0.0.0.0" else None
        if ip is None:
            return
        p = "profinet."
        _add(out, "name", pn.station_name, p + "station_name", STRONG, ip=ip)
        _add(out, "model", pn.type_of_station, p + "type_of_station", STRONG, ip=ip)
        _add(out, "product", pn.type_of_station, p + "type_of_station", DERIVED, ip=ip)
        if pn.vendor_id is not None:
            _profinet_vendor(out, pn.vendor_id, pn.device_id, p, "source", ip)
        if pn.device_role:
            roles = [n for bit, n in _PN_ROLES if pn.device_role & bit]
            _add(out, "device_type", "profinet_" + "+".join(roles or [f"role_{pn.device_role}"]), p + "device_role", STRONG, ip=ip)
    elif pn.service == "io_cm" and pn.vendor_id is not None and pn.interface_name in ("device", "controller"):
        # The object UUID names the server of the call: the destination of a request, the source of a response.
        if pn.rpc_packet_type_name == "request":
            side: Side = "destination"
        elif pn.rpc_packet_type_name == "response":
            side = "source"
        else:
            return
        _profinet_vendor(out, pn.vendor_id, pn.device_id, "profinet.", side, None)
