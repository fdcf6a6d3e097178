// Typed configuration: JSON with comments, `key.sub=value` overrides, every problem listed.
//
// An options struct declares its keys once, in a visit() method; reading, writing the
// resolved config, and printing the documented defaults all walk that one table:
//
//   struct OptimOptions {
//     double lr = 1e-5;            // peak learning rate
//     std::string schedule = "cosine";
//     template <class V> void visit(V& v) {
//       v("lr", lr, "peak learning rate");
//       v("schedule", schedule, "constant | linear | cosine", {"constant", "linear", "cosine"});
//     }
//   };
//   struct TrainOptions { OptimOptions optim; int64_t steps = 100;
//     template <class V> void visit(V& v) { v.section("optim", optim, "optimizer"); v("steps", steps, "..."); } };
//
//   auto j = cada::config::load_file(path);            // comments allowed
//   cada::config::apply_overrides(j, {"optim.lr=3e-4"});
//   TrainOptions opts = cada::config::parse<TrainOptions>(j, path);  // throws listing every problem
//   cada::config::to_json(opts);                       // the resolved config
//   cada::config::describe(opts);                      // "key = default  # help" lines
//
// A numeric key may declare its valid interval as a fourth argument, which parse() checks and
// describe() prints:  v("beta2", beta2, "Adam second-moment decay", config::Range::half_open(0, 1));
// Every floating-point value must be finite. Duplicate keys in one JSON object are an error.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "cada/util/error.h"

namespace cada::config {

using nlohmann::json;

// Reads a JSON file that may contain // and /* */ comments; errors name the file and line.
json load_file(const std::string& path);
// Parses text with comments; `source` names it in errors.
json parse_text(const std::string& text, const std::string& source);

// Applies "a.b.c=value" overrides in place. value is parsed as JSON when it is valid JSON
// (numbers, true/false, null, lists, quoted strings), else taken as a plain string.
void apply_overrides(json& j, const std::vector<std::string>& overrides);

// The valid interval of a numeric key: [lo, hi], either end open or unbounded.
struct Range {
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  static Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, false}; }
  static Range above(double lo) { return {lo, std::numeric_limits<double>::infinity(), true, false}; }
  static Range closed(double lo, double hi) { return {lo, hi, false, false}; }
  static Range half_open(double lo, double hi) { return {lo, hi, false, true}; }   // [lo, hi)
  static Range open_closed(double lo, double hi) { return {lo, hi, true, false}; } // (lo, hi]
  bool contains(double x) const {
    return (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
  }
  std::string describe() const;  // ">= 0", "in (0, 1]", ...
};

namespace detail {

template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {};
template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  else if constexpr (std::is_unsigned_v<T>) return sizeof(T) < 8 ? "a non-negative 32-bit integer" : "a non-negative integer";
  else if constexpr (std::is_integral_v<T>) return sizeof(T) < 8 ? "a 32-bit integer" : "an integer";
  else if constexpr (std::is_floating_point_v<T>) return "a number";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (is_vector<T>::value) return "a list";
  else return "a JSON value";
}

template <class T>
bool read_value(const json& v, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return false;
    out = v.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) return false;
    // A value outside T's range would wrap silently (4294967301 -> 5 in 32 bits): refused.
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
    } else {
      const int64_t x = v.get<int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (x < 0) return false;
      } else if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                 x > static_cast<int64_t>(std::numeric_limits<T>::max())) {
        return false;
      }
    }
    out = v.get<T>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) return false;
    out = v.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return false;
    out = v.get<std::string>();
  } else if constexpr (is_optional<T>::value) {
    if (v.is_null()) {
      out.reset();
      return true;
    }
    typename T::value_type x{};
    if (!read_value(v, x)) return false;
    out = x;
  } else if constexpr (is_vector<T>::value) {
    if (!v.is_array()) return false;
    T tmp;
    for (const auto& e : v) {
      typename T::value_type x{};
      if (!read_value(e, x)) return false;
      tmp.push_back(std::move(x));
    }
    out = std::move(tmp);
  } else {
    out = v;  // json
  }
  return true;
}

template <class T>
json write_value(const T& v) {
  if constexpr (is_optional<T>::value) return v ? json(*v) : json(nullptr);
  else return json(v);
}

// Reads fields from a JSON object, collecting problems instead of stopping at the first.
struct Reader {
  const json* obj;
  std::string prefix;                    // "optim." for nested sections
  std::vector<std::string>* problems;
  std::vector<std::string> seen;

  template <class T>
  void operator()(const char* key, T& field, const char* /*help*/, std::vector<std::string> choices = {}) {
    seen.push_back(key);
    if (!obj->contains(key)) return;
    const json& v = obj->at(key);
    if (!read_value(v, field)) {
      problems->push_back("'" + prefix + key + "' must be " + type_name<T>() + ", got " + v.dump());
      return;
    }
    if constexpr (std::is_same_v<T, std::string>) {
      if (!choices.empty() && std::find(choices.begin(), choices.end(), field) == choices.end()) {
        std::string list;
        for (size_t i = 0; i < choices.size(); ++i) list += (i ? ", " : "") + choices[i];
        problems->push_back("'" + prefix + key + "' is '" + field + "'; expected one of: " + list);
      }
    }
  }
  // Ranges and finiteness are checked on the parsed struct (RangeChecker), as for flags.
  template <class T>
  void operator()(const char* key, T& field, const char* help, const Range&) {
    static_assert(std::is_arithmetic_v<T>, "a Range applies to numeric keys");
    (*this)(key, field, help);
  }
  template <class S>
  void section(const char* key, S& sub, const char* /*help*/) {
    seen.push_back(key);
    if (!obj->contains(key)) return;
    const json& v = obj->at(key);
    if (!v.is_object()) {
      problems->push_back("'" + prefix + key + "' must be an object, got " + v.dump());
      return;
    }
    Reader r{&v, prefix + key + ".", problems, {}};
    sub.visit(r);
    r.check_unknown();
  }
  void check_unknown() {
    for (auto it = obj->begin(); it != obj->end(); ++it) {
      if (std::find(seen.begin(), seen.end(), it.key()) != seen.end()) continue;
      std::string valid;
      for (size_t i = 0; i < seen.size(); ++i) valid += (i ? ", " : "") + seen[i];
      problems->push_back("unknown key '" + prefix + it.key() + "' (valid keys here: " + valid + ")");
    }
  }
};

struct Writer {
  json* obj;
  template <class T>
  void operator()(const char* key, T& field, const char*, std::vector<std::string> = {}) {
    (*obj)[key] = write_value(field);
  }
  template <class T>
  void operator()(const char* key, T& field, const char* help, const Range&) {
    (*this)(key, field, help);
  }
  template <class S>
  void section(const char* key, S& sub, const char*) {
    json j = json::object();
    Writer w{&j};
    sub.visit(w);
    (*obj)[key] = j;
  }
};

struct Describer {
  std::string prefix;
  std::vector<std::string>* lines;
  template <class T>
  void operator()(const char* key, T& field, const char* help, std::vector<std::string> = {}) {
    lines->push_back(prefix + key + " = " + write_value(field).dump() + "  # " + help);
  }
  template <class T>
  void operator()(const char* key, T& field, const char* help, const Range& range) {
    lines->push_back(prefix + key + " = " + write_value(field).dump() + "  # " + help + " (" + range.describe() + ")");
  }
  template <class S>
  void section(const char* key, S& sub, const char* help) {
    lines->push_back("# " + prefix + key + ": " + help);
    Describer d{prefix + key + ".", lines};
    sub.visit(d);
  }
};

// Checks the declared ranges (and finiteness) of values set other than through parse(): the
// command-line flags of add_struct_options.
struct RangeChecker {
  std::string prefix;
  std::vector<std::string>* problems;
  template <class T>
  void operator()(const char* key, T& field, const char*, std::vector<std::string> = {}) {
    if constexpr (std::is_floating_point_v<T>)
      if (!std::isfinite(field))
        problems->push_back("'" + prefix + key + "' must be a finite number, got " + (std::isnan(field) ? "nan" : field > 0 ? "inf" : "-inf"));
  }
  template <class T>
  void operator()(const char* key, T& field, const char* help, const Range& range) {
    const size_t before = problems->size();
    (*this)(key, field, help);
    if (problems->size() == before && !range.contains(static_cast<double>(field)))
      problems->push_back("'" + prefix + key + "' must be " + range.describe() + ", got " + json(field).dump());
  }
  template <class S>
  void section(const char* key, S& sub, const char*) {
    RangeChecker c{prefix + key + ".", problems};
    sub.visit(c);
  }
};

}  // namespace detail

// Each value of `opts` outside its declared range (or not finite), as one sentence naming the
// dotted key under `section` (e.g. "'rollout.top_p' must be in (0, 1], got 0").
template <class T>
std::vector<std::string> range_problems(const T& opts, const std::string& section = "") {
  std::vector<std::string> problems;
  detail::RangeChecker c{section.empty() ? "" : section + ".", &problems};
  const_cast<T&>(opts).visit(c);
  return problems;
}

// Fills an options struct from JSON; throws one cada::Error listing every problem (wrong
// types, unknown keys, invalid choices, values outside their ranges), each prefixed by `source`.
template <class T>
T parse(const json& j, const std::string& source) {
  CADA_CHECK(j.is_object(), source, ": the config must be a JSON object");
  T out{};
  std::vector<std::string> problems;
  detail::Reader r{&j, "", &problems, {}};
  out.visit(r);
  r.check_unknown();
  for (auto& p : range_problems(out)) problems.push_back(std::move(p));
  if (!problems.empty()) {
    std::string msg = source + ": " + std::to_string(problems.size()) + " problem(s) in the config:";
    for (const auto& p : problems) msg += "\n  - " + p;
    throw Error(msg);
  }
  return out;
}

template <class T>
json to_json(const T& opts) {
  json j = json::object();
  detail::Writer w{&j};
  const_cast<T&>(opts).visit(w);
  return j;
}

// One line per key: "section.key = default  # help", in declaration order.
template <class T>
std::vector<std::string> describe(const T& opts) {
  std::vector<std::string> lines;
  detail::Describer d{"", &lines};
  const_cast<T&>(opts).visit(d);
  return lines;
}

}  // namespace cada::config
