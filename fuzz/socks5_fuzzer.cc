// socks5_fuzzer: the SOCKS5 parsers (client/socks5.h) on arbitrary bytes, as a local client
// could send them. Byte 0 picks a split point; the rest is the input, given to every parser.
//
// For each stream parser: the result is the same whether the bytes arrive whole or only up to
// the split (which may say kNeedMore, consuming nothing, but never something else); an accepted
// message is kNeedMore one byte short and the same result cut to its length; a refusal has an
// error and a message. A greeting that parses is followed by a request, as on a connection.
// Round trips: an accepted request's destination survives EncodeReply/ParseReply (IP) and
// EncodeUdpHeader/ParseUdpDatagram (any host); an accepted reply or datagram re-encodes to a
// message that parses to the same value, and to the very same bytes if it carried an IP address
// (ATYP 1 or 4). A failure aborts.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "client/socks5.h"

using namespace p2proxy::client::socks5;
using p2proxy::base::ByteSpan;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

template <typename T>
bool Same(const Result<T>& a, const Result<T>& b) {
  return a.outcome == b.outcome && a.consumed == b.consumed && a.value == b.value && a.error == b.error &&
         a.reply == b.reply && a.message == b.message;
}

bool SameBytes(ByteSpan a, ByteSpan b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

template <typename T>
Result<T> CheckStream(Result<T> (*parse)(ByteSpan), ByteSpan in, size_t split) {
  const Result<T> whole = parse(in);
  switch (whole.outcome) {
    case Outcome::kNeedMore:
      Check(whole.consumed == 0 && whole.error == Error::kNone);
      break;
    case Outcome::kError:
      Check(whole.consumed == 0 && whole.error != Error::kNone && !whole.message.empty());
      Check(!ErrorName(whole.error).empty());
      break;
    case Outcome::kDone:
      Check(whole.consumed > 0 && whole.consumed <= in.size() && whole.error == Error::kNone);
      Check(Same(parse(in.first(whole.consumed)), whole));
      Check(parse(in.first(whole.consumed - 1)).outcome == Outcome::kNeedMore);
      break;
  }
  const Result<T> prefix = parse(in.first(split));
  if (prefix.outcome == Outcome::kNeedMore) {
    Check(prefix.consumed == 0 && prefix.error == Error::kNone);
  } else {
    Check(Same(prefix, whole));
  }
  return whole;
}

void CheckRequest(const Result<Request>& r) {
  if (r.outcome == Outcome::kError) {
    const uint8_t want = r.error == Error::kBadCommand       ? kRepCommandNotSupported
                         : r.error == Error::kBadAddressType ? kRepAddressTypeNotSupported
                                                             : kRepGeneralFailure;
    Check(r.reply == want);
  }
  if (r.outcome != Outcome::kDone) return;
  const Request& q = r.value;
  Check(q.command >= kCmdConnect && q.command <= kCmdUdpAssociate);
  const Destination& d = q.destination;
  if (const std::string* name = d.name()) {
    // A name is in its canonical form: parsing it again changes nothing.
    const std::optional<Host> again = ParseHostName(*name);
    Check(again && *again == d.host);
  } else {
    Check(d.ip()->family != p2proxy::base::IpAddress::kNone);
    const std::vector<uint8_t> wire = EncodeReply(kRepSucceeded, *d.ip(), d.port);
    const Result<Reply> reply = ParseReply(wire);
    Check(reply.outcome == Outcome::kDone && reply.consumed == wire.size());
    Check(reply.value.reply == kRepSucceeded && reply.value.bound == d);
  }
  const std::vector<uint8_t> header = EncodeUdpHeader(d.host, d.port);
  Check(!header.empty());
  const std::optional<UdpDatagram> udp = ParseUdpDatagram(header);
  Check(udp && udp->destination == d && udp->payload.empty());
}

void CheckReply(const Result<Reply>& r, ByteSpan in) {
  if (r.outcome != Outcome::kDone) return;
  Check(r.value.reply <= kRepAddressTypeNotSupported);
  const p2proxy::base::IpAddress* ip = r.value.bound.ip();
  if (ip == nullptr) return;
  const std::vector<uint8_t> wire = EncodeReply(r.value.reply, *ip, r.value.bound.port);
  // An address sent as one is written back the same; a dotted quad sent as a name comes back
  // as an address (ATYP 1), so only its value survives.
  if (in[3] != kAtypDomainName) Check(SameBytes(wire, in.first(r.consumed)));
  const Result<Reply> again = ParseReply(wire);
  Check(again.outcome == Outcome::kDone && again.consumed == wire.size() && again.value == r.value);
}

void CheckUdp(ByteSpan in) {
  Error error = Error::kNone;
  const std::optional<UdpDatagram> d = ParseUdpDatagram(in, &error);
  if (!d) {
    Check(error != Error::kNone);
    return;
  }
  Check(error == Error::kNone && d->frag == 0);
  Check(d->payload.data() + d->payload.size() == in.data() + in.size());
  const size_t header_len = in.size() - d->payload.size();
  const std::vector<uint8_t> header = EncodeUdpHeader(d->destination.host, d->destination.port);
  Check(!header.empty());
  if (in[3] != kAtypDomainName) Check(SameBytes(header, in.first(header_len)));
  std::vector<uint8_t> again = header;
  again.insert(again.end(), d->payload.begin(), d->payload.end());
  const std::optional<UdpDatagram> e = ParseUdpDatagram(again);
  Check(e && e->destination == d->destination && SameBytes(e->payload, d->payload));
}

void CheckHostName(ByteSpan in) {
  const std::string_view text(reinterpret_cast<const char*>(in.data()), in.size());
  std::string_view problem;
  const std::optional<Host> host = ParseHostName(text, &problem);
  if (!host) {
    Check(!problem.empty());
    return;
  }
  if (const auto* name = std::get_if<std::string>(&*host)) {
    Check(!name->empty() && name->size() <= kMaxNameLen && name->back() != '.');
    Check(ParseHostName(*name) == host);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ByteSpan in(data + 1, size - 1);
  const size_t split = in.size() * data[0] / 255;

  const Result<Greeting> greeting = CheckStream(ParseGreeting, in, split);
  if (greeting.outcome == Outcome::kDone) {
    const std::array<uint8_t, 2> selection = EncodeMethodSelection(greeting.value.no_auth_offered);
    Check(selection[0] == kVersion5 &&
          selection[1] == (greeting.value.no_auth_offered ? kMethodNoAuth : kMethodNoAcceptable));
    // What follows the greeting on the connection is the request.
    const ByteSpan rest = in.subspan(greeting.consumed);
    CheckRequest(CheckStream(ParseRequest, rest, split > greeting.consumed ? split - greeting.consumed : 0));
  }
  CheckRequest(CheckStream(ParseRequest, in, split));
  CheckReply(CheckStream(ParseReply, in, split), in);
  CheckUdp(in);
  CheckHostName(in);
  return 0;
}
