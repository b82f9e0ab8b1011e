#!/usr/bin/env python3
"""snapshot_seeds.py: writes the seed corpus of snapshot_config_fuzzer (fuzz/corpus/snapshot_config/).

Each seed is one serialized p2proxy.control.wire.Frame holding a Snapshot, with no length in
front (the fuzzer also reads control_frame's seeds, which are framed streams). The snapshots are
written below in protobuf text format and encoded by protoc itself (protoc --encode), so the
seeds do not depend on the code under test. They are what the server pushes: site_* to the site
"s-1" (node address 100.96.0.10), client_* to a device whose WireGuard key is RFC 7748 section
6.1's Alice (OWN_PUBLIC below); the fuzzer uses the same node. Every seed passes ValidateFrame;
valid_* are also accepted by the conversion they are meant for, the others are each one reason
a site or client refuses a snapshot. Run from the tree's root:

  python3 fuzz/tools/snapshot_seeds.py
"""
import os
import subprocess

PROTO_ROOT = "src/control"
PROTO = "control.proto"
OUT = "fuzz/corpus/snapshot_config"


def key(byte):
    return "".join(f"\\{byte:03o}" for _ in range(32))


def octal(data):
    return "".join(f"\\{b:03o}" for b in data)


# X25519 public key of RFC 7748 section 6.1's Alice, the fuzzer's own key.
OWN_PUBLIC = octal(bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
SERVER_KEY = key(2)
ALICE_KEY = key(4)
BOB_KEY = key(5)
SITE2_KEY = key(6)
SITE1_KEY = key(7)

CERT = "-----BEGIN CERTIFICATE-----\\nMIIBszCCAVmgAwIBAgIU\\n-----END CERTIFICATE-----\\n"
CHAIN = CERT + CERT
# A P-256 key made for fuzzing (pki_csr_fuzzer's); long enough that the fuzzer looks for it in
# error messages.
KEY = ("-----BEGIN PRIVATE KEY-----\\n"
       "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWjQ18X3pENknsm9N\\n"
       "xFHeM/iTaqUdywlKQ77hknVWLd6hRANCAAT3IRVQAh0wrhy7PDRGUb4EryGIUiAJ\\n"
       "5eti6VDFRqPc/9SW3gMKmTm96N9ivpgSwFyleZLyZjLkzKsvuB+x1CpD\\n"
       "-----END PRIVATE KEY-----\\n")

SERVER_PEER = f"""peers {{ public_key: "{SERVER_KEY}" allowed_ips: "100.96.0.1/32"
    endpoint: "203.0.113.7:51820" persistent_keepalive_seconds: 25 node_id: "server"
    kind: NODE_KIND_SERVER name: "p2p.example.com" }}"""
SITE_PEERS = SERVER_PEER + f"""
  peers {{ public_key: "{ALICE_KEY}" allowed_ips: "100.96.0.20/32" node_id: "c-1"
          kind: NODE_KIND_CLIENT name: "alice-laptop" user: "alice" roles: "admins" roles: "ops" }}
  peers {{ public_key: "{BOB_KEY}" allowed_ips: "100.96.0.21/32" allowed_ips: "fd00:96::21/128"
          node_id: "c-2" kind: NODE_KIND_CLIENT name: "bob-phone" user: "bob" }}"""

VAULT = """resources { name: "vault" domains: "vault.example.internal"
    domains: "*.vault.example.internal" address: "100.96.128.20" port: 443 kind: RESOURCE_KIND_HTTPS
    targets { site_id: "s-1" address: "10.0.10.15:8080" } targets { site_id: "s-2" }
    access { users: "bob" roles: "admins"
             paths { prefix: "/admin" users: "alice" roles: "ops" }
             paths { prefix: "/api/v1/" roles: "admins" } case_insensitive_paths: true } }"""
SSH = """resources { name: "ssh" address: "100.96.128.21" port: 22 kind: RESOURCE_KIND_TCP
    targets { site_id: "s-1" address: "10.0.10.16:22" } access { roles: "ops" } }"""
DNS = """resources { name: "lan-dns" domains: "dns.lan.example.internal" address: "100.96.128.21"
    port: 53 kind: RESOURCE_KIND_UDP targets { site_id: "s-1" address: "[fd00::53]:53" }
    access { users: "*" } }"""
WIKI = """resources { name: "wiki" domains: "*.wiki.example.internal" address: "100.96.128.22"
    port: 443 kind: RESOURCE_KIND_HTTPS targets { site_id: "s-1" address: "[fd00::80]:80" }
    access { users: "alice" users: "bob" } }"""


def cert(resource):
    return f'certificates {{ resource: "{resource}" certificate_chain_pem: "{CHAIN}" private_key_pem: "{KEY}" }}'


def site(version, body, certs=()):
    return f"snapshot {{ version: {version} {body} site {{ {' '.join(cert(r) for r in certs)} }} }}"


CLIENT_PEERS = SERVER_PEER + f"""
  peers {{ public_key: "{SITE1_KEY}" allowed_ips: "100.96.0.10/32" allowed_ips: "100.96.128.20/32"
          allowed_ips: "100.96.128.21/32" allowed_ips: "fd00:96::/64"
          endpoint: "[2001:db8::5]:41000" node_id: "s-1" kind: NODE_KIND_SITE name: "office" }}
  peers {{ public_key: "{SITE2_KEY}" allowed_ips: "100.96.0.11/32" endpoint: "198.51.100.9:51820"
          persistent_keepalive_seconds: 25 node_id: "s-2" kind: NODE_KIND_SITE }}"""
CLIENT_RESOURCES = """resources { name: "vault" domains: "vault.example.internal" address: "100.96.128.20"
    port: 443 kind: RESOURCE_KIND_HTTPS targets { site_id: "s-1" } targets { site_id: "s-2" } }
  resources { name: "ssh" address: "100.96.128.21" port: 22 kind: RESOURCE_KIND_TCP
    targets { site_id: "s-1" } }"""


def client(version, body, zones, records):
    z = " ".join(f'zones: "{name}"' for name in zones)
    r = " ".join(f'records {{ name: "{n}" address: "{a}" }}' for n, a in records)
    return f"snapshot {{ version: {version} {body} client {{ {z} {r} }} }}"


ZONES = ["example.internal", "corp"]
RECORDS = [("vault.example.internal", "100.96.128.20"), ("*.vault.example.internal", "100.96.128.20"),
           ("ssh.corp", "100.96.128.21"), ("corp", "100.96.128.21")]

SEEDS = {
    # A site's snapshot: peers with users and roles, https (with path rules, a wildcard, an
    # IPv6 target, two serving sites), tcp and udp on one address.
    "valid_site_full": site(12, f"{SITE_PEERS} {VAULT} {SSH} {DNS} {WIKI}", ["vault", "wiki"]),
    "valid_site_minimal": site(1, SERVER_PEER),
    # This site is the second of two targets, and the first has an address too.
    "valid_site_second_target": site(3, SITE_PEERS + """ resources { name: "app" address: "100.96.128.30"
        port: 8080 kind: RESOURCE_KIND_TCP targets { site_id: "s-2" address: "10.0.20.1:80" }
        targets { site_id: "s-1" address: "10.0.10.17:80" } access { users: "alice" } }"""),
    "site_no_own_target": site(4, SITE_PEERS + """ resources { name: "app" address: "100.96.128.30"
        port: 80 kind: RESOURCE_KIND_TCP targets { site_id: "s-2" address: "10.0.20.1:80" } }"""),
    "site_own_target_no_address": site(4, SITE_PEERS + """ resources { name: "app"
        address: "100.96.128.30" port: 80 kind: RESOURCE_KIND_TCP targets { site_id: "s-1" } }"""),
    "site_https_no_cert": site(5, f"{SITE_PEERS} {VAULT} {WIKI}", ["vault"]),
    "site_domain_target": site(6, SITE_PEERS + """ resources { name: "app" address: "100.96.128.30"
        port: 80 kind: RESOURCE_KIND_TCP targets { site_id: "s-1" address: "app.lan:8080" } }"""),
    "site_own_address": site(7, SITE_PEERS + """ resources { name: "app" address: "100.96.0.10"
        port: 80 kind: RESOURCE_KIND_TCP targets { site_id: "s-1" address: "10.0.10.18:80" } }"""),
    "site_own_key_peer": site(8, SERVER_PEER + f""" peers {{ public_key: "{OWN_PUBLIC}"
        allowed_ips: "100.96.0.30/32" node_id: "c-9" kind: NODE_KIND_CLIENT user: "eve" }}"""),
    "site_no_peers": site(9, SSH),
    "site_gets_client_snapshot": client(10, f"{SITE_PEERS} {SSH}", ZONES, []),
    # A client's snapshot: the server and two sites as peers, zones and records.
    "valid_client_full": client(20, f"{CLIENT_PEERS} {CLIENT_RESOURCES}", ZONES, RECORDS),
    "valid_client_minimal": client(1, SERVER_PEER, [], []),
    "valid_client_many_records": client(21, CLIENT_PEERS, ["apps.example.internal"],
                                        [(f"app{i}.apps.example.internal", f"100.96.{128 + i // 8}.{i * 7 % 250 + 2}")
                                         for i in range(24)] + [("*.apps.example.internal", "100.96.191.254")]),
    "client_own_key": client(22, SERVER_PEER + f""" peers {{ public_key: "{OWN_PUBLIC}"
        allowed_ips: "100.96.0.40/32" node_id: "c-self" kind: NODE_KIND_CLIENT }}""", [], []),
    "client_outside_range": client(23, CLIENT_PEERS, ZONES, [("vault.corp", "100.96.0.5")]),
    "client_resolver_address": client(24, CLIENT_PEERS, ZONES, [("dns.corp", "100.96.128.1")]),
    "client_gets_site_snapshot": site(26, f"{CLIENT_PEERS} {SSH}"),
}


def encode(text):
    return subprocess.run(
        ["protoc", f"--proto_path={PROTO_ROOT}", "--encode=p2proxy.control.wire.Frame", PROTO],
        input=text.encode(), stdout=subprocess.PIPE, check=True).stdout


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, text in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(encode(text))


if __name__ == "__main__":
    main()
