// message.h: DNS messages (RFC 1035 section 4, EDNS(0) of RFC 6891): a strict parser of untrusted
// bytes, a builder with name compression and truncation, and helpers for the records we answer.
#ifndef P2PROXY_DNS_MESSAGE_H_
#define P2PROXY_DNS_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/ip_prefix.h"
#include "dns/name.h"

namespace p2proxy::dns {

// Record types, classes and response codes (IANA "Domain Name System (DNS) Parameters").
inline constexpr uint16_t kTypeA = 1, kTypeNs = 2, kTypeCname = 5, kTypeSoa = 6, kTypePtr = 12,
                          kTypeMx = 15, kTypeTxt = 16, kTypeAaaa = 28, kTypeSrv = 33, kTypeOpt = 41,
                          kTypeAny = 255;
inline constexpr uint16_t kClassIn = 1, kClassAny = 255;
inline constexpr uint8_t kRcodeNoError = 0, kRcodeFormErr = 1, kRcodeServFail = 2,
                         kRcodeNxDomain = 3, kRcodeNotImp = 4, kRcodeRefused = 5;
// kExtRcodeBadVers is Edns::extended_rcode for BADVERS (rcode 16 = 1 << 4 | 0), RFC 6891 6.1.3.
inline constexpr uint8_t kExtRcodeBadVers = 1;

// Wire sizes.
inline constexpr size_t kHeaderLen = 12;
inline constexpr size_t kMaxUdpPayload = 512;  // without EDNS, RFC 1035 4.2.1
// kMaxEdnsUdpPayload is the EDNS payload size we advertise and the most we send over UDP: the
// DNS flag day 2020 value, which avoids IP fragmentation.
inline constexpr size_t kMaxEdnsUdpPayload = 1232;
// UdpAnswerLimit is the most a UDP answer may hold: 512 bytes without EDNS; with it the
// client's payload size, but at least 512 and at most kMaxEdnsUdpPayload.
inline size_t UdpAnswerLimit(bool edns, uint16_t udp_payload_size) {
  if (!edns) return kMaxUdpPayload;
  if (udp_payload_size < kMaxUdpPayload) return kMaxUdpPayload;
  return udp_payload_size < kMaxEdnsUdpPayload ? udp_payload_size : kMaxEdnsUdpPayload;
}

// Header is the fixed header without its four counts (the section vectors give those). The Z
// bit is dropped on parse and written as zero.
struct Header {
  uint16_t id = 0;
  bool qr = false;
  uint8_t opcode = 0;  // 4 bits
  bool aa = false, tc = false, rd = false, ra = false, ad = false, cd = false;
  uint8_t rcode = 0;  // the low 4 bits; EDNS carries the upper 8 in Edns::extended_rcode
};

struct Question {
  Name name;
  uint16_t type = 0;
  uint16_t klass = kClassIn;
};

// Record is a resource record. For NS, CNAME, PTR, MX, SOA and SRV the names inside |rdata| are
// decompressed at parse time and kept uncompressed, so rdata never holds a compression pointer
// and stays meaningful outside its message; other types are kept verbatim.
struct Record {
  Name name;
  uint16_t type = 0;
  uint16_t klass = kClassIn;
  uint32_t ttl = 0;
  std::vector<uint8_t> rdata;
};

// Edns is the OPT pseudo-record (RFC 6891 6.1.2). |options| holds the raw option TLVs
// (code, length, data), checked at parse time to fill the rdata exactly. The 15 Z bits next to
// DO are dropped on parse and written as zero.
struct Edns {
  uint16_t udp_payload_size = 512;
  uint8_t extended_rcode = 0;
  uint8_t version = 0;
  bool dnssec_ok = false;
  std::vector<uint8_t> options;
};

// Message is a whole DNS message. The OPT record is taken out of the additional section into
// |edns| at parse time, and put back (last) at build time.
struct Message {
  Header header;
  std::vector<Question> questions;
  std::vector<Record> answers, authorities, additionals;
  std::optional<Edns> edns;
};

// ParseError is why a message was rejected: a named outcome for counters and logs.
enum class ParseError : uint8_t {
  kOk,
  kShort,           // the bytes end inside the header, a name or a record
  kTrailingBytes,   // bytes left after the last record the counts announce
  kBadLabel,        // a reserved label type (0x40, 0x80)
  kNameTooLong,     // a name over 255 octets once decompressed
  kBadPointer,      // a compression pointer forwards, past the end, or into the header
  kPointerLoop,     // a pointer back into the name being read, or over 16 indirections
  kBadRdata,        // the rdata of NS/CNAME/PTR/MX/SOA/SRV does not hold exactly its fields
  kBadOpt,          // OPT outside the additional section, twice, not at the root, bad options
  kTooManyRecords,  // the counts ask for more records than the bytes could hold
};

// ParseErrorName gives "ok", "short", "trailing_bytes", "bad_label", "name_too_long",
// "bad_pointer", "pointer_loop", "bad_rdata", "bad_opt" or "too_many_records".
const char* ParseErrorName(ParseError e);

// ParseMessage parses |wire| (one whole message, as a UDP payload or a TCP frame without its
// length prefix) into |out|. It reads only inside |wire|, allocates in proportion to its size,
// and never fails other than by returning an error; on error |out| is unspecified.
ParseError ParseMessage(base::ByteSpan wire, Message* out);

// PeekHeader reads just the 12-byte header, so that a server can answer FORMERR with the id of a
// query it could not parse. False if |wire| is shorter than a header.
bool PeekHeader(base::ByteSpan wire, Header* out);

// BuildMessage serializes |msg| into |out| (replacing its content), compressing owner names and
// the names in the rdata of NS, CNAME, PTR, MX and SOA (RFC 1035 4.1.4; pointers only to earlier
// offsets below 0x4000). SRV targets are written uncompressed (RFC 2782, RFC 3597 4). If the
// message would exceed |max_len| it drops whole records from the end (additionals other than
// OPT, then authorities, then answers) and sets TC. Returns false, leaving |out| unspecified, if
// header, questions and OPT alone do not fit, if a name cannot be encoded (an empty or over-63
// label, over 255 octets), if an rdata or the EDNS options exceed 65535 bytes, or if a section
// has more than 65535 entries.
bool BuildMessage(const Message& msg, size_t max_len, std::vector<uint8_t>* out);

// MakeA gives an A record for the IPv4 address |v4| (the first 4 bytes are used).
Record MakeA(const Name& name, uint32_t ttl, const base::IpAddress& v4);
// MakePtr gives a PTR record pointing at |target|.
Record MakePtr(const Name& name, uint32_t ttl, const Name& target);
// MakeSoa gives the SOA record of |zone|.
Record MakeSoa(const Name& zone, uint32_t ttl, const Name& mname, const Name& rname,
               uint32_t serial, uint32_t refresh, uint32_t retry, uint32_t expire,
               uint32_t minimum);

// ReverseName gives the in-addr.arpa name of |v4|: 100.96.128.20 -> 20.128.96.100.in-addr.arpa.
Name ReverseName(const base::IpAddress& v4);
// FromReverseName is the inverse: nullopt unless |n| is exactly four decimal octets (0-255, no
// leading zeros) under in-addr.arpa (any case).
std::optional<base::IpAddress> FromReverseName(const Name& n);

// ReadRdataName reads the uncompressed name at the start of |rdata| (as kept in Record::rdata)
// and the number of bytes it took; nullopt if there is none. For reading NS/CNAME/PTR targets.
std::optional<Name> ReadRdataName(base::ByteSpan rdata, size_t* name_len = nullptr);

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_MESSAGE_H_
