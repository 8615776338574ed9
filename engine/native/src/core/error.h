// strata::Error and the STRATA_CHECK macro: how the native core reports bad input (wrong shapes,
// unsupported ops, invalid arguments) with a message naming the op and the offending field.
// This is not a logging facility and does not abort: callers (CLI, binding) catch and report.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace strata {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream stream;
  (stream << ... << parts);
  return stream.str();
}
}  // namespace detail

}  // namespace strata

// STRATA_CHECK(condition, "op_name: field x has ", value, " expected ", other)
#define STRATA_CHECK(condition, ...)                                      \
  do {                                                                    \
    if (!(condition)) throw ::strata::Error(::strata::detail::concat(__VA_ARGS__)); \
  } while (0)
