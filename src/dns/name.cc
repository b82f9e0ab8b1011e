// name.cc: Name parsing from presentation text, printing, and case-insensitive comparison.
#include "dns/name.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace p2proxy::dns {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

absl::Status NameError(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("dns name \"", absl::CEscape(text), "\": ", why));
}

}  // namespace

absl::StatusOr<Name> Name::Parse(absl::string_view text) {
  if (text.empty()) return NameError(text, "is empty");
  if (text == ".") return Name();
  std::vector<std::string> labels;
  std::string label;
  // star is set by an unescaped '*': only that form must be a whole label ("\*" is a literal
  // byte, which the wire allows anywhere).
  bool star = false;
  size_t wire_len = 1;  // the root octet
  auto finish_label = [&]() -> absl::Status {
    if (label.empty()) return NameError(text, "has an empty label");
    if (label.size() > kMaxLabelLen) {
      return NameError(text, absl::StrCat("label \"", absl::CEscape(label), "\" is ", label.size(),
                                          " octets (at most 63)"));
    }
    if (star && label != "*") return NameError(text, "'*' is allowed only as a whole label");
    wire_len += 1 + label.size();
    if (wire_len > kMaxNameWireLen) {
      return NameError(text, "is longer than 255 octets on the wire");
    }
    labels.push_back(std::move(label));
    label.clear();
    star = false;
    return absl::OkStatus();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.') {
      if (absl::Status s = finish_label(); !s.ok()) return s;
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= text.size()) return NameError(text, "ends with a lone '\\'");
      if (IsDigit(text[i + 1])) {
        if (i + 3 >= text.size() || !IsDigit(text[i + 2]) || !IsDigit(text[i + 3])) {
          return NameError(text, "has a \\DDD escape with fewer than 3 digits");
        }
        const int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
        if (v > 255) return NameError(text, "has a \\DDD escape above 255");
        label.push_back(static_cast<char>(v));
        i += 3;
      } else {
        label.push_back(text[i + 1]);
        i += 1;
      }
      continue;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return NameError(text, "has a space or non-printable character (escape it as \\DDD)");
    }
    if (c == '*') star = true;
    label.push_back(c);
  }
  // No trailing dot: the last label is still open.
  if (!label.empty() || text.back() != '.') {
    if (absl::Status s = finish_label(); !s.ok()) return s;
  }
  return Name(std::move(labels));
}

std::string Name::ToString() const {
  if (labels_.empty()) return ".";
  std::string out;
  for (size_t i = 0; i < labels_.size(); ++i) {
    if (i > 0) out.push_back('.');
    for (const char c : labels_[i]) {
      const auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f) {
        out.push_back('\\');
        out.push_back(static_cast<char>('0' + u / 100));
        out.push_back(static_cast<char>('0' + u / 10 % 10));
        out.push_back(static_cast<char>('0' + u % 10));
      } else if (c == '.' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else {
        out.push_back(c);
      }
    }
  }
  return out;
}

std::string Name::Key() const { return absl::AsciiStrToLower(ToString()); }

size_t Name::WireLength() const {
  size_t len = 1;
  for (const std::string& l : labels_) len += 1 + l.size();
  return len;
}

bool Name::IsSubdomainOf(const Name& zone) const {
  if (zone.labels_.size() > labels_.size()) return false;
  const size_t skip = labels_.size() - zone.labels_.size();
  for (size_t i = 0; i < zone.labels_.size(); ++i) {
    if (!absl::EqualsIgnoreCase(labels_[skip + i], zone.labels_[i])) return false;
  }
  return true;
}

Name Name::Parent() const {
  if (labels_.empty()) return Name();
  return Name(std::vector<std::string>(labels_.begin() + 1, labels_.end()));
}

Name Name::Child(absl::string_view label) const {
  std::vector<std::string> labels;
  labels.reserve(labels_.size() + 1);
  labels.emplace_back(label);
  labels.insert(labels.end(), labels_.begin(), labels_.end());
  return Name(std::move(labels));
}

bool Name::operator==(const Name& o) const {
  return labels_.size() == o.labels_.size() && IsSubdomainOf(o);
}

}  // namespace p2proxy::dns
