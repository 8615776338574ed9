// A small hand-written JSON value, reader and writer for the native engine (document files,
// safetensors headers, .stok headers, checkpoint metadata and JSON-line events).
//
// It is: a tree of values (null, bool, number, string, array, object with insertion order kept),
// a strict parser whose errors carry line and column, and a writer (compact or indented).
// Numbers keep their source text so 64-bit integers (RNG state, token counts) survive a round
// trip exactly. It is not a streaming parser, not a schema validator (model/config.cpp checks
// fields) and does not accept comments, trailing commas or NaN literals.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace strata::json {

/** Thrown for malformed JSON text; what() names the source, line and column. */
class ParseError : public std::runtime_error {
 public:
  ParseError(const std::string& message, int line, int column)
      : std::runtime_error(message), line(line), column(column) {}
  int line;
  int column;
};

enum class Type { Null, Bool, Number, String, Array, Object };

const char* type_name(Type type);

class Value {
 public:
  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool b) : type_(Type::Bool), bool_(b) {}
  Value(double d);
  Value(float f) : Value(static_cast<double>(f)) {}
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(int64_t i);
  Value(uint64_t u);
  Value(const char* s) : type_(Type::String), string_(s) {}
  Value(std::string s) : type_(Type::String), string_(std::move(s)) {}

  static Value array() { Value v; v.type_ = Type::Array; return v; }
  static Value object() { Value v; v.type_ = Type::Object; return v; }
  /** A number from its JSON text (already validated by the parser). */
  static Value number_from_text(std::string text);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Accessors throw std::runtime_error naming the expected and actual type.
  bool as_bool() const;
  double as_double() const;
  /** Integer value; throws if the number has a fraction or does not fit. */
  int64_t as_int64() const;
  uint64_t as_uint64() const;
  const std::string& as_string() const;
  const std::string& number_text() const;

  // Arrays
  size_t size() const;  // array or object element count
  const Value& operator[](size_t index) const;
  Value& operator[](size_t index);
  void push_back(Value v);
  const std::vector<Value>& items() const;

  // Objects (keys keep insertion order; set() replaces an existing key)
  bool has(const std::string& key) const;
  /** nullptr when absent. */
  const Value* find(const std::string& key) const;
  Value* find(const std::string& key);
  const Value& at(const std::string& key) const;  // throws when absent
  Value& set(const std::string& key, Value v);
  const std::vector<std::pair<std::string, Value>>& members() const;

 private:
  void expect(Type t) const;
  Type type_ = Type::Null;
  bool bool_ = false;
  std::string number_;  // source text of a number
  std::string string_;
  std::vector<Value> array_;
  std::vector<std::pair<std::string, Value>> object_;
};

/** Parses one JSON value (surrounding whitespace allowed). `source` names the input in errors. */
Value parse(const std::string& text, const std::string& source = "<json>");

/** Serializes; indent < 0 writes compact one-line JSON. Non-finite numbers are written as null. */
std::string dump(const Value& value, int indent = -1);

/** Escapes a string as a JSON string literal including the quotes. */
std::string quote(const std::string& s);

/** Shortest text that reads back as the same double ("1e-05", "0.1", "3"). */
std::string format_double(double d);

}  // namespace strata::json
