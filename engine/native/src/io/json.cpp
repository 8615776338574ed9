// JSON value, parser and writer (see json.h). Hand-written, strict RFC 8259 subset: no comments,
// no trailing commas, no NaN/Infinity literals. Not a streaming or schema-aware parser.
#include "json.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace strata::json {

const char* type_name(Type type) {
  switch (type) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Number: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

std::string format_double(double d) {
  if (!std::isfinite(d)) return "null";
  if (d == 0) return std::signbit(d) ? "-0" : "0";
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, result.ptr);
}

Value::Value(double d) : type_(Type::Number), number_(format_double(d)) {
  if (!std::isfinite(d)) { type_ = Type::Null; number_.clear(); }
}
Value::Value(int64_t i) : type_(Type::Number), number_(std::to_string(i)) {}
Value::Value(uint64_t u) : type_(Type::Number), number_(std::to_string(u)) {}

Value Value::number_from_text(std::string text) {
  Value v;
  v.type_ = Type::Number;
  v.number_ = std::move(text);
  return v;
}

void Value::expect(Type t) const {
  if (type_ != t) {
    throw std::runtime_error(std::string("expected a JSON ") + type_name(t) + ", got " + type_name(type_));
  }
}

bool Value::as_bool() const { expect(Type::Bool); return bool_; }

double Value::as_double() const {
  expect(Type::Number);
  return std::strtod(number_.c_str(), nullptr);
}

int64_t Value::as_int64() const {
  expect(Type::Number);
  int64_t out = 0;
  auto r = std::from_chars(number_.data(), number_.data() + number_.size(), out);
  if (r.ec == std::errc() && r.ptr == number_.data() + number_.size()) return out;
  double d = as_double();
  if (std::floor(d) == d && std::fabs(d) < 9.007199254740992e15) return static_cast<int64_t>(d);
  throw std::runtime_error("expected an integer, got " + number_);
}

uint64_t Value::as_uint64() const {
  expect(Type::Number);
  uint64_t out = 0;
  auto r = std::from_chars(number_.data(), number_.data() + number_.size(), out);
  if (r.ec == std::errc() && r.ptr == number_.data() + number_.size()) return out;
  int64_t i = as_int64();
  if (i < 0) throw std::runtime_error("expected a non-negative integer, got " + number_);
  return static_cast<uint64_t>(i);
}

const std::string& Value::as_string() const { expect(Type::String); return string_; }
const std::string& Value::number_text() const { expect(Type::Number); return number_; }

size_t Value::size() const {
  if (type_ == Type::Array) return array_.size();
  if (type_ == Type::Object) return object_.size();
  throw std::runtime_error(std::string("size() of a JSON ") + type_name(type_));
}

const Value& Value::operator[](size_t index) const {
  expect(Type::Array);
  if (index >= array_.size()) throw std::runtime_error("JSON array index out of range");
  return array_[index];
}
Value& Value::operator[](size_t index) {
  expect(Type::Array);
  if (index >= array_.size()) throw std::runtime_error("JSON array index out of range");
  return array_[index];
}
void Value::push_back(Value v) { expect(Type::Array); array_.push_back(std::move(v)); }
const std::vector<Value>& Value::items() const { expect(Type::Array); return array_; }

bool Value::has(const std::string& key) const { return find(key) != nullptr; }

const Value* Value::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& kv : object_) if (kv.first == key) return &kv.second;
  return nullptr;
}
Value* Value::find(const std::string& key) {
  if (type_ != Type::Object) return nullptr;
  for (auto& kv : object_) if (kv.first == key) return &kv.second;
  return nullptr;
}
const Value& Value::at(const std::string& key) const {
  expect(Type::Object);
  const Value* v = find(key);
  if (!v) throw std::runtime_error("missing JSON key \"" + key + "\"");
  return *v;
}
Value& Value::set(const std::string& key, Value v) {
  expect(Type::Object);
  for (auto& kv : object_) {
    if (kv.first == key) { kv.second = std::move(v); return kv.second; }
  }
  object_.emplace_back(key, std::move(v));
  return object_.back().second;
}
const std::vector<std::pair<std::string, Value>>& Value::members() const { expect(Type::Object); return object_; }

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------
namespace {

class Parser {
 public:
  Parser(const std::string& text, const std::string& source) : s_(text), source_(source) {}

  Value parse_document() {
    skip_ws();
    Value v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    int line = 1, col = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); i++) {
      if (s_[i] == '\n') { line++; col = 1; } else { col++; }
    }
    throw ParseError(source_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + what, line, col);
  }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) pos_++;
  }

  bool consume_literal(const char* lit) {
    size_t n = std::strlen(lit);
    if (s_.compare(pos_, n, lit) == 0) { pos_ += n; return true; }
    return false;
  }

  Value parse_value(int depth) {
    if (depth > 512) fail("nesting too deep");
    if (pos_ >= s_.size()) fail("unexpected end of input, expected a value");
    char c = s_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Value(parse_string());
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    if (consume_literal("true")) return Value(true);
    if (consume_literal("false")) return Value(false);
    if (consume_literal("null")) return Value();
    fail(std::string("unexpected character '") + c + "'");
  }

  Value parse_object(int depth) {
    pos_++;  // {
    Value obj = Value::object();
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') { pos_++; return obj; }
    while (true) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
      std::string key = parse_string();
      if (obj.has(key)) fail("duplicate key \"" + key + "\"");
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':' after key");
      pos_++;
      skip_ws();
      obj.set(key, parse_value(depth + 1));
      skip_ws();
      if (pos_ >= s_.size()) fail("unexpected end of input inside an object");
      if (s_[pos_] == ',') { pos_++; continue; }
      if (s_[pos_] == '}') { pos_++; return obj; }
      fail("expected ',' or '}' in an object");
    }
  }

  Value parse_array(int depth) {
    pos_++;  // [
    Value arr = Value::array();
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') { pos_++; return arr; }
    while (true) {
      skip_ws();
      arr.push_back(parse_value(depth + 1));
      skip_ws();
      if (pos_ >= s_.size()) fail("unexpected end of input inside an array");
      if (s_[pos_] == ',') { pos_++; continue; }
      if (s_[pos_] == ']') { pos_++; return arr; }
      fail("expected ',' or ']' in an array");
    }
  }

  Value parse_number() {
    size_t start = pos_;
    if (s_[pos_] == '-') pos_++;
    if (pos_ >= s_.size()) fail("truncated number");
    if (s_[pos_] == '0') {
      pos_++;
    } else if (s_[pos_] >= '1' && s_[pos_] <= '9') {
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) pos_++;
    } else {
      fail("invalid number");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      pos_++;
      if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) fail("expected digits after '.'");
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) pos_++;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      pos_++;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) pos_++;
      if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_]))) fail("expected digits in exponent");
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) pos_++;
    }
    return Value::number_from_text(s_.substr(start, pos_ - start));
  }

  unsigned parse_hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else fail("invalid hex digit in \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string parse_string() {
    pos_++;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) { pos_--; fail("control character inside a string"); }
      if (c != '\\') { out += c; continue; }
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = parse_hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') fail("unpaired surrogate in \\u escape");
            pos_ += 2;
            unsigned lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("invalid low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            fail("unpaired low surrogate in \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default: pos_--; fail(std::string("invalid escape '\\") + e + "'");
      }
    }
  }

  const std::string& s_;
  const std::string& source_;
  size_t pos_ = 0;
};

void dump_into(std::string& out, const Value& v, int indent, int level) {
  auto newline = [&](int lvl) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent * lvl), ' ');
  };
  switch (v.type()) {
    case Type::Null: out += "null"; break;
    case Type::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Type::Number: out += v.number_text(); break;
    case Type::String: out += quote(v.as_string()); break;
    case Type::Array: {
      const auto& items = v.items();
      if (items.empty()) { out += "[]"; break; }
      out += '[';
      for (size_t i = 0; i < items.size(); i++) {
        if (i) out += ',';
        newline(level + 1);
        dump_into(out, items[i], indent, level + 1);
      }
      newline(level);
      out += ']';
      break;
    }
    case Type::Object: {
      const auto& members = v.members();
      if (members.empty()) { out += "{}"; break; }
      out += '{';
      for (size_t i = 0; i < members.size(); i++) {
        if (i) out += ',';
        newline(level + 1);
        out += quote(members[i].first);
        out += indent < 0 ? ":" : ": ";
        dump_into(out, members[i].second, indent, level + 1);
      }
      newline(level);
      out += '}';
      break;
    }
  }
}

}  // namespace

Value parse(const std::string& text, const std::string& source) {
  Parser p(text, source);
  return p.parse_document();
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string dump(const Value& value, int indent) {
  std::string out;
  dump_into(out, value, indent, 0);
  return out;
}

}  // namespace strata::json
