// fast_path.h: AnswerFast, the UDP answer to a plain query for a private name, written from the
// query's bytes straight into the caller's buffer without allocating. Anything unusual is left
// to the general path (ParseMessage, ZoneTable::Answer, BuildMessage), whose bytes it matches.
#ifndef P2PROXY_DNS_FAST_PATH_H_
#define P2PROXY_DNS_FAST_PATH_H_

#include <cstddef>

#include "base/bytes.h"
#include "dns/zone.h"

namespace p2proxy::dns {

// kMaxFastAnswerLen is the most AnswerFast writes: the largest UDP answer we send.
inline constexpr size_t kMaxFastAnswerLen = kMaxEdnsUdpPayload;

// AnswerFast writes the answer to |query| into |out| and returns its length, or returns 0 to
// say "take the general path" (|out| then holds garbage). It answers only a query that
// ParseMessage accepts and ZoneTable::Answer answers for a private name without an error:
// QR=0, opcode 0, exactly one question (an uncompressed name, class IN or ANY) for a name of
// |zones|, no record but an optional OPT (root owner, version 0, well-formed options), nothing
// trailing. Its bytes are then exactly those of BuildMessage(zones.Answer(query)) within
// UdpAnswerLimit; an answer that would need truncation, or would not fit |out|, is left to the
// general path as well. It never allocates and reads only inside |query|.
size_t AnswerFast(const ZoneTable& zones, base::ByteSpan query, base::MutableByteSpan out);

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_FAST_PATH_H_
