// name.h: Name, a DNS domain name as a list of labels (case preserved, compared ignoring case).
#ifndef P2PROXY_DNS_NAME_H_
#define P2PROXY_DNS_NAME_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace p2proxy::dns {

// Wire limits of RFC 1035 2.3.4.
inline constexpr size_t kMaxLabelLen = 63;
inline constexpr size_t kMaxNameWireLen = 255;

// Name is a domain name. Labels are kept byte for byte as received or written (so a response can
// echo the client's case, DNS 0x20); comparisons and Key() ignore ASCII case, as RFC 4343 asks.
// The default Name is the root.
class Name {
 public:
  Name() = default;

  // Parse reads presentation text: "Vault.Example.Internal", with an optional trailing dot; "."
  // is the root. "\." and "\\" escape a character and "\DDD" gives a byte in decimal, so the
  // output of ToString() parses back to the same name. "*" is allowed only as a whole label.
  // Fails, saying why, on an empty name or label, a label over 63 octets, a name over 255 wire
  // octets, a space or control character, or a bad escape.
  static absl::StatusOr<Name> Parse(absl::string_view text);
  // FromLabels takes labels with no checks beyond those the wire parser already made.
  static Name FromLabels(std::vector<std::string> labels) { return Name(std::move(labels)); }

  // ToString gives the dotted name without a trailing dot ("." for the root). A byte outside
  // printable ASCII is written \DDD, and '.' or '\' inside a label is escaped with '\'.
  std::string ToString() const;
  // Key is ToString() with ASCII letters lowercased: equal names have equal keys.
  std::string Key() const;

  const std::vector<std::string>& labels() const { return labels_; }
  bool is_root() const { return labels_.empty(); }
  // WireLength is the uncompressed wire length, including the root octet.
  size_t WireLength() const;
  // IsSubdomainOf is true when this name is |zone| or below it (ignoring ASCII case).
  bool IsSubdomainOf(const Name& zone) const;
  // Parent drops the first label (the root stays the root).
  Name Parent() const;
  // Child prepends |label| (unchecked).
  Name Child(absl::string_view label) const;

  bool operator==(const Name& o) const;
  bool operator!=(const Name& o) const { return !(*this == o); }

 private:
  explicit Name(std::vector<std::string> labels) : labels_(std::move(labels)) {}
  std::vector<std::string> labels_;
};

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_NAME_H_
