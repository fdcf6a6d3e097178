// Jinja built-ins: tests, and the methods of strings, dicts and lists that chat
// templates call, with jinja2's attribute / item lookup.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include "jinja_internal.h"

namespace cada::text::jinja {

using K = Value::Kind;

// ------------------------------------------------------------------ string helpers
// Decodes the code point at s[k] and its length in bytes.
uint32_t code_point(const std::string& s, size_t k, size_t& len) {
  const unsigned char c = static_cast<unsigned char>(s[k]);
  len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
  if (k + len > s.size()) { len = 1; return c; }
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t j = 1; j < len; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3F);
  return cp;
}

// Python's str.isspace() for one code point.
bool py_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// Python's str.strip / lstrip / rstrip; `chars` undefined or none strips whitespace.
std::string py_strip(const std::string& s, const Value& chars, bool left, bool right) {
  std::vector<std::pair<size_t, uint32_t>> cps;  // (byte offset, code point)
  for (size_t k = 0, len = 0; k < s.size(); k += len) cps.emplace_back(k, code_point(s, k, len));
  std::vector<uint32_t> set;
  const bool custom = chars.is_string();
  if (custom)
    for (size_t k = 0, len = 0; k < chars.s.size(); k += len) set.push_back(code_point(chars.s, k, len));
  auto strip_it = [&](uint32_t cp) {
    return custom ? std::find(set.begin(), set.end(), cp) != set.end() : py_space(cp);
  };
  size_t b = 0, e = cps.size();
  if (left) while (b < e && strip_it(cps[b].second)) ++b;
  if (right) while (e > b && strip_it(cps[e - 1].second)) --e;
  const size_t from = b < cps.size() ? cps[b].first : s.size();
  const size_t to = e < cps.size() ? cps[e].first : s.size();
  return s.substr(from, to > from ? to - from : 0);
}

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x80) c = static_cast<char>(f(static_cast<unsigned char>(c)));
  return s;
}

std::string capitalize(const std::string& s) {
  std::string out = ascii_map(s, ::tolower);
  if (!out.empty() && static_cast<unsigned char>(out[0]) < 0x80) out[0] = static_cast<char>(std::toupper(out[0]));
  return out;
}

std::string title(const std::string& s) {
  std::string out = s;
  bool prev_cased = false;
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x80) { prev_cased = true; continue; }
    if (std::isalpha(u)) {
      c = static_cast<char>(prev_cased ? std::tolower(u) : std::toupper(u));
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return out;
}

std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count) {
  std::string out;
  size_t k = 0;
  int64_t done = 0;
  if (from.empty()) {  // Python inserts `to` between every character
    for (const auto& ch : iterate(Value::string(s), 0)) {
      if (count < 0 || done < count) { out += to; ++done; }
      out += ch.s;
    }
    if (count < 0 || done < count) out += to;
    return out;
  }
  while (true) {
    const size_t f = s.find(from, k);
    if (f == std::string::npos || (count >= 0 && done >= count)) break;
    out += s.substr(k, f - k) + to;
    k = f + from.size();
    ++done;
  }
  return out + s.substr(k);
}

namespace {

List split(const std::string& s, const Value& sep, int64_t maxsplit) {
  List out;
  if (!sep.is_string()) {  // runs of whitespace, no empty strings
    size_t k = 0, len = 0;
    while (k < s.size()) {
      while (k < s.size() && py_space(code_point(s, k, len))) k += len;
      if (k >= s.size()) break;
      size_t e = k;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        out.push_back(Value::string(py_strip(s.substr(k), Value::undefined(), false, true)));
        break;
      }
      while (e < s.size() && !py_space(code_point(s, e, len))) e += len;
      out.push_back(Value::string(s.substr(k, e - k)));
      k = e;
    }
    return out;
  }
  size_t k = 0;
  while (true) {
    const size_t f = sep.s.empty() ? std::string::npos : s.find(sep.s, k);
    if (f == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit)) break;
    out.push_back(Value::string(s.substr(k, f - k)));
    k = f + sep.s.size();
  }
  out.push_back(Value::string(s.substr(k)));
  return out;
}

bool affix(const std::string& s, const Value& x, bool prefix, int line) {
  auto one = [&](const Value& p) {
    if (!p.is_string()) fail(line, "startswith/endswith take a string or a tuple of strings");
    if (p.s.size() > s.size()) return false;
    return prefix ? s.compare(0, p.s.size(), p.s) == 0 : s.compare(s.size() - p.s.size(), p.s.size(), p.s) == 0;
  };
  if (x.is_list()) return std::any_of(x.list->begin(), x.list->end(), one);
  return one(x);
}

// str.format with {} / {0} / {name} fields.
std::string format(const std::string& f, const Args& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t k = 0; k < f.size(); ++k) {
    if (f[k] == '{' && k + 1 < f.size() && f[k + 1] == '{') { out += '{'; ++k; continue; }
    if (f[k] == '}' && k + 1 < f.size() && f[k + 1] == '}') { out += '}'; ++k; continue; }
    if (f[k] != '{') { out += f[k]; continue; }
    const size_t e = f.find('}', k);
    if (e == std::string::npos) fail(a.line, "a '{' without '}' in a format string");
    const std::string field = f.substr(k + 1, e - k - 1);
    Value v;
    if (field.empty()) v = a.get(auto_index++, "\x01");
    else if (std::isdigit(static_cast<unsigned char>(field[0]))) v = a.get(std::stoul(field), "\x01");
    else v = a.get(SIZE_MAX, field);
    if (v.is_undefined()) fail(a.line, "format string field '{" + field + "}' has no argument");
    out += to_str(v);
    k = e;
  }
  return out;
}

int64_t int_arg(const Value& v, int64_t fallback) {
  if (v.kind == K::kInt) return v.i;
  if (v.kind == K::kBool) return v.b;
  return fallback;
}

Value bound(std::function<Value(Args&)> f) { return Value::function(std::move(f)); }

Value string_method(const std::string& s, const std::string& name) {
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return bound([s, name](Args& a) {
      return Value::string(py_strip(s, a.get(0, "chars"), name != "rstrip", name != "lstrip"));
    });
  if (name == "split") return bound([s](Args& a) { return Value::make_list(split(s, a.get(0, "sep"), int_arg(a.get(1, "maxsplit"), -1))); });
  if (name == "startswith" || name == "endswith")
    return bound([s, name](Args& a) { return Value::boolean(affix(s, a.get(0, "prefix"), name == "startswith", a.line)); });
  if (name == "upper") return bound([s](Args&) { return Value::string(ascii_map(s, ::toupper)); });
  if (name == "lower") return bound([s](Args&) { return Value::string(ascii_map(s, ::tolower)); });
  if (name == "title") return bound([s](Args&) { return Value::string(title(s)); });
  if (name == "capitalize") return bound([s](Args&) { return Value::string(capitalize(s)); });
  if (name == "replace")
    return bound([s](Args& a) {
      return Value::string(replace_all(s, to_str(a.get(0, "old")), to_str(a.get(1, "new")), int_arg(a.get(2, "count"), -1)));
    });
  if (name == "format") return bound([s](Args& a) { return Value::string(format(s, a)); });
  if (name == "find") return bound([s](Args& a) {
      const size_t f = s.find(to_str(a.get(0, "sub")));
      return Value::integer(f == std::string::npos ? -1 : static_cast<int64_t>(iterate(Value::string(s.substr(0, f)), 0).size()));
    });
  if (name == "count") return bound([s](Args& a) {
      const std::string sub = to_str(a.get(0, "sub"));
      int64_t n = 0;
      if (sub.empty()) return Value::integer(static_cast<int64_t>(iterate(Value::string(s), 0).size()) + 1);
      for (size_t k = s.find(sub); k != std::string::npos; k = s.find(sub, k + sub.size())) ++n;
      return Value::integer(n);
    });
  if (name == "join") return bound([s](Args& a) {
      std::string out;
      const List items = iterate(a.get(0, "iterable"), a.line);
      for (size_t k = 0; k < items.size(); ++k) out += (k ? s : "") + to_str(items[k]);
      return Value::string(out);
    });
  if (name == "splitlines") return bound([s](Args&) {
      List out;
      for (const auto& l : split(s, Value::string("\n"), -1)) out.push_back(l);
      if (!out.empty() && out.back().s.empty()) out.pop_back();
      return Value::make_list(std::move(out));
    });
  if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum")
    return bound([s, name](Args&) {
      if (s.empty()) return Value::boolean(false);
      for (unsigned char c : s) {
        const bool ok = name == "isdigit" ? std::isdigit(c) : name == "isspace" ? std::isspace(c)
                        : name == "isalpha" ? std::isalpha(c) : std::isalnum(c);
        if (!ok) return Value::boolean(false);
      }
      return Value::boolean(true);
    });
  return Value::undefined(name);
}

Value pairs(const Value& d) {
  List out;
  for (const auto& [k, v] : *d.dict) out.push_back(Value::make_tuple({Value::string(k), v}));
  return Value::make_list(std::move(out));
}

Value dict_method(const Value& d, const std::string& name) {
  if (name == "get")
    return bound([d](Args& a) {
      const Value key = a.get(0, "key");
      const Value* v = key.is_string() ? d.find(key.s) : nullptr;
      return v ? *v : a.get(1, "default", Value::none());
    });
  if (name == "items") return bound([d](Args&) { return pairs(d); });
  if (name == "keys") return bound([d](Args&) { return Value::make_list(iterate(d, 0)); });
  if (name == "values") return bound([d](Args&) {
      List out;
      for (const auto& kv : *d.dict) out.push_back(kv.second);
      return Value::make_list(std::move(out));
    });
  return Value::undefined();
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name, int line) {
  switch (obj.kind) {
    case K::kUndefined:
      fail(line, "'" + (obj.s.empty() ? std::string("value") : obj.s) + "' is undefined (reading its attribute '" + name + "')");
    case K::kString: return string_method(obj.s, name);
    case K::kDict: {
      if (!obj.is_namespace) {
        Value m = dict_method(obj, name);
        if (!m.is_undefined()) return m;
      }
      const Value* v = obj.find(name);
      return v ? *v : Value::undefined(name);
    }
    case K::kList:
      if (name == "append" || name == "pop" || name == "insert" || name == "extend" || name == "remove" ||
          name == "clear" || name == "sort" || name == "reverse")
        fail(line, "access to attribute '" + name + "' of 'list' object is unsafe (templates cannot modify lists)");
      if (name == "index" || name == "count") {
        const Value l = obj;
        return bound([l, name](Args& a) {
          const Value x = a.get(0, "value");
          int64_t n = 0;
          for (size_t k = 0; k < l.list->size(); ++k) {
            if (!equal((*l.list)[k], x)) continue;
            if (name == "index") return Value::integer(static_cast<int64_t>(k));
            ++n;
          }
          if (name == "index") fail(a.line, repr(x) + " is not in list");
          return Value::integer(n);
        });
      }
      return Value::undefined(name);
    default: return Value::undefined(name);
  }
}

Value get_item(const Value& obj, const Value& key, int line) {
  switch (obj.kind) {
    case K::kUndefined:
      fail(line, "'" + (obj.s.empty() ? std::string("value") : obj.s) + "' is undefined (reading its item " + repr(key) + ")");
    case K::kList:
    case K::kString: {
      if (key.kind != K::kInt && key.kind != K::kBool) return key.is_string() ? get_attr(obj, key.s, line) : Value::undefined();
      const List items = obj.is_list() ? *obj.list : iterate(obj, line);
      int64_t k = key.kind == K::kBool ? key.b : key.i;
      if (k < 0) k += static_cast<int64_t>(items.size());
      if (k < 0 || k >= static_cast<int64_t>(items.size())) return Value::undefined(repr(key));
      return items[static_cast<size_t>(k)];
    }
    case K::kDict: {
      if (key.is_string()) {
        const Value* v = obj.find(key.s);
        if (v) return *v;
        return get_attr(obj, key.s, line);
      }
      const Value* v = obj.find(to_str(key));
      return v ? *v : Value::undefined(repr(key));
    }
    default: return Value::undefined(repr(key));
  }
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line) {
  if (obj.is_undefined()) fail(line, "'" + (obj.s.empty() ? std::string("value") : obj.s) + "' is undefined (slicing it)");
  if (!obj.is_list() && !obj.is_string()) fail(line, "'" + type_name(obj) + "' object is not subscriptable");
  const List items = obj.is_list() ? *obj.list : iterate(obj, line);
  const int64_t n = static_cast<int64_t>(items.size());
  const int64_t st = step.is_none() ? 1 : int_arg(step, 1);
  if (st == 0) fail(line, "slice step cannot be zero");
  auto clamp = [&](const Value& v, int64_t dflt) {
    if (v.is_none()) return dflt;
    int64_t k = int_arg(v, 0);
    if (k < 0) k += n;
    if (st > 0) return std::clamp<int64_t>(k, 0, n);
    return std::clamp<int64_t>(k, -1, n - 1);
  };
  const int64_t b = clamp(start, st > 0 ? 0 : n - 1), e = clamp(stop, st > 0 ? n : -1);
  List out;
  for (int64_t k = b; st > 0 ? k < e : k > e; k += st) out.push_back(items[static_cast<size_t>(k)]);
  if (obj.is_list()) return Value::make_list(std::move(out));
  std::string s;
  for (const auto& c : out) s += c.s;
  return Value::string(s);
}

// ------------------------------------------------------------------ tests
bool apply_test(Evaluator& ev, const std::string& name, const Value& v, Args& a) {
  (void)ev;
  const Value arg = a.get(0, "value");
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict() && !v.is_namespace;
  if (name == "iterable") return v.is_list() || v.is_string() || (v.is_dict() && !v.is_namespace) || v.is_undefined();
  if (name == "sequence") return v.is_list() || v.is_string() || (v.is_dict() && !v.is_namespace);
  if (name == "number") return v.is_number();
  if (name == "integer") return v.kind == K::kInt;
  if (name == "float") return v.kind == K::kFloat;
  if (name == "boolean") return v.kind == K::kBool;
  if (name == "true") return v.kind == K::kBool && v.b;
  if (name == "false") return v.kind == K::kBool && !v.b;
  if (name == "callable") return v.kind == K::kFunction;
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return equal(v, arg);
  if (name == "ne" || name == "!=") return !equal(v, arg);
  if (name == "in") {
    if (arg.is_string()) return v.is_string() && arg.s.find(v.s) != std::string::npos;
    for (const auto& e : iterate(arg, a.line))
      if (equal(e, v)) return true;
    return false;
  }
  if (name == "lower") return v.is_string() && ascii_map(v.s, ::tolower) == v.s;
  if (name == "upper") return v.is_string() && ascii_map(v.s, ::toupper) == v.s;
  if (name == "even" || name == "odd") {
    if (v.kind != K::kInt) fail(a.line, "the '" + name + "' test needs an integer");
    return (v.i % 2 == 0) == (name == "even");
  }
  if (name == "divisibleby") return v.kind == K::kInt && arg.kind == K::kInt && arg.i != 0 && v.i % arg.i == 0;
  if (name == "gt" || name == "ge" || name == "lt" || name == "le" || name == ">" || name == ">=" || name == "<" || name == "<=") {
    if (!(v.is_number() && arg.is_number()) && !(v.is_string() && arg.is_string()))
      fail(a.line, "the '" + name + "' test compares numbers or strings");
    const bool lt = v.is_number() ? v.as_double() < arg.as_double() : v.s < arg.s;
    const bool eq = equal(v, arg);
    if (name == "gt" || name == ">") return !lt && !eq;
    if (name == "ge" || name == ">=") return !lt;
    if (name == "lt" || name == "<") return lt;
    return lt || eq;
  }
  fail(a.line, "no test named '" + name + "'");
}

}  // namespace cada::text::jinja
