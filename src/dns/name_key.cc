// name_key.cc: NameKey from the wire or from a Name.
#include "dns/name_key.h"

#include "absl/strings/ascii.h"

namespace p2proxy::dns {

void NameKey::Clear() {
  key_[0] = 0;
  len_ = 1;
  num_labels_ = 0;
}

bool NameKey::AddLabel(const uint8_t* label, size_t len) {
  // The root octet stays at the end: len_ counts it already.
  if (len == 0 || len > kMaxLabelLen || len_ + 1 + len > kMaxNameWireLen ||
      num_labels_ == kMaxLabels) {
    return false;
  }
  uint8_t* at = key_ + len_ - 1;
  label_at_[num_labels_++] = static_cast<uint8_t>(len_ - 1);
  *at++ = static_cast<uint8_t>(len);
  for (size_t i = 0; i < len; ++i) {
    *at++ = static_cast<uint8_t>(absl::ascii_tolower(static_cast<unsigned char>(label[i])));
  }
  *at = 0;
  len_ = static_cast<uint8_t>(len_ + 1 + len);
  return true;
}

bool NameKey::Read(base::ByteReader* r) {
  Clear();
  for (;;) {
    uint8_t len;
    if (!r->ReadU8(&len)) return false;
    if (len == 0) return true;
    // A pointer (0xc0) or a reserved label type (0x40, 0x80): not a plain label.
    if (len > kMaxLabelLen) return false;
    base::ByteSpan label;
    if (!r->ReadBytes(len, &label) || !AddLabel(label.data(), len)) return false;
  }
}

bool NameKey::Set(const Name& name) {
  Clear();
  for (const std::string& l : name.labels()) {
    if (!AddLabel(reinterpret_cast<const uint8_t*>(l.data()), l.size())) {
      Clear();
      return false;
    }
  }
  return true;
}

std::string NameKey::Of(const Name& name) {
  NameKey k;
  if (!k.Set(name)) return std::string();
  return std::string(k.key());
}

absl::string_view NameKey::Suffix(size_t i) const {
  const size_t at = i < num_labels_ ? label_at_[i] : len_ - 1u;
  return key().substr(at);
}

absl::string_view NameKey::Label(size_t i) const {
  if (i >= num_labels_) return absl::string_view();
  return key().substr(label_at_[i] + 1u, key_[label_at_[i]]);
}

}  // namespace p2proxy::dns
