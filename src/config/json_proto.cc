// json_proto.cc: strict JSON into a protobuf message in two passes: a check of the JSON's syntax
// and shape against the message's descriptor (JsonChecker), then protobuf's JSON mapping, its
// errors rewritten to name the field's path (TranslateJsonError).
#include "config/json_proto.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/encoding.h"
#include "base/status_macros.h"

namespace p2proxy::config {
namespace {

namespace pb = ::google::protobuf;

// FindField gives the field of |message| that |name| names, in either spelling protobuf's
// parser accepts (the .proto name or its JSON name); null if none or |message| is null.
const pb::FieldDescriptor* FindField(const pb::Descriptor* message, absl::string_view name) {
  if (message == nullptr) return nullptr;
  for (int i = 0; i < message->field_count(); ++i) {
    const pb::FieldDescriptor* f = message->field(i);
    if (f->name() == name || f->json_name() == name) return f;
  }
  return nullptr;
}

// Expected describes what JSON a value of |f| must be; |element|: one element of its list.
std::string Expected(const pb::FieldDescriptor* f, bool element) {
  absl::string_view one = "a value of another type", many = "values of another type";
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      one = "an object";
      many = "objects";
      break;
    case pb::FieldDescriptor::CPPTYPE_STRING:
      one = "a string";
      many = "strings";
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      one = "a non-negative integer";
      many = "non-negative integers";
      break;
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64:
      one = "an integer";
      many = "integers";
      break;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      one = "a number";
      many = "numbers";
      break;
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      one = "true or false";
      many = "booleans";
      break;
    case pb::FieldDescriptor::CPPTYPE_ENUM:
      one = "an enum value name";
      many = "enum value names";
      break;
    default:
      break;
  }
  if (f->is_repeated() && !element) return absl::StrCat("a list of ", many);
  return std::string(one);
}

// IsNumeric: a field whose JSON is a number (or a decimal string).
bool IsNumeric(const pb::FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_UINT32:
    case pb::FieldDescriptor::CPPTYPE_UINT64:
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_INT64:
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      return true;
    default:
      return false;
  }
}

// FieldNames lists the fields of |message|, for "unknown field" errors.
std::string FieldNames(const pb::Descriptor* message) {
  std::string out;
  for (int i = 0; i < message->field_count(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ", ", message->field(i)->name());
  }
  return out;
}

// JsonChecker walks the text once, before protobuf's parser, to refuse what that parser lets
// through and to place what it reports without a position. protobuf 3.21's parser accepts
// single quotes, bare keys and trailing commas; keeps the last of a repeated key; takes a lone
// value as a one-element list, flattens nested lists and drops nulls from lists (which would
// shift the indexes our errors name); and its syntax errors quote the input, which may hold a
// key. JsonChecker enforces:
//   - RFC 8259 syntax, valid UTF-8, at most max_depth levels, nothing after the root object;
//   - each field at most once per object, in either spelling;
//   - the shape the schema asks for: a list exactly for a repeated field, an object only for a
//     message field, no null inside a list, no string for a bool.
// Field names and leaf types (string or number) are left to protobuf's parser. Errors here never
// quote the input: they give a line and column (columns count characters) or a field path.
class JsonChecker {
 public:
  JsonChecker(absl::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}
  absl::Status Run(const pb::Descriptor* root);

 private:
  // Value reads one value for |field| (null when the schema does not say: inside an unknown
  // field or a scalar); |element|: one element of |field|'s list; |type|: the message an object
  // here would be (null if unknown).
  absl::Status Value(const pb::FieldDescriptor* field, bool element, const pb::Descriptor* type,
                     int depth);
  absl::Status Object(const pb::Descriptor* type, int depth);
  absl::Status Array(const pb::FieldDescriptor* field, int depth);
  // String reads a string; with |out|, also decodes it (for field names).
  absl::Status String(std::string* out);
  absl::Status Number();
  absl::Status Literal(absl::string_view word);
  absl::Status Utf8Char();

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  // SkipSpace is the only place a newline can be consumed (strings may not hold one), so it
  // keeps the line count.
  void SkipSpace() {
    for (; !AtEnd(); ++pos_) {
      const char c = Peek();
      if (c == '\n') {
        ++line_;
        line_start_ = pos_ + 1;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        return;
      }
    }
  }
  // SyntaxError: "config: line L, column C: |what| (in PATH)".
  absl::Status SyntaxError(absl::string_view what) const;
  // Expect: |what| is what should come here; at the end of the input the message says so.
  absl::Status Expect(absl::string_view what) const {
    if (AtEnd()) return SyntaxError(absl::StrCat("unexpected end of input (expected ", what, ")"));
    return SyntaxError(absl::StrCat("expected ", what));
  }

  absl::string_view text_;
  const int max_depth_;
  size_t pos_ = 0;
  size_t line_ = 1;
  size_t line_start_ = 0;  // offset of the first byte of line_
  std::string path_;       // where pos_ is, as errors name it: "peers[0].allowed_ips[1]"
};

absl::Status JsonChecker::Run(const pb::Descriptor* root) {
  SkipSpace();
  if (AtEnd()) return ConfigError("", "empty (a config is a JSON object: {...})");
  if (Peek() != '{') return SyntaxError("expected '{' (a config is a JSON object)");
  P2P_RETURN_IF_ERROR(Object(root, 1));
  SkipSpace();
  if (!AtEnd()) return SyntaxError("unexpected text after the config's closing '}'");
  return absl::OkStatus();
}

absl::Status JsonChecker::Value(const pb::FieldDescriptor* field, bool element,
                                const pb::Descriptor* type, int depth) {
  SkipSpace();
  const char c = Peek();
  if (field != nullptr && !AtEnd()) {
    const bool want_list = field->is_repeated() && !element;
    const bool is_null = text_.substr(pos_, 4) == "null";
    if (c == '[' && !want_list) {
      return ConfigError(path_,
                         absl::StrCat("expected ", Expected(field, element), ", not a list"));
    }
    if (c != '[' && want_list && !is_null) {
      return ConfigError(path_, absl::StrCat("expected ", Expected(field, false), " ([...])"));
    }
    if (c == '{' && field->message_type() == nullptr) {
      return ConfigError(path_,
                         absl::StrCat("expected ", Expected(field, element), ", not an object"));
    }
    if (element && is_null) return ConfigError(path_, "null in a list (remove it)");
    // protobuf 3.21 takes any string for a bool ("no" is true).
    if (c == '"' && field->cpp_type() == pb::FieldDescriptor::CPPTYPE_BOOL) {
      return ConfigError(path_,
                         absl::StrCat("expected ", Expected(field, element), ", got a string"));
    }
  }
  switch (c) {
    case '{':
      return Object(type, depth + 1);
    case '[':
      return Array(field, depth + 1);
    case '"':
      return String(nullptr);
    case 't':
      return Literal("true");
    case 'f':
      return Literal("false");
    case 'n':
      return Literal("null");
    default:
      if (c == '-' || absl::ascii_isdigit(c)) return Number();
      if (c == '\'' || absl::ascii_isalpha(c)) {
        return SyntaxError("expected a value (strings take double quotes)");
      }
      return Expect("a value");
  }
}

absl::Status JsonChecker::Object(const pb::Descriptor* type, int depth) {
  if (depth > max_depth_) {
    return SyntaxError(absl::StrCat("nested more than ", max_depth_, " levels deep"));
  }
  ++pos_;  // '{'
  SkipSpace();
  if (Peek() == '}') {
    ++pos_;
    return absl::OkStatus();
  }
  // Fields seen so far in this object, with the line of their name. Config messages have a
  // handful of fields, so a vector is the right map.
  std::vector<std::pair<const pb::FieldDescriptor*, size_t>> seen;
  for (;;) {
    SkipSpace();
    if (Peek() != '"') {
      if (Peek() == '}') {
        return SyntaxError("expected a field name after ',' (JSON has no trailing commas)");
      }
      if (Peek() == '\'' || absl::ascii_isalpha(Peek()) || Peek() == '_') {
        return SyntaxError("expected a field name in double quotes");
      }
      return Expect("a field name in double quotes");
    }
    const size_t name_line = line_;
    const size_t name_pos = pos_;
    std::string name;
    P2P_RETURN_IF_ERROR(String(&name));
    if (name.empty()) {
      pos_ = name_pos;  // protobuf's parser would say only "Proto fields must have a name."
      return SyntaxError("empty field name");
    }
    SkipSpace();
    if (Peek() != ':') return Expect("':' after the field name");
    ++pos_;
    const pb::FieldDescriptor* f = FindField(type, name);
    if (f != nullptr) {
      for (const auto& [other, line] : seen) {
        if (other == f) {
          return ConfigError(
              JoinPath(path_, f->name()),
              line == name_line
                  ? absl::StrCat("given twice (both on line ", line, ")")
                  : absl::StrCat("given twice (lines ", line, " and ", name_line, ")"));
        }
      }
      seen.emplace_back(f, name_line);
    }
    const size_t mark = path_.size();
    path_ = JoinPath(path_, f != nullptr ? f->name() : LooksLikeName(name) ? name : "?");
    P2P_RETURN_IF_ERROR(Value(f, false, f != nullptr ? f->message_type() : nullptr, depth));
    path_.resize(mark);
    SkipSpace();
    if (Peek() == ',') {
      ++pos_;
      continue;
    }
    if (Peek() == '}') {
      ++pos_;
      return absl::OkStatus();
    }
    return Expect("',' or '}' after a field");
  }
}

absl::Status JsonChecker::Array(const pb::FieldDescriptor* field, int depth) {
  if (depth > max_depth_) {
    return SyntaxError(absl::StrCat("nested more than ", max_depth_, " levels deep"));
  }
  ++pos_;  // '['
  SkipSpace();
  if (Peek() == ']') {
    ++pos_;
    return absl::OkStatus();
  }
  const pb::Descriptor* type = field != nullptr ? field->message_type() : nullptr;
  for (size_t index = 0;; ++index) {
    SkipSpace();
    if (Peek() == ']') {
      return SyntaxError("expected a value after ',' (JSON has no trailing commas)");
    }
    const size_t mark = path_.size();
    absl::StrAppend(&path_, "[", index, "]");
    P2P_RETURN_IF_ERROR(Value(field, true, type, depth));
    path_.resize(mark);
    SkipSpace();
    if (Peek() == ',') {
      ++pos_;
      continue;
    }
    if (Peek() == ']') {
      ++pos_;
      return absl::OkStatus();
    }
    return Expect("',' or ']' after a list element");
  }
}

absl::Status JsonChecker::String(std::string* out) {
  ++pos_;  // '"'
  for (;;) {
    if (AtEnd()) return SyntaxError("unexpected end of input in a string (missing '\"')");
    const char c = Peek();
    const auto u = static_cast<uint8_t>(c);
    if (c == '"') {
      ++pos_;
      return absl::OkStatus();
    }
    if (u < 0x20) {
      return SyntaxError("control character in a string (write a newline as \\n, a tab as \\t)");
    }
    if (u >= 0x80) {
      const size_t start = pos_;
      P2P_RETURN_IF_ERROR(Utf8Char());
      if (out != nullptr) out->append(text_.data() + start, pos_ - start);
      continue;
    }
    if (c != '\\') {
      if (out != nullptr) out->push_back(c);
      ++pos_;
      continue;
    }
    ++pos_;  // '\\'
    if (AtEnd()) return SyntaxError("unexpected end of input in a string (missing '\"')");
    const char e = Peek();
    static constexpr absl::string_view kSimple = "\"\\/bfnrt";
    static constexpr absl::string_view kDecoded = "\"\\/\b\f\n\r\t";
    if (const size_t i = kSimple.find(e); i != absl::string_view::npos) {
      if (out != nullptr) out->push_back(kDecoded[i]);
      ++pos_;
      continue;
    }
    if (e != 'u') {
      return SyntaxError(
          "invalid escape in a string (JSON has \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
    }
    // \uXXXX, and for a code point above U+FFFF a UTF-16 surrogate pair of two.
    auto hex4 = [this](uint32_t* cp) {
      if (text_.size() - pos_ < 5 || text_[pos_] != 'u') return false;
      auto v = base::HexDecode(text_.substr(pos_ + 1, 4));
      if (!v.ok()) return false;
      *cp = uint32_t{(*v)[0]} << 8 | (*v)[1];
      pos_ += 5;
      return true;
    };
    uint32_t cp;
    if (!hex4(&cp)) return SyntaxError("\\u must be followed by four hex digits");
    if (cp >= 0xdc00 && cp <= 0xdfff) return SyntaxError("\\u escape is a lone low surrogate");
    if (cp >= 0xd800 && cp <= 0xdbff) {
      uint32_t low = 0;
      if (Peek() == '\\') ++pos_;
      if (!hex4(&low) || low < 0xdc00 || low > 0xdfff) {
        return SyntaxError("\\u escape is a high surrogate without a low one after it");
      }
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    if (out == nullptr) continue;
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | cp >> 6));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | cp >> 12));
      out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | cp >> 18));
      out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }
}

// Utf8Char consumes one multi-byte UTF-8 character: no overlong forms, no surrogates, nothing
// above U+10FFFF (RFC 3629).
absl::Status JsonChecker::Utf8Char() {
  const auto b0 = static_cast<uint8_t>(Peek());
  size_t len;
  uint8_t lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return SyntaxError("invalid UTF-8 in a string");
  }
  if (text_.size() - pos_ < len) return SyntaxError("invalid UTF-8 in a string");
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<uint8_t>(text_[pos_ + i]);
    if (i == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80) {
      return SyntaxError("invalid UTF-8 in a string");
    }
  }
  pos_ += len;
  return absl::OkStatus();
}

absl::Status JsonChecker::Number() {
  const size_t start = pos_;
  auto digits = [this] {
    const size_t from = pos_;
    while (absl::ascii_isdigit(Peek())) ++pos_;
    return pos_ - from;
  };
  if (Peek() == '-') ++pos_;
  if (Peek() == '0') {
    ++pos_;
    if (absl::ascii_isdigit(Peek())) return SyntaxError("numbers have no leading zeros in JSON");
  } else if (digits() == 0) {
    return SyntaxError("expected a digit");
  }
  if (Peek() == '.') {
    ++pos_;
    if (digits() == 0) return SyntaxError("expected a digit after '.'");
  }
  if (Peek() == 'e' || Peek() == 'E') {
    ++pos_;
    if (Peek() == '+' || Peek() == '-') ++pos_;
    if (digits() == 0) return SyntaxError("expected a digit in the exponent");
  }
  // protobuf's parser rejects a number beyond a double's range without saying where.
  // SimpleAtod (unlike strtod) ignores the locale and gives infinity on overflow.
  double value = 0;
  if (!absl::SimpleAtod(text_.substr(start, pos_ - start), &value) || std::isinf(value)) {
    pos_ = start;
    return SyntaxError("number out of range");
  }
  return absl::OkStatus();
}

absl::Status JsonChecker::Literal(absl::string_view word) {
  if (text_.substr(pos_, word.size()) != word) {
    return SyntaxError("expected a value (strings take double quotes)");
  }
  pos_ += word.size();
  return absl::OkStatus();
}

absl::Status JsonChecker::SyntaxError(absl::string_view what) const {
  size_t column = 1;
  for (size_t i = line_start_; i < std::min(pos_, text_.size()); ++i) {
    column += (static_cast<uint8_t>(text_[i]) & 0xc0) != 0x80;  // count characters, not bytes
  }
  std::string where = absl::StrCat("line ", line_, ", column ", column);
  if (!path_.empty()) absl::StrAppend(&where, " (in ", path_, ")");
  return ConfigError(where, what);
}

// PathTarget is what a path in one of protobuf's messages ("peers[0].allowed_ips[1]") names.
struct PathTarget {
  const pb::FieldDescriptor* field = nullptr;  // null: the root
  bool element = false;                        // the path ends in an index
  const pb::Descriptor* message = nullptr;     // the message an object there is, if any
};

// ResolvePath follows |path| from |root|; false if it is not a path of this schema.
bool ResolvePath(const pb::Descriptor* root, absl::string_view path, PathTarget* out) {
  PathTarget t;
  t.message = root;
  if (path.empty()) {
    *out = t;
    return true;
  }
  for (absl::string_view segment : absl::StrSplit(path, '.')) {
    const size_t bracket = segment.find('[');
    const absl::string_view name = segment.substr(0, bracket);
    if (t.message == nullptr) return false;
    t.field = t.message->FindFieldByName(std::string(name));
    if (t.field == nullptr) return false;
    t.element = bracket != absl::string_view::npos;
    if (t.element && !t.field->is_repeated()) return false;
    t.message = t.field->message_type();
  }
  *out = t;
  return true;
}

// LooksLikeNumber: how the parser prints a number it rejects ("-1", "1.5", "4294967296",
// "1.8446744073709552e+19").
bool LooksLikeNumber(absl::string_view value) {
  if (value.empty() || value.size() > 32) return false;
  if (value.front() != '-' && !absl::ascii_isdigit(value.front())) return false;
  return value.find_first_not_of("0123456789.eE+-") == absl::string_view::npos;
}

// TranslateJsonError rewrites an error of protobuf 3.21's JSON parser for a message of type
// |root| (after JsonChecker has passed the text, only unknown fields and wrong leaf types
// remain) into ours. The parser goes on after such an error and reports the last one in the
// text, not the first. Its forms:
//   "(PATH) NAME: Cannot find field."           an unknown field (no "(PATH) " at the root)
//   "(PATH): invalid value V for type T"        a wrong type; V is the value as written, and a
//                                               string there is never repeated (it may be a key)
//   "(PATH): invalid value Starting an object on a scalar field for type NAME"
//   "(PATH) NAME: Proto field is not repeating, cannot start list."
// PATH uses the .proto names whatever spelling the JSON used. Anything else (or a PATH that
// does not resolve, as when a field name has parentheses) gives a generic message without the
// parser's text after its first line, which quotes the input.
absl::Status TranslateJsonError(absl::string_view message, const pb::Descriptor* root) {
  absl::string_view rest = message;
  std::string path;
  if (absl::StartsWith(rest, "(")) {
    const size_t close = rest.find(')');
    if (close != absl::string_view::npos) {
      path = std::string(rest.substr(1, close - 1));
      rest.remove_prefix(close + 1);
    }
  }
  PathTarget at;
  if (!ResolvePath(root, path, &at)) {
    path.clear();
    rest = message;
    ResolvePath(root, "", &at);
  }
  rest = absl::StripLeadingAsciiWhitespace(rest);

  if (absl::ConsumeSuffix(&rest, ": Cannot find field.") && at.message != nullptr) {
    const std::string expected = absl::StrCat("expected one of: ", FieldNames(at.message), ")");
    if (!LooksLikeName(rest)) {
      return ConfigError(path, "unknown field (name not shown; " + expected);
    }
    return ConfigError(JoinPath(path, rest), "unknown field (" + expected);
  }
  if (absl::ConsumeSuffix(&rest, ": Proto field is not repeating, cannot start list.")) {
    if (const pb::FieldDescriptor* f = FindField(at.message, rest); f != nullptr) {
      return ConfigError(JoinPath(path, f->name()),
                         absl::StrCat("expected ", Expected(f, false), ", not a list"));
    }
  }
  if (absl::ConsumePrefix(&rest, ": invalid value ")) {
    if (absl::ConsumePrefix(&rest, "Starting an object on a scalar field for type ")) {
      // Inside a list of scalars, PATH is the list itself and NAME repeats its field.
      if (at.field != nullptr && at.field->is_repeated() && at.field->name() == rest) {
        return ConfigError(path, absl::StrCat("expected ", Expected(at.field, false),
                                              ", not a list with an object in it"));
      }
      if (const pb::FieldDescriptor* f = FindField(at.message, rest); f != nullptr) {
        return ConfigError(JoinPath(path, f->name()),
                           absl::StrCat("expected ", Expected(f, false), ", not an object"));
      }
    } else if (at.field != nullptr) {
      const size_t for_type = rest.rfind(" for type ");
      const absl::string_view value = rest.substr(0, for_type);
      std::string got;
      if (absl::StartsWith(value, "\"")) {
        got = IsNumeric(at.field) ? ", got a string that is not one" : ", got a string";
      } else if (value == "true" || value == "false" || LooksLikeNumber(value)) {
        got = absl::StrCat(", got ", value);  // never key material
      }
      return ConfigError(path, absl::StrCat("expected ", Expected(at.field, at.element), got));
    }
  }
  absl::string_view first_line = message.substr(0, message.find('\n'));
  first_line = first_line.substr(0, first_line.find("invalid value"));
  first_line = first_line.substr(0, first_line.find('"'));
  if (LooksLikeKey(first_line)) return ConfigError("", "rejected by the JSON parser");
  return ConfigError("", absl::StrCat("rejected by the JSON parser: ",
                                      absl::StripTrailingAsciiWhitespace(first_line)));
}

}  // namespace

absl::Status ConfigError(absl::string_view path, absl::string_view what) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat("config: ", what));
  return absl::InvalidArgumentError(absl::StrCat("config: ", path, ": ", what));
}

std::string JoinPath(absl::string_view path, absl::string_view name) {
  return path.empty() ? std::string(name) : absl::StrCat(path, ".", name);
}

std::string IndexPath(absl::string_view path, size_t index) {
  return absl::StrCat(path, "[", index, "]");
}

bool LooksLikeKey(absl::string_view value) {
  size_t run = 0;
  for (char c : value) {
    run = absl::ascii_isalnum(c) || c == '+' || c == '/' ? run + 1 : 0;
    if (run >= 32) return true;
  }
  return false;
}

bool LooksLikeName(absl::string_view name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-') return false;
  }
  return true;
}

std::string Quote(absl::string_view value) {
  if (LooksLikeKey(value)) return "a value that looks like a key (not shown)";
  const bool cut = value.size() > kMaxEchoLen;
  if (cut) {
    size_t n = kMaxEchoLen;
    while (n > 0 && (static_cast<uint8_t>(value[n]) & 0xc0) == 0x80) --n;
    value = value.substr(0, n);
  }
  std::string out = "'";
  for (char c : value) {
    const auto u = static_cast<uint8_t>(c);
    if (c == '\'' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppend(&out, "\\x", absl::Hex(u, absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  absl::StrAppend(&out, cut ? "...'" : "'");
  return out;
}

absl::Status CheckPlain(absl::string_view value, absl::string_view path, absl::string_view what) {
  bool plain = value.size() <= kMaxEchoLen && !LooksLikeKey(value);
  for (char c : value) plain = plain && absl::ascii_isgraph(c);
  if (!plain) return ConfigError(path, absl::StrCat(Quote(value), " is not ", what));
  return absl::OkStatus();
}

absl::StatusOr<base::IpAddress> ParseIpv4(absl::string_view value, absl::string_view path,
                                          absl::string_view missing) {
  if (value.empty()) return ConfigError(path, missing);
  P2P_RETURN_IF_ERROR(CheckPlain(value, path, "an IPv4 address"));
  if (value.find('/') != absl::string_view::npos) {
    return ConfigError(path, absl::StrCat(Quote(value),
                                          " is not an IPv4 address (write the "
                                          "address alone, without a prefix length)"));
  }
  auto ip = base::IpAddress::Parse(value);
  if (!ip.ok()) return ConfigError(path, absl::StrCat(Quote(value), " is not an IPv4 address"));
  if (ip->family != base::IpAddress::kV4) {
    return ConfigError(
        path, absl::StrCat(Quote(value), " is not an IPv4 address (overlay addresses are IPv4)"));
  }
  return *ip;
}

absl::StatusOr<base::SocketAddress> ParseHostPort(absl::string_view value, absl::string_view path,
                                                  absl::string_view missing) {
  if (value.empty()) return ConfigError(path, missing);
  P2P_RETURN_IF_ERROR(CheckPlain(value, path, "an address (IP:port)"));
  absl::string_view text = value, host, port_text;
  if (text.front() == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return ConfigError(path, absl::StrCat(Quote(value), " is not an address ([IPv6]:port)"));
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return ConfigError(path, absl::StrCat(Quote(value), " has no port (IP:port)"));
    }
    if (text.find(':') != colon) {
      return ConfigError(
          path, absl::StrCat(Quote(value), " is not an address (write IPv6 as [IPv6]:port)"));
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  uint64_t port = 0;
  if (!base::ParseDecimal(port_text, 65535, &port) || port == 0) {
    return ConfigError(
        path, absl::StrCat(Quote(value), ": ", Quote(port_text), " is not a port (1-65535)"));
  }
  auto address = base::SocketAddress::FromIp(host, static_cast<uint16_t>(port));
  if (!address.ok()) {
    if (base::LooksLikeHostName(host)) {
      return ConfigError(
          path,
          absl::StrCat(Quote(value), ": host names are not supported yet; use an IP address"));
    }
    return ConfigError(path,
                       absl::StrCat(Quote(value), ": ", Quote(host), " is not an IP address"));
  }
  return *address;
}

absl::Status ParseStrictJson(absl::string_view text, pb::Message* out, const JsonOptions& options) {
  if (text.size() > options.max_len) {
    constexpr size_t kMiB = size_t{1} << 20;
    return ConfigError("", options.max_len % kMiB == 0 && options.max_len != 0
                               ? absl::StrCat("larger than ", options.max_len / kMiB, " MiB")
                               : absl::StrCat("larger than ", options.max_len, " bytes"));
  }
  // Editors on Windows like to start files with a UTF-8 byte order mark; JSON allows skipping it.
  absl::ConsumePrefix(&text, "\xEF\xBB\xBF");
  const pb::Descriptor* root = out->GetDescriptor();
  P2P_RETURN_IF_ERROR(JsonChecker(text, options.max_depth).Run(root));

  pb::util::JsonParseOptions parse_options;
  parse_options.ignore_unknown_fields = false;
  const auto status =
      pb::util::JsonStringToMessage(pb::StringPiece(text.data(), text.size()), out, parse_options);
  if (!status.ok()) {
    const auto message = status.message();
    return TranslateJsonError(absl::string_view(message.data(), message.size()), root);
  }
  return absl::OkStatus();
}

}  // namespace p2proxy::config
