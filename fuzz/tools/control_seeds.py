#!/usr/bin/env python3
"""control_seeds.py: writes the seed corpus of control_frame_fuzzer (fuzz/corpus/control_frame/).

Each seed is byte 0 (the chunk size the fuzzer feeds, minus 1) and then a byte stream of
frames: a 32-bit big-endian length and a serialized p2proxy.control.wire.Frame. The frames are
written below in protobuf text format and encoded by protoc itself (protoc --encode), so the
seeds do not depend on the code under test. valid_* seeds pass ValidateFrame; the others are
each one way a stream or a frame goes wrong. Run from the tree's root:

  python3 fuzz/tools/control_seeds.py
"""
import os
import struct
import subprocess

PROTO_ROOT = "src/control"
PROTO = "control.proto"
OUT = "fuzz/corpus/control_frame"

KEY1 = "\\001" * 32
KEY2 = "\\002" * 32
KEY4 = "\\004" * 32
SPKI = "\\253" * 32
SHORT_KEY = "\\001" * 31
CERT = "-----BEGIN CERTIFICATE-----\\nMIIBszCCAVmgAwIBAgIU\\n-----END CERTIFICATE-----\\n"
KEY = "-----BEGIN PRIVATE KEY-----\\nMIGHAgEAMBMGByqGSM49\\n-----END PRIVATE KEY-----\\n"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\\nMIHzMIGbAgEAMBEx\\n-----END CERTIFICATE REQUEST-----\\n"

FRAMES = {
    "enroll": f"""enroll {{ token: "p2p-tok-0123456789abcdef" wireguard_public_key: "{KEY1}"
        kind: NODE_KIND_SITE requested_name: "s1" csr_pem: "{CSR}" }}""",
    "enrolled": f"""enrolled {{ node_id: "s-1" name: "s1" node_address: "100.96.0.10"
        certificate_chain_pem: "{CERT}{CERT}" ca_certificate_pem: "{CERT}"
        server_spki_sha256: "{SPKI}" server_wireguard_public_key: "{KEY2}"
        server_wireguard_endpoint: "p2p.example.com:51820" server_node_address: "100.96.0.1" }}""",
    "hello": 'hello { node_id: "s-1" last_snapshot_version: 7 }',
    "site_snapshot": f"""snapshot {{ version: 8
        peers {{ public_key: "{KEY2}" allowed_ips: "100.96.0.1/32" endpoint: "203.0.113.7:51820"
                persistent_keepalive_seconds: 25 node_id: "server" kind: NODE_KIND_SERVER }}
        peers {{ public_key: "{KEY4}" allowed_ips: "100.96.0.20/32" node_id: "c-1"
                kind: NODE_KIND_CLIENT name: "alice-laptop" user: "alice" roles: "admins" roles: "ops" }}
        resources {{ name: "vault" domains: "vault.example.internal" domains: "*.vault.example.internal"
                    address: "100.96.128.20" port: 443 kind: RESOURCE_KIND_HTTPS
                    targets {{ site_id: "s-1" address: "10.0.10.15:8080" }} targets {{ site_id: "s-2" }}
                    access {{ users: "bob" roles: "admins" paths {{ prefix: "/admin" users: "alice" }}
                             case_insensitive_paths: true }} }}
        resources {{ name: "ssh" address: "100.96.128.21" port: 22 kind: RESOURCE_KIND_TCP
                    targets {{ site_id: "s-1" address: "10.0.10.16:22" }} access {{ roles: "ops" }} }}
        resources {{ name: "lan-dns" address: "100.96.128.21" port: 53 kind: RESOURCE_KIND_UDP
                    targets {{ site_id: "s-1" address: "[fd00::53]:53" }} access {{ users: "*" }} }}
        site {{ certificates {{ resource: "vault" certificate_chain_pem: "{CERT}" private_key_pem: "{KEY}" }} }} }}""",
    "client_snapshot": f"""snapshot {{ version: 9
        peers {{ public_key: "{KEY2}" allowed_ips: "100.96.0.1/32" endpoint: "203.0.113.7:51820"
                node_id: "server" kind: NODE_KIND_SERVER }}
        peers {{ public_key: "{KEY1}" allowed_ips: "100.96.0.10/32" allowed_ips: "100.96.128.20/32"
                allowed_ips: "fd00:96::/64" endpoint: "[2001:db8::5]:41000" node_id: "s-1" kind: NODE_KIND_SITE }}
        resources {{ name: "vault" domains: "vault.example.internal" address: "100.96.128.20" port: 443
                    kind: RESOURCE_KIND_HTTPS targets {{ site_id: "s-1" }} }}
        client {{ zones: "example.internal" zones: "corp"
                 records {{ name: "vault.example.internal" address: "100.96.128.20" }}
                 records {{ name: "*.vault.example.internal" address: "100.96.128.20" }} }} }}""",
    "snapshot_ack": "ack { snapshot_version: 8 }",
    "refused_ack": 'ack { snapshot_version: 9 error: "resource \'vault\': no certificate" }',
    "audit_ack": "ack { audit_batch: 3 }",
    "endpoint_report": 'endpoint_report { endpoints: "192.168.1.20:51820" endpoints: "[fd00::20]:51820" }',
    "health": 'health { sites { site_id: "s-1" up: true rtt_micros: 1500 } sites { site_id: "s-2" } }',
    "audit_batch": f"""audit_batch {{ sequence: 3
        events {{ time_unix_ms: 1763921401000 kind: AUDIT_KIND_HTTPS resource: "vault"
                 peer_key: "{KEY4}" peer: "100.96.0.20:41000" user: "alice" roles: "admins"
                 method: "GET" host: "vault.example.internal" path: "/admin/users?page=2"
                 status: 200 bytes_out: 5120 duration_ms: 12 allowed: true }}
        events {{ time_unix_ms: 1763921402000 kind: AUDIT_KIND_TCP resource: "ssh"
                 peer_key: "{KEY4}" peer: "100.96.0.21:50000" reason: "no grant" }} }}""",
    "ping": "ping { id: 42 }",
    "pong": "pong { id: 42 }",
    "error": 'error { code: ERROR_CODE_TOKEN_EXPIRED message: "token expired; ask for a new one" }',
    # Parses, but ValidateFrame refuses it (a 31-byte key, a non-canonical prefix).
    "invalid_key": f'enroll {{ token: "t" wireguard_public_key: "{SHORT_KEY}" kind: NODE_KIND_CLIENT csr_pem: "{CSR}" }}',
    "invalid_prefix": f"""snapshot {{ version: 1 peers {{ public_key: "{KEY2}" allowed_ips: "100.96.0.1/24"
        node_id: "server" kind: NODE_KIND_SERVER }} client {{ }} }}""",
}


def encode(text):
    return subprocess.run(
        ["protoc", f"--proto_path={PROTO_ROOT}", "--encode=p2proxy.control.wire.Frame", PROTO],
        input=text.encode(), stdout=subprocess.PIPE, check=True).stdout


def framed(body):
    return struct.pack(">I", len(body)) + body


def write(name, chunk, stream):
    assert 1 <= chunk <= 256
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(bytes([chunk - 1]) + stream)


def main():
    os.makedirs(OUT, exist_ok=True)
    frames = {name: framed(encode(text)) for name, text in FRAMES.items()}
    for name, wire in frames.items():
        prefix = "invalid_" if name.startswith("invalid_") else "valid_"
        write(prefix + name.removeprefix("invalid_"), 256, wire)
    # Whole conversations, fed in small chunks so frames straddle reads.
    write("session_enroll", 7, frames["enroll"] + frames["enrolled"])
    write("session_site", 1, frames["hello"] + frames["site_snapshot"] + frames["snapshot_ack"] +
          frames["audit_batch"] + frames["audit_ack"] + frames["ping"] + frames["pong"])
    write("session_client", 33, frames["hello"] + frames["client_snapshot"] +
          frames["snapshot_ack"] + frames["endpoint_report"] + frames["health"] + frames["error"])
    # Streams the reader refuses.
    write("too_large", 256, struct.pack(">I", (1 << 20) + 1) + b"\x4a\x02\x08\x2a")
    write("zero_length", 256, frames["ping"] + struct.pack(">I", 0))
    write("garbage", 256, framed(b"\xff\xff\xff\xff"))
    write("not_utf8", 256, framed(b"\x1a\x03\x0a\x01\xff"))
    write("unknown_type", 256, framed(b"\xa0\x06\x01"))
    write("truncated", 3, frames["hello"] + frames["ping"][:-2])
    # An enum as a 5-byte varint of 0xFFFFFFFF (-1), which re-encodes in 10 bytes.
    write("negative_enum", 256, framed(b"\x0a\x06\x18\xff\xff\xff\xff\x0f"))


if __name__ == "__main__":
    main()
