// uapi_fuzzer: the UAPI socket side on arbitrary bytes. The stream goes through
// UapiRequestReader fed whole and fed in two pieces (the split point is derived from the input,
// so a crash reproduces); both must give the same requests. Every set body goes through
// ParseUapiSet; whatever parses is written back as a set body and must parse to the same thing,
// and the get answer built from it must be framed correctly.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/encoding.h"
#include "wg/uapi.h"

namespace {

using p2proxy::wg::UapiPeerSet;
using p2proxy::wg::UapiRequestReader;
using p2proxy::wg::UapiSet;
using Result = UapiRequestReader::Result;

struct Request {
  Result result;
  std::string body;
};

// Drain takes requests out of |reader| until it needs more or fails; it records an error once.
void Drain(UapiRequestReader* reader, std::vector<Request>* out) {
  if (!out->empty() && out->back().result == Result::kError) return;
  for (;;) {
    std::string body;
    const Result r = reader->Next(&body);
    if (r == Result::kNeedMore) return;
    out->push_back({r, r == Result::kSet ? body : ""});
    if (r == Result::kError) return;
  }
}

std::vector<Request> Run(absl::string_view first, absl::string_view second) {
  UapiRequestReader reader;
  std::vector<Request> out;
  reader.Feed(first);
  Drain(&reader, &out);
  reader.Feed(second);
  Drain(&reader, &out);
  return out;
}

// FormatSetBody writes |set| the way wg(8) would, for the round trip.
std::string FormatSetBody(const UapiSet& set) {
  using p2proxy::base::HexEncode;
  std::string out;
  if (set.private_key) {
    absl::StrAppend(&out, "private_key=", HexEncode(set.private_key->span()), "\n");
  }
  if (set.listen_port) absl::StrAppend(&out, "listen_port=", *set.listen_port, "\n");
  if (set.fwmark) absl::StrAppend(&out, "fwmark=", *set.fwmark, "\n");
  if (set.replace_peers) out += "replace_peers=true\n";
  for (const UapiPeerSet& p : set.peers) {
    absl::StrAppend(&out, "public_key=", HexEncode(p.public_key), "\n");
    if (p.remove) out += "remove=true\n";
    if (p.update_only) out += "update_only=true\n";
    if (p.preshared_key) {
      absl::StrAppend(&out, "preshared_key=", HexEncode(p.preshared_key->span()), "\n");
    }
    if (p.endpoint) absl::StrAppend(&out, "endpoint=", p.endpoint->ToString(), "\n");
    if (p.persistent_keepalive_interval) {
      absl::StrAppend(&out, "persistent_keepalive_interval=", *p.persistent_keepalive_interval,
                      "\n");
    }
    if (p.replace_allowed_ips) out += "replace_allowed_ips=true\n";
    for (const auto& prefix : p.allowed_ips) {
      absl::StrAppend(&out, "allowed_ip=", prefix.ToString(), "\n");
    }
  }
  return out;
}

template <typename T>
bool SameKey(const std::optional<T>& a, const std::optional<T>& b) {
  return a.has_value() == b.has_value() && (!a || a->Equals(*b));
}

bool Same(const UapiSet& a, const UapiSet& b) {
  if (!SameKey(a.private_key, b.private_key) || a.listen_port != b.listen_port ||
      a.fwmark != b.fwmark || a.replace_peers != b.replace_peers ||
      a.peers.size() != b.peers.size()) {
    return false;
  }
  for (size_t i = 0; i < a.peers.size(); ++i) {
    const UapiPeerSet& x = a.peers[i];
    const UapiPeerSet& y = b.peers[i];
    if (x.public_key != y.public_key || x.remove != y.remove || x.update_only != y.update_only ||
        !SameKey(x.preshared_key, y.preshared_key) || x.endpoint != y.endpoint ||
        x.persistent_keepalive_interval != y.persistent_keepalive_interval ||
        x.replace_allowed_ips != y.replace_allowed_ips || x.allowed_ips != y.allowed_ips) {
      return false;
    }
  }
  return true;
}

void CheckSet(const std::string& body) {
  auto set = p2proxy::wg::ParseUapiSet(body);
  if (!set.ok()) return;
  auto again = p2proxy::wg::ParseUapiSet(FormatSetBody(*set));
  if (!again.ok() || !Same(*set, *again)) std::abort();

  // A get answer built from the parsed values must end at its one empty line.
  p2proxy::wg::UapiState state;
  state.private_key = set->private_key;
  state.listen_port = set->listen_port.value_or(0);
  state.fwmark = set->fwmark.value_or(0);
  for (const UapiPeerSet& p : set->peers) {
    p2proxy::wg::UapiPeerState peer;
    peer.public_key = p.public_key;
    if (p.preshared_key) peer.preshared_key = *p.preshared_key;
    peer.endpoint = p.endpoint;
    peer.persistent_keepalive_interval = p.persistent_keepalive_interval.value_or(0);
    peer.allowed_ips = p.allowed_ips;
    state.peers.push_back(peer);
  }
  const std::string get = p2proxy::wg::FormatUapiGet(state);
  if (get.find("\n\n") != get.size() - 2) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = size == 0 ? 0 : (size_t{data[0]} * 131 + data[size - 1]) % (size + 1);

  const std::vector<Request> whole = Run(input, "");
  const std::vector<Request> halves = Run(input.substr(0, split), input.substr(split));
  // Fed whole, an input over the cap fails before any request is taken out; in halves, it
  // may not. Below the cap, the split must not matter.
  if (size <= UapiRequestReader::kMaxBuffered) {
    if (whole.size() != halves.size()) std::abort();
    for (size_t i = 0; i < whole.size(); ++i) {
      if (whole[i].result != halves[i].result || whole[i].body != halves[i].body) std::abort();
    }
  }
  for (const Request& r : halves) {
    if (r.result == Result::kSet) CheckSet(r.body);
  }
  // The input may also be a body on its own (what a fuzzer mutates best).
  CheckSet(std::string(input));
  return 0;
}
