// wg_quick_config.cc: the wg-quick configuration file parser.
#include "wg/wg_quick_config.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/encoding.h"
#include "crypto/keys.h"

namespace p2proxy::wg {
namespace {

// kMaxEchoLen bounds how much of a bad value an error repeats; every valid endpoint or prefix
// is shorter.
constexpr size_t kMaxEchoLen = 64;

enum class Section { kNone, kInterface, kPeer };

enum class Key {
  kPrivateKey,
  kAddress,
  kListenPort,
  kMtu,
  kDns,
  kFwMark,
  kTable,
  kPreUp,
  kPostUp,
  kPreDown,
  kPostDown,
  kSaveConfig,
  kPublicKey,
  kPresharedKey,
  kAllowedIps,
  kEndpoint,
  kPersistentKeepalive,
  kCount,
};

struct KeyInfo {
  absl::string_view name;  // wg-quick's spelling, used in messages whatever the file's case
  Key key;
  Section section;
  bool repeatable;  // lists append; everything else may appear once per section
  bool ignored;     // understood by wg-quick, not by us: a warning
};

constexpr KeyInfo kKeys[] = {
    {"PrivateKey", Key::kPrivateKey, Section::kInterface, false, false},
    {"Address", Key::kAddress, Section::kInterface, true, false},
    {"ListenPort", Key::kListenPort, Section::kInterface, false, false},
    {"MTU", Key::kMtu, Section::kInterface, false, false},
    {"DNS", Key::kDns, Section::kInterface, true, false},
    {"FwMark", Key::kFwMark, Section::kInterface, false, false},
    {"Table", Key::kTable, Section::kInterface, false, true},
    {"PreUp", Key::kPreUp, Section::kInterface, true, true},
    {"PostUp", Key::kPostUp, Section::kInterface, true, true},
    {"PreDown", Key::kPreDown, Section::kInterface, true, true},
    {"PostDown", Key::kPostDown, Section::kInterface, true, true},
    {"SaveConfig", Key::kSaveConfig, Section::kInterface, false, true},
    {"PublicKey", Key::kPublicKey, Section::kPeer, false, false},
    {"PresharedKey", Key::kPresharedKey, Section::kPeer, false, false},
    {"AllowedIPs", Key::kAllowedIps, Section::kPeer, true, false},
    {"Endpoint", Key::kEndpoint, Section::kPeer, false, false},
    {"PersistentKeepalive", Key::kPersistentKeepalive, Section::kPeer, false, false},
};

const KeyInfo* FindKey(absl::string_view name) {
  for (const KeyInfo& k : kKeys) {
    if (absl::EqualsIgnoreCase(k.name, name)) return &k;
  }
  return nullptr;
}

absl::string_view SectionName(Section s) {
  switch (s) {
    case Section::kInterface:
      return "[Interface]";
    case Section::kPeer:
      return "[Peer]";
    default:
      return "";
  }
}

// LooksLikeName is true for short alphabetic words: only those are repeated in "unknown key"
// and "unknown section" errors, so a base64 key pasted on its own line ("...Lco=" splits at its
// padding) is never echoed.
bool LooksLikeName(absl::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return absl::ascii_isalpha(c); });
}

std::string Quote(absl::string_view value) {
  if (value.size() <= kMaxEchoLen) return absl::StrCat("'", value, "'");
  return absl::StrCat("'", value.substr(0, kMaxEchoLen), "...'");
}

// ParseFwMark accepts what wg(8) does: "off", decimal, or "0x" and hex digits.
bool ParseFwMark(absl::string_view text, uint32_t* out) {
  if (absl::EqualsIgnoreCase(text, "off")) {
    *out = 0;
    return true;
  }
  if (text.size() > 2 && text[0] == '0' && text[1] == 'x') {
    absl::string_view hex = text.substr(2);
    if (hex.size() > 8) return false;
    uint32_t v = 0;
    for (char c : hex) {
      if (!absl::ascii_isxdigit(c)) return false;
      const int d = absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
      v = v << 4 | static_cast<uint32_t>(d);
    }
    *out = v;
    return true;
  }
  uint64_t v;
  if (!base::ParseDecimal(text, 0xffffffff, &v)) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

// Parser holds the state of one ParseWgQuickConfig call.
class Parser {
 public:
  absl::StatusOr<WgQuickConfig> Run(absl::string_view text);

 private:
  absl::Status Line(absl::string_view raw);
  absl::Status Header(absl::string_view line);
  absl::Status Value(const KeyInfo& k, absl::string_view value);
  absl::Status ParseList(const KeyInfo& k, absl::string_view value,
                         std::vector<absl::string_view>* items);

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("line ", line_no_, ": ", what));
  }
  absl::Status KeyError(const KeyInfo& k, absl::string_view what) const {
    return Error(absl::StrCat(SectionName(section_), " ", k.name, ": ", what));
  }

  WgQuickConfig config_;
  size_t line_no_ = 0;
  Section section_ = Section::kNone;
  size_t interface_line_ = 0;  // line of the [Interface] header; 0 if none yet
  bool have_private_key_ = false;
  // Per [Peer] section, parallel to config_.peers: its header line and its PublicKey line.
  std::vector<size_t> peer_lines_;
  std::vector<size_t> public_key_lines_;
  // first_line_[key]: where the current section first set |key|; 0 if it has not.
  std::array<size_t, static_cast<size_t>(Key::kCount)> first_line_{};
};

absl::StatusOr<WgQuickConfig> Parser::Run(absl::string_view text) {
  // Editors on Windows like to start files with a UTF-8 byte order mark.
  absl::ConsumePrefix(&text, "\xEF\xBB\xBF");
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no_;
    absl::Status status = Line(raw);
    if (!status.ok()) return status;
  }
  if (interface_line_ == 0) return absl::InvalidArgumentError("no [Interface] section");
  if (!have_private_key_) {
    return absl::InvalidArgumentError(
        absl::StrCat("line ", interface_line_, ": [Interface] section has no PrivateKey"));
  }
  for (size_t i = 0; i < config_.peers.size(); ++i) {
    if (public_key_lines_[i] == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", peer_lines_[i], ": [Peer] section has no PublicKey"));
    }
  }
  return std::move(config_);
}

absl::Status Parser::Line(absl::string_view raw) {
  // As in wg-quick and wg(8), '#' starts a comment wherever it appears.
  absl::string_view line = raw.substr(0, raw.find('#'));
  line = absl::StripAsciiWhitespace(line);
  for (char c : line) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return Error("control character in line");
  }
  if (line.empty()) return absl::OkStatus();
  if (line.front() == '[') return Header(line);

  const size_t eq = line.find('=');
  if (eq == absl::string_view::npos) {
    return Error("expected 'Key = Value' or a [Section] header");
  }
  const absl::string_view name = absl::StripTrailingAsciiWhitespace(line.substr(0, eq));
  const absl::string_view value = absl::StripLeadingAsciiWhitespace(line.substr(eq + 1));
  const KeyInfo* k = FindKey(name);
  if (k == nullptr) {
    // Outside any section SectionName is empty; inside, it prefixes the message.
    const std::string where =
        section_ == Section::kNone ? "" : absl::StrCat(SectionName(section_), " ");
    if (!LooksLikeName(name)) return Error(absl::StrCat(where, "unrecognized line (not shown)"));
    return Error(absl::StrCat(where, name, ": unknown key"));
  }
  if (section_ == Section::kNone) {
    return Error(
        absl::StrCat(k->name, ": outside any section (expected [Interface] or [Peer] first)"));
  }
  if (k->section != section_) {
    return KeyError(*k, absl::StrCat("belongs in ", SectionName(k->section)));
  }
  size_t& first = first_line_[static_cast<size_t>(k->key)];
  if (first != 0 && !k->repeatable) {
    return KeyError(*k, absl::StrCat("given twice in one section (first on line ", first, ")"));
  }
  if (first == 0) first = line_no_;
  if (k->ignored) {
    config_.warnings.push_back(absl::StrCat("line ", line_no_, ": ", SectionName(section_), " ",
                                            k->name, ": wg-quick only, ignored"));
    return absl::OkStatus();
  }
  return Value(*k, value);
}

absl::Status Parser::Header(absl::string_view line) {
  if (line.back() != ']') return Error("expected a [Section] header");
  const absl::string_view name = line.substr(1, line.size() - 2);
  first_line_.fill(0);
  if (absl::EqualsIgnoreCase(name, "Interface")) {
    if (interface_line_ != 0) {
      return Error(absl::StrCat("second [Interface] section (first on line ", interface_line_,
                                ")"));
    }
    section_ = Section::kInterface;
    interface_line_ = line_no_;
    return absl::OkStatus();
  }
  if (absl::EqualsIgnoreCase(name, "Peer")) {
    section_ = Section::kPeer;
    config_.peers.emplace_back();
    peer_lines_.push_back(line_no_);
    public_key_lines_.push_back(0);
    return absl::OkStatus();
  }
  if (!LooksLikeName(name)) return Error("unknown section (expected [Interface] or [Peer])");
  return Error(absl::StrCat("[", name, "]: unknown section (expected [Interface] or [Peer])"));
}

absl::Status Parser::ParseList(const KeyInfo& k, absl::string_view value,
                               std::vector<absl::string_view>* items) {
  // An empty value is an empty list (wg accepts "AllowedIPs =" for a peer that routes
  // nothing); an empty item between commas is a typo.
  if (value.empty()) return absl::OkStatus();
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty()) return KeyError(k, "empty item in list");
    items->push_back(item);
  }
  return absl::OkStatus();
}

absl::Status Parser::Value(const KeyInfo& k, absl::string_view value) {
  switch (k.key) {
    case Key::kPrivateKey: {
      auto key = crypto::ParseKey(value);
      // ParseKey's messages never contain the key; drop their "key: " prefix since ours says it.
      if (!key.ok()) return KeyError(k, absl::StripPrefix(key.status().message(), "key: "));
      config_.private_key = *key;
      have_private_key_ = true;
      return absl::OkStatus();
    }
    case Key::kAddress: {
      std::vector<absl::string_view> items;
      if (auto s = ParseList(k, value, &items); !s.ok()) return s;
      for (absl::string_view item : items) {
        if (item.size() > kMaxEchoLen) return KeyError(k, absl::StrCat(Quote(item), ": too long"));
        // IpPrefix::Parse checks the syntax and length; the address itself is taken as written
        // because an interface address keeps its host bits.
        auto prefix = base::IpPrefix::Parse(item);
        if (!prefix.ok()) return KeyError(k, prefix.status().message());
        prefix->address = base::IpAddress::Parse(item.substr(0, item.find('/'))).value();
        config_.addresses.push_back(*prefix);
      }
      return absl::OkStatus();
    }
    case Key::kListenPort: {
      uint64_t port;
      if (!base::ParseDecimal(value, 65535, &port)) {
        return KeyError(k, absl::StrCat(Quote(value), " is not a port (0 to 65535)"));
      }
      config_.listen_port = static_cast<uint16_t>(port);
      return absl::OkStatus();
    }
    case Key::kMtu: {
      // 68 is the smallest MTU IPv4 allows (RFC 791) and the kernel's minimum for the device.
      uint64_t mtu;
      if (!base::ParseDecimal(value, 65535, &mtu) || mtu < 68) {
        return KeyError(k, absl::StrCat(Quote(value), " is not an MTU (68 to 65535)"));
      }
      config_.mtu = static_cast<uint32_t>(mtu);
      return absl::OkStatus();
    }
    case Key::kDns: {
      std::vector<absl::string_view> items;
      if (auto s = ParseList(k, value, &items); !s.ok()) return s;
      for (absl::string_view item : items) config_.dns.emplace_back(item);
      return absl::OkStatus();
    }
    case Key::kFwMark:
      if (!ParseFwMark(value, &config_.fwmark)) {
        return KeyError(k, absl::StrCat(Quote(value), " is not a mark (a number, 0x-hex, or off)"));
      }
      return absl::OkStatus();
    case Key::kPublicKey: {
      auto key = crypto::ParsePublicKey(value);
      if (!key.ok()) return KeyError(k, absl::StripPrefix(key.status().message(), "key: "));
      for (size_t i = 0; i + 1 < config_.peers.size(); ++i) {
        if (public_key_lines_[i] != 0 && config_.peers[i].public_key == *key) {
          return KeyError(k, absl::StrCat("same key as the peer on line ", peer_lines_[i]));
        }
      }
      config_.peers.back().public_key = *key;
      public_key_lines_.back() = line_no_;
      return absl::OkStatus();
    }
    case Key::kPresharedKey: {
      auto key = crypto::ParseKey(value);
      if (!key.ok()) return KeyError(k, absl::StripPrefix(key.status().message(), "key: "));
      config_.peers.back().preshared_key = *key;
      return absl::OkStatus();
    }
    case Key::kAllowedIps: {
      std::vector<absl::string_view> items;
      if (auto s = ParseList(k, value, &items); !s.ok()) return s;
      for (absl::string_view item : items) {
        if (item.size() > kMaxEchoLen) return KeyError(k, absl::StrCat(Quote(item), ": too long"));
        auto prefix = base::IpPrefix::Parse(item);
        if (!prefix.ok()) return KeyError(k, prefix.status().message());
        config_.peers.back().allowed_ips.push_back(*prefix);
      }
      return absl::OkStatus();
    }
    case Key::kEndpoint: {
      if (value.size() > kMaxEchoLen) return KeyError(k, absl::StrCat(Quote(value), ": too long"));
      auto endpoint = base::SocketAddress::Parse(value);
      if (!endpoint.ok()) {
        const size_t colon = value.rfind(':');
        if (colon != absl::string_view::npos && base::LooksLikeHostName(value.substr(0, colon))) {
          return KeyError(k, absl::StrCat(Quote(value),
                                          ": host names are not supported yet; use an IP address"));
        }
        return KeyError(k, endpoint.status().message());
      }
      config_.peers.back().endpoint = *endpoint;
      return absl::OkStatus();
    }
    case Key::kPersistentKeepalive: {
      uint64_t secs = 0;
      if (!absl::EqualsIgnoreCase(value, "off") && !base::ParseDecimal(value, 65535, &secs)) {
        return KeyError(k, absl::StrCat(Quote(value),
                                        " is not a number of seconds (0 to 65535) or off"));
      }
      config_.peers.back().persistent_keepalive = static_cast<uint16_t>(secs);
      return absl::OkStatus();
    }
    default:
      return KeyError(k, "not handled");  // unreachable: ignored keys return earlier
  }
}

}  // namespace

absl::StatusOr<WgQuickConfig> ParseWgQuickConfig(absl::string_view text) {
  return Parser().Run(text);
}

}  // namespace p2proxy::wg
