// name_key.h: NameKey, a domain name as its lower-cased uncompressed wire form in a fixed
// buffer, so that the per-query path can look names up without allocating.
#ifndef P2PROXY_DNS_NAME_KEY_H_
#define P2PROXY_DNS_NAME_KEY_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "base/bytes.h"
#include "dns/name.h"

namespace p2proxy::dns {

// NameKey holds a name as wire labels with ASCII letters lower-cased, root octet included
// ("\x05vault\x07example\x08internal\x00"). Two names are equal ignoring case (RFC 4343) exactly
// when their keys are equal, and the key of an ancestor is a suffix of the key starting at a
// label boundary, which is what zone and wildcard lookups need. The default NameKey is the root.
class NameKey {
 public:
  // The most labels a 255-octet name can have: 127 one-octet labels and the root.
  static constexpr size_t kMaxLabels = 127;

  NameKey() { Clear(); }

  // Read reads an uncompressed name from |r|, the form that starts every query's question.
  // False on a compression pointer (none can be valid there), a reserved label type, a name
  // over 255 octets, or too few bytes; |r| is then left unspecified.
  bool Read(base::ByteReader* r);
  // Set keys |name|. False for a name no message can carry (an empty label, one over 63
  // octets, over 255 octets in all); the key is then the root.
  bool Set(const Name& name);
  // Of is Set for setup code: the key as a string, empty for a name Set refuses.
  static std::string Of(const Name& name);

  // key is the whole name.
  absl::string_view key() const {
    return absl::string_view(reinterpret_cast<const char*>(key_), len_);
  }
  size_t num_labels() const { return num_labels_; }
  // Suffix is the key of the ancestor that drops the first |i| labels (i <= num_labels();
  // Suffix(num_labels()) is the root).
  absl::string_view Suffix(size_t i) const;
  // Label is label |i| (lower-cased, without its length octet).
  absl::string_view Label(size_t i) const;
  // IsSubdomainOf is true when this name is |zone_key| (a key) or below it.
  bool IsSubdomainOf(absl::string_view zone_key, size_t zone_labels) const {
    return zone_labels <= num_labels_ && Suffix(num_labels_ - zone_labels) == zone_key;
  }

 private:
  void Clear();
  bool AddLabel(const uint8_t* label, size_t len);

  // Only the first len_ bytes of key_ and num_labels_ entries of label_at_ are meaningful; the
  // rest is left uninitialized, so that a key costs nothing to make on the per-query path.
  uint8_t key_[kMaxNameWireLen];
  uint8_t len_;  // including the root octet
  uint8_t num_labels_;
  uint8_t label_at_[kMaxLabels];  // offset of each label's length octet in key_
};

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_NAME_KEY_H_
