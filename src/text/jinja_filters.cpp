// Jinja filters: jinja2's built-in filters that chat templates use, and transformers' tojson.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

#include "jinja_internal.h"

namespace cada::text::jinja {
namespace {

using K = Value::Kind;

// jinja2's make_attrgetter: "a.b" looks up item a, then b (items first, then attributes).
Value attr_path(const Value& v, const std::string& path, int line) {
  Value cur = v;
  size_t k = 0;
  while (true) {
    const size_t dot = path.find('.', k);
    const std::string part = path.substr(k, dot == std::string::npos ? std::string::npos : dot - k);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    if (cur.is_undefined()) return cur;
    cur = get_item(cur, digits ? Value::integer(std::stoll(part)) : Value::string(part), line);
    if (dot == std::string::npos) return cur;
    k = dot + 1;
  }
}

// select / reject / selectattr / rejectattr.
Value select(Evaluator& ev, const Value& seq, Args& a, bool by_attr, bool keep) {
  size_t first = 0;
  std::string attr;
  if (by_attr) {
    if (a.pos.empty() || !a.pos[0].is_string()) fail(a.line, "selectattr/rejectattr need an attribute name");
    attr = a.pos[0].s;
    first = 1;
  }
  std::string test;
  Args targs;
  targs.line = a.line;
  if (a.pos.size() > first) {
    test = to_str(a.pos[first]);
    targs.pos.assign(a.pos.begin() + static_cast<long>(first) + 1, a.pos.end());
  }
  List out;
  for (const auto& item : iterate(seq, a.line)) {
    const Value v = by_attr ? attr_path(item, attr, a.line) : item;
    const bool pass = test.empty() ? truthy(v) : apply_test(ev, test, v, targs);
    if (pass == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

Value map(Evaluator& ev, const Value& seq, Args& a) {
  List out;
  const Value attr = a.get(SIZE_MAX, "attribute");
  if (!attr.is_undefined()) {
    const Value dflt = a.get(SIZE_MAX, "default");
    for (const auto& item : iterate(seq, a.line)) {
      Value v = attr_path(item, to_str(attr), a.line);
      out.push_back(v.is_undefined() && !dflt.is_undefined() ? dflt : v);
    }
    return Value::make_list(std::move(out));
  }
  if (a.pos.empty()) fail(a.line, "map needs a filter name or attribute=");
  const std::string filter = to_str(a.pos[0]);
  Args fargs;
  fargs.line = a.line;
  fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
  fargs.kw = a.kw;
  for (const auto& item : iterate(seq, a.line)) out.push_back(apply_filter(ev, filter, item, fargs));
  return Value::make_list(std::move(out));
}

Value tojson(const Value& v, Args& a) {
  const Value ind = a.get(0, "indent", Value::none());
  const int indent = ind.kind == K::kInt ? static_cast<int>(ind.i) : -1;
  std::string item_sep = indent >= 0 ? "," : ", ", key_sep = ": ";
  const Value seps = a.get(SIZE_MAX, "separators", Value::none());
  if (seps.is_list() && seps.list->size() == 2) {
    item_sep = to_str((*seps.list)[0]);
    key_sep = to_str((*seps.list)[1]);
  }
  if (v.is_undefined()) fail(a.line, "Object of type Undefined is not JSON serializable");
  return Value::string(to_json(v, indent, item_sep, key_sep, truthy(a.get(SIZE_MAX, "sort_keys")), a.line));
}

// jinja2's indent(width=4, first=False, blank=False).
std::string indent(const std::string& text, const Value& width, bool first, bool blank) {
  const std::string pad = width.is_string() ? width.s : std::string(static_cast<size_t>(width.kind == K::kInt ? width.i : 4), ' ');
  std::string s = text + "\n";
  List lines;
  size_t k = 0;
  while (k < s.size()) {  // str.splitlines on "\n"
    const size_t e = s.find('\n', k);
    lines.push_back(Value::string(s.substr(k, e - k)));
    k = e + 1;
  }
  std::string rv;
  if (blank) {
    for (size_t j = 0; j < lines.size(); ++j) rv += (j ? "\n" + pad : "") + lines[j].s;
  } else {
    rv = lines.empty() ? "" : lines[0].s;
    for (size_t j = 1; j < lines.size(); ++j) rv += "\n" + (lines[j].s.empty() ? "" : pad + lines[j].s);
  }
  return first ? pad + rv : rv;
}

Value to_int(const Value& v, Args& a) {
  const Value dflt = a.get(0, "default", Value::integer(0));
  switch (v.kind) {
    case K::kInt: return v;
    case K::kBool: return Value::integer(v.b);
    case K::kFloat: return Value::integer(static_cast<int64_t>(v.f));
    case K::kString: {
      const std::string s = py_strip(v.s, Value::undefined(), true, true);
      char* end = nullptr;
      const long long n = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && end && *end == '\0') return Value::integer(n);
      const double d = std::strtod(s.c_str(), &end);
      if (!s.empty() && end && *end == '\0') return Value::integer(static_cast<int64_t>(d));
      return dflt;
    }
    default: return dflt;
  }
}

Value sorted(const Value& seq, Args& a, int line) {
  List items = iterate(seq, line);
  const bool rev = truthy(a.get(0, "reverse"));
  const bool cs = truthy(a.get(1, "case_sensitive"));
  const Value attr = a.get(2, "attribute");
  auto key = [&](const Value& v) {
    Value k = attr.is_undefined() ? v : attr_path(v, to_str(attr), line);
    if (!cs && k.is_string()) k.s = ascii_map(k.s, ::tolower);
    return k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    const Value kx = key(x), ky = key(y);
    const bool lt = kx.is_number() && ky.is_number() ? kx.as_double() < ky.as_double()
                    : kx.is_string() && ky.is_string() ? kx.s < ky.s
                    : (fail(line, "sort compares numbers or strings"), false);
    return rev ? (!lt && !equal(kx, ky)) : lt;
  });
  return Value::make_list(std::move(items));
}

Value dictsort(const Value& d, Args& a, int line) {
  if (!d.is_dict()) fail(line, "dictsort needs a mapping, not " + type_name(d));
  const bool cs = truthy(a.get(0, "case_sensitive"));
  const bool by_value = to_str(a.get(1, "by", Value::string("key"))) == "value";
  const bool rev = truthy(a.get(2, "reverse"));
  Dict items = *d.dict;
  std::stable_sort(items.begin(), items.end(), [&](const auto& x, const auto& y) {
    Value kx = by_value ? x.second : Value::string(x.first), ky = by_value ? y.second : Value::string(y.first);
    if (!cs && kx.is_string()) kx.s = ascii_map(kx.s, ::tolower);
    if (!cs && ky.is_string()) ky.s = ascii_map(ky.s, ::tolower);
    const bool lt = kx.is_number() && ky.is_number() ? kx.as_double() < ky.as_double() : to_str(kx) < to_str(ky);
    return rev ? to_str(ky) < to_str(kx) : lt;
  });
  List out;
  for (const auto& [k, v] : items) out.push_back(Value::make_tuple({Value::string(k), v}));
  return Value::make_list(std::move(out));
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value length(const Value& v, int line) {
  if (v.is_undefined()) return Value::integer(0);
  if (v.is_dict()) return Value::integer(static_cast<int64_t>(v.dict->size()));
  return Value::integer(static_cast<int64_t>(iterate(v, line).size()));
}

Value extreme(const Value& v, int line, bool want_max) {
  const List items = iterate(v, line);
  if (items.empty()) return Value::undefined("min/max of an empty sequence");
  Value best = items[0];
  for (const auto& x : items) {
    const bool lt = x.is_number() && best.is_number() ? x.as_double() < best.as_double() : to_str(x) < to_str(best);
    const bool gt = x.is_number() && best.is_number() ? x.as_double() > best.as_double() : to_str(x) > to_str(best);
    if (want_max ? gt : lt) best = x;
  }
  return best;
}

}  // namespace

Value apply_filter(Evaluator& ev, const std::string& name, const Value& v, Args& a) {
  const int line = a.line;
  auto str = [&] { return to_str(v); };
  if (name == "tojson") return tojson(v, a);
  if (name == "trim") return Value::string(py_strip(str(), a.get(0, "chars"), true, true));
  if (name == "length" || name == "count") return length(v, line);
  if (name == "string") return Value::string(str());
  if (name == "safe") return v;
  if (name == "e" || name == "escape") return Value::string(html_escape(str()));
  if (name == "upper") return Value::string(ascii_map(str(), ::toupper));
  if (name == "lower") return Value::string(ascii_map(str(), ::tolower));
  if (name == "capitalize") return Value::string(capitalize(str()));
  if (name == "title") return Value::string(title(str()));
  if (name == "int") return to_int(v, a);
  if (name == "float") {
    if (v.is_number()) return Value::number(v.as_double());
    char* end = nullptr;
    const std::string s = py_strip(str(), Value::undefined(), true, true);
    const double d = std::strtod(s.c_str(), &end);
    return !s.empty() && *end == '\0' ? Value::number(d) : a.get(0, "default", Value::number(0));
  }
  if (name == "abs") return v.kind == K::kFloat ? Value::number(std::fabs(v.f)) : Value::integer(std::llabs(v.i));
  if (name == "default" || name == "d") {
    const bool boolean = truthy(a.get(1, "boolean"));
    const bool use_default = v.is_undefined() || (boolean && !truthy(v));
    return use_default ? a.get(0, "default_value", Value::string("")) : v;
  }
  if (name == "replace") {
    if (v.is_undefined()) return Value::string("");
    return Value::string(replace_all(str(), to_str(a.get(0, "old")), to_str(a.get(1, "new")),
                                     a.get(2, "count").kind == K::kInt ? a.get(2, "count").i : -1));
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::make_list();
    if (!v.is_dict()) fail(line, "the items filter needs a mapping, not " + type_name(v));
    return get_attr(v, "items", line).fn->operator()(a);
  }
  if (name == "list") return Value::make_list(iterate(v, line));
  if (name == "first" || name == "last") {
    const List items = iterate(v, line);
    if (items.empty()) return Value::undefined(name);
    return name == "first" ? items.front() : items.back();
  }
  if (name == "join") {
    const std::string sep = to_str(a.get(0, "d", Value::string("")));
    const Value attr = a.get(1, "attribute");
    std::string out;
    const List items = iterate(v, line);
    for (size_t k = 0; k < items.size(); ++k)
      out += (k ? sep : "") + to_str(attr.is_undefined() ? items[k] : attr_path(items[k], to_str(attr), line));
    return Value::string(out);
  }
  if (name == "select" || name == "reject") return select(ev, v, a, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") return select(ev, v, a, true, name == "selectattr");
  if (name == "map") return map(ev, v, a);
  if (name == "dictsort") return dictsort(v, a, line);
  if (name == "sort") return sorted(v, a, line);
  if (name == "reverse") {
    if (v.is_string()) return slice(v, Value::none(), Value::none(), Value::integer(-1), line);
    List items = iterate(v, line);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "unique") {
    List out;
    for (const auto& x : iterate(v, line))
      if (std::none_of(out.begin(), out.end(), [&](const Value& y) { return equal(x, y); })) out.push_back(x);
    return Value::make_list(std::move(out));
  }
  if (name == "min" || name == "max") return extreme(v, line, name == "max");
  if (name == "sum") {
    Value total = a.get(1, "start", Value::integer(0));
    for (const auto& x : iterate(v, line)) {
      if (!x.is_number()) fail(line, "sum needs numbers, not " + type_name(x));
      total = (total.kind == K::kFloat || x.kind == K::kFloat) ? Value::number(total.as_double() + x.as_double())
                                                                : Value::integer(total.i + (x.kind == K::kBool ? x.b : x.i));
    }
    return total;
  }
  if (name == "indent")
    return Value::string(indent(str(), a.get(0, "width", Value::integer(4)), truthy(a.get(1, "first")), truthy(a.get(2, "blank"))));
  if (name == "wordcount") {
    int64_t n = 0;
    bool in_word = false;
    for (unsigned char c : str()) {
      const bool w = std::isalnum(c) || c == '_' || c >= 0x80;
      if (w && !in_word) ++n;
      in_word = w;
    }
    return Value::integer(n);
  }
  if (name == "round") {
    const int64_t prec = a.get(0, "precision").kind == K::kInt ? a.get(0, "precision").i : 0;
    const double scale = std::pow(10.0, static_cast<double>(prec));
    return Value::number(std::nearbyint(v.as_double() * scale) / scale);
  }
  if (name == "batch" || name == "center" || name == "truncate" || name == "format" || name == "xmlattr" ||
      name == "urlencode" || name == "filesizeformat" || name == "pprint" || name == "striptags")
    fail(line, "the '" + name + "' filter is not supported");
  fail(line, "no filter named '" + name + "'");
}

}  // namespace cada::text::jinja
