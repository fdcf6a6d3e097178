// Jinja evaluator: statements, expressions and the globals transformers provides.
#include <cmath>
#include <ctime>
#include <string>

#include "cada/util/error.h"
#include "jinja_internal.h"

namespace cada::text::jinja {
namespace {

using N = Node::Type;
using K = Value::Kind;

Value make_range(Args& a) {
  auto num = [&](size_t k) {
    const Value& v = a.pos[k];
    if (v.kind != K::kInt && v.kind != K::kBool) fail(a.line, "range() takes integers, not " + type_name(v));
    return v.kind == K::kBool ? int64_t(v.b) : v.i;
  };
  if (a.pos.empty() || a.pos.size() > 3) fail(a.line, "range() takes 1 to 3 arguments");
  int64_t start = 0, stop, step = 1;
  if (a.pos.size() == 1) {
    stop = num(0);
  } else {
    start = num(0);
    stop = num(1);
    if (a.pos.size() == 3) step = num(2);
  }
  if (step == 0) fail(a.line, "range() step must not be zero");
  // jinja2's sandbox (which transformers uses) refuses ranges over 100000 items
  const double n = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step));
  if (n > 100000) fail(a.line, "range too big (the sandbox allows at most 100000 items)");
  List out;
  for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) out.push_back(Value::integer(k));
  return Value::make_list(std::move(out));
}

Value make_namespace(Args& a, bool is_namespace) {
  Value v = Value::make_dict();
  v.is_namespace = is_namespace;
  for (const auto& p : a.pos) {
    if (!p.is_dict()) fail(a.line, "namespace() and dict() take keyword arguments or a dict");
    for (const auto& kv : *p.dict) v.dict->push_back(kv);
  }
  for (const auto& kv : a.kw) {
    bool found = false;
    for (auto& [k, x] : *v.dict)
      if (k == kv.first) { x = kv.second; found = true; }
    if (!found) v.dict->push_back(kv);
  }
  return v;
}

Value strftime_now(Args& a) {
  const Value fmt = a.get(0, "format");
  if (!fmt.is_string()) fail(a.line, "strftime_now() takes a format string");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[256];
  const size_t n = std::strftime(buf, sizeof buf, fmt.s.c_str(), &tm);
  return Value::string(std::string(buf, n));
}

int64_t as_int(const Value& v) { return v.kind == K::kBool ? int64_t(v.b) : v.i; }

Value arithmetic(const std::string& op, const Value& a, const Value& b, int line) {
  const bool ints = (a.kind == K::kInt || a.kind == K::kBool) && (b.kind == K::kInt || b.kind == K::kBool);
  if (op == "/") {
    if (b.as_double() == 0) fail(line, "division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (b.as_double() == 0) fail(line, op == "%" ? "modulo by zero" : "division by zero");
    if (ints) {
      const int64_t x = as_int(a), y = as_int(b);
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return op == "//" ? Value::integer(q) : Value::integer(x - q * y);
    }
    const double q = std::floor(a.as_double() / b.as_double());
    return op == "//" ? Value::number(q) : Value::number(a.as_double() - q * b.as_double());
  }
  if (op == "**") {
    if (ints && as_int(b) >= 0) {
      int64_t r = 1;
      for (int64_t k = 0; k < as_int(b); ++k) r *= as_int(a);
      return Value::integer(r);
    }
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  if (ints) {
    const int64_t x = as_int(a), y = as_int(b);
    return Value::integer(op == "+" ? x + y : op == "-" ? x - y : x * y);
  }
  const double x = a.as_double(), y = b.as_double();
  return Value::number(op == "+" ? x + y : op == "-" ? x - y : x * y);
}

Value repeat(const Value& seq, int64_t n, int line) {
  const double size = static_cast<double>(seq.is_string() ? seq.s.size() : seq.list->size()) * static_cast<double>(n);
  if (size > 1e8) fail(line, "a repeated string or list would hold over 100 million items");
  if (seq.is_string()) {
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += seq.s;
    return Value::string(out);
  }
  List out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return Value::make_list(std::move(out));
}

// <, <=, >, >= on numbers, strings or lists, as Python orders them.
int compare(const Value& a, const Value& b, int line) {
  if (a.is_number() && b.is_number()) return a.as_double() < b.as_double() ? -1 : a.as_double() > b.as_double();
  if (a.is_string() && b.is_string()) return a.s < b.s ? -1 : a.s > b.s;
  if (a.is_list() && b.is_list()) {
    for (size_t k = 0; k < a.list->size() && k < b.list->size(); ++k) {
      if (equal((*a.list)[k], (*b.list)[k])) continue;
      return compare((*a.list)[k], (*b.list)[k], line);
    }
    return a.list->size() < b.list->size() ? -1 : a.list->size() > b.list->size();
  }
  fail(line, "'<' is not supported between '" + type_name(a) + "' and '" + type_name(b) + "'");
}

bool contains(const Value& container, const Value& x, int line) {
  switch (container.kind) {
    case K::kString:
      if (!x.is_string()) fail(line, "'in <string>' requires a string on the left, not " + type_name(x));
      return container.s.find(x.s) != std::string::npos;
    case K::kList:
      for (const auto& e : *container.list)
        if (equal(e, x)) return true;
      return false;
    case K::kDict: return x.is_string() && container.find(x.s) != nullptr;
    case K::kUndefined: return false;
    default: fail(line, "argument of type '" + type_name(container) + "' is not iterable");
  }
}

[[noreturn]] void undefined_error(const Value& v, int line) {
  fail(line, "'" + (v.s.empty() ? std::string("value") : v.s) + "' is undefined");
}

}  // namespace

Evaluator::Evaluator(const nlohmann::ordered_json& context) {
  std::map<std::string, Value> globals;
  globals["range"] = Value::function(make_range);
  globals["namespace"] = Value::function([](Args& a) { return make_namespace(a, true); });
  globals["dict"] = Value::function([](Args& a) { return make_namespace(a, false); });
  globals["strftime_now"] = Value::function(strftime_now);
  globals["raise_exception"] = Value::function([](Args& a) -> Value { fail(a.line, to_str(a.get(0, "message"))); });
  scopes_.push_back(std::move(globals));
  std::map<std::string, Value> vars;
  if (context.is_object())
    for (const auto& [k, v] : context.items()) vars[k] = from_json(v);
  scopes_.push_back(std::move(vars));
}

std::string Evaluator::run(const Node& root) {
  std::string out;
  try {
    exec_body(root.kids, out);
  } catch (const LoopSignal&) {
    fail(root.line, "break or continue outside a loop");
  }
  return out;
}

Value Evaluator::lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    auto f = it->find(name);
    if (f != it->end()) return f->second;
  }
  return Value::undefined(name);
}

void Evaluator::assign(const std::string& name, Value v) { scopes_.back()[name] = std::move(v); }

void Evaluator::exec_body(const std::vector<NodePtr>& body, std::string& out) {
  for (const auto& n : body) exec(*n, out);
}

void Evaluator::exec(const Node& n, std::string& out) {
  switch (n.type) {
    case N::kText: out += n.value.s; return;
    case N::kOutput: out += to_str(eval(*n.kids[0])); return;
    case N::kBody: exec_body(n.kids, out); return;
    case N::kIf:
      if (truthy(eval(*n.kids[0]))) exec_body(n.kids[1]->kids, out);
      else exec_body(n.else_kids, out);
      return;
    case N::kFor: exec_for(n, out); return;
    case N::kSet:
    case N::kSetBlock: exec_set(n, out); return;
    case N::kMacro: assign(n.name, make_macro(n)); return;
    case N::kBreak: throw LoopSignal{true};
    case N::kContinue: throw LoopSignal{false};
    default: fail(n.line, "an expression where a statement was expected");
  }
}

void Evaluator::exec_for(const Node& n, std::string& out) {
  const Value seq = eval(*n.kids[0]);
  List items = iterate(seq, n.line);
  scopes_.emplace_back();
  auto bind = [&](const Value& item) {
    if (n.kw_names.size() == 1) {
      assign(n.kw_names[0], item);
      return;
    }
    List parts = iterate(item, n.line);
    if (parts.size() != n.kw_names.size())
      fail(n.line, "cannot unpack " + std::to_string(parts.size()) + " values into " +
                       std::to_string(n.kw_names.size()) + " loop variables");
    for (size_t k = 0; k < parts.size(); ++k) assign(n.kw_names[k], parts[k]);
  };
  if (n.kids[1]) {  // {% for x in xs if cond %}: filter first, so loop.length counts the kept items
    List kept;
    for (const auto& item : items) {
      bind(item);
      if (truthy(eval(*n.kids[1]))) kept.push_back(item);
    }
    items = std::move(kept);
  }
  const int64_t len = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < len; ++k) {
    bind(items[k]);
    Value loop = Value::make_dict({{"index", Value::integer(k + 1)},
                                   {"index0", Value::integer(k)},
                                   {"revindex", Value::integer(len - k)},
                                   {"revindex0", Value::integer(len - k - 1)},
                                   {"first", Value::boolean(k == 0)},
                                   {"last", Value::boolean(k == len - 1)},
                                   {"length", Value::integer(len)},
                                   {"depth", Value::integer(1)},
                                   {"depth0", Value::integer(0)},
                                   {"previtem", k > 0 ? items[k - 1] : Value::undefined("loop.previtem")},
                                   {"nextitem", k + 1 < len ? items[k + 1] : Value::undefined("loop.nextitem")}});
    loop.is_namespace = true;  // an object with attributes, not a mapping
    loop.dict->emplace_back("cycle", Value::function([k](Args& a) -> Value {
                              if (a.pos.empty()) fail(a.line, "loop.cycle() needs at least one argument");
                              return a.pos[static_cast<size_t>(k) % a.pos.size()];
                            }));
    assign("loop", loop);
    try {
      exec_body(n.kids[2]->kids, out);
    } catch (const LoopSignal& s) {
      if (s.is_break) break;
    }
  }
  scopes_.pop_back();
  if (len == 0) exec_body(n.else_kids, out);
}

void Evaluator::exec_set(const Node& n, std::string& out) {
  (void)out;
  if (n.type == N::kSetBlock) {
    std::string body;
    exec_body(n.kids, body);
    assign(n.name, Value::string(body));
    return;
  }
  const Value v = eval(*n.kids[0]);
  std::vector<Value> values{v};
  if (n.kw_names.size() > 1) {
    values = iterate(v, n.line);
    if (values.size() != n.kw_names.size())
      fail(n.line, "cannot unpack " + std::to_string(values.size()) + " values into " +
                       std::to_string(n.kw_names.size()) + " names");
  }
  for (size_t k = 0; k < n.kw_names.size(); ++k) {
    const std::string& target = n.kw_names[k];
    const size_t dot = target.find('.');
    if (dot == std::string::npos) {
      assign(target, values[k]);
      continue;
    }
    Value obj = lookup(target.substr(0, dot));
    if (!obj.is_namespace || !obj.dict) fail(n.line, "cannot assign attribute on non-namespace object '" + target.substr(0, dot) + "'");
    const std::string attr = target.substr(dot + 1);
    bool found = false;
    for (auto& [key, x] : *obj.dict)
      if (key == attr) { x = values[k]; found = true; }
    if (!found) obj.dict->emplace_back(attr, values[k]);
  }
}

Value Evaluator::make_macro(const Node& n) {
  const Node* def = &n;
  return Value::function([this, def](Args& a) -> Value {
    if (a.pos.size() > def->kw_names.size())
      fail(a.line, "macro '" + def->name + "' takes at most " + std::to_string(def->kw_names.size()) + " arguments");
    if (scopes_.size() > 100) fail(a.line, "macro '" + def->name + "' recurses more than 100 calls deep");
    scopes_.emplace_back();
    for (size_t k = 0; k < def->kw_names.size(); ++k) {
      Value v = a.get(k, def->kw_names[k]);
      if (v.is_undefined() && k >= a.pos.size() && def->else_kids[k]) v = eval(*def->else_kids[k]);
      if (v.is_undefined()) v = Value::undefined(def->kw_names[k]);
      assign(def->kw_names[k], v);
    }
    std::string out;
    try {
      exec_body(def->kids, out);
    } catch (...) {
      scopes_.pop_back();
      throw;
    }
    scopes_.pop_back();
    return Value::string(out);
  });
}

Args Evaluator::eval_args(const Node& n, size_t first) {
  Args a;
  a.line = n.line;
  const size_t n_kw = n.kw_names.size();
  const size_t n_pos = n.kids.size() - first - n_kw;
  for (size_t k = 0; k < n_pos; ++k) a.pos.push_back(eval(*n.kids[first + k]));
  for (size_t k = 0; k < n_kw; ++k) a.kw.emplace_back(n.kw_names[k], eval(*n.kids[first + n_pos + k]));
  return a;
}

Value Evaluator::call(const Value& fn, Args& args, int line) {
  if (fn.is_undefined()) undefined_error(fn, line);
  if (fn.kind != K::kFunction) fail(line, "'" + type_name(fn) + "' object is not callable");
  args.line = line;
  return (*fn.fn)(args);
}

Value Evaluator::eval_call(const Node& n) {
  const Value fn = eval(*n.kids[0]);
  Args a = eval_args(n, 1);
  return call(fn, a, n.line);
}

Value Evaluator::eval_binary(const Node& n) {
  const std::string& op = n.name;
  const Value a = eval(*n.kids[0]);
  const Value b = eval(*n.kids[1]);
  if (op == "==") return Value::boolean(equal(a, b));
  if (op == "!=") return Value::boolean(!equal(a, b));
  if (op == "in") return Value::boolean(contains(b, a, n.line));
  if (op == "not in") return Value::boolean(!contains(b, a, n.line));
  if (op == "<" || op == ">" || op == "<=" || op == ">=") {
    const int c = compare(a, b, n.line);
    return Value::boolean(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0);
  }
  if (a.is_undefined()) undefined_error(a, n.line);
  if (b.is_undefined()) undefined_error(b, n.line);
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b, n.line);
  if (op == "+" && a.is_string() && b.is_string()) return Value::string(a.s + b.s);
  if (op == "+" && a.is_list() && b.is_list()) {
    List out = *a.list;
    out.insert(out.end(), b.list->begin(), b.list->end());
    return Value::make_list(std::move(out));
  }
  if (op == "*" && (a.is_string() || a.is_list()) && (b.kind == K::kInt || b.kind == K::kBool)) return repeat(a, as_int(b), n.line);
  if (op == "*" && (b.is_string() || b.is_list()) && (a.kind == K::kInt || a.kind == K::kBool)) return repeat(b, as_int(a), n.line);
  fail(n.line, "unsupported operand types for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

Value Evaluator::eval(const Node& n) {
  switch (n.type) {
    case N::kLiteral: return n.value;
    case N::kName: return lookup(n.name);
    case N::kList:
    case N::kTuple: {
      List out;
      for (const auto& k : n.kids) out.push_back(eval(*k));
      return n.type == N::kTuple ? Value::make_tuple(std::move(out)) : Value::make_list(std::move(out));
    }
    case N::kDict: {
      Value d = Value::make_dict();
      for (size_t k = 0; k + 1 < n.kids.size(); k += 2) {
        const std::string key = to_str(eval(*n.kids[k]));
        Value v = eval(*n.kids[k + 1]);
        bool found = false;
        for (auto& [dk, dv] : *d.dict)
          if (dk == key) { dv = v; found = true; }
        if (!found) d.dict->emplace_back(key, std::move(v));
      }
      return d;
    }
    case N::kGetAttr: return get_attr(eval(*n.kids[0]), n.name, n.line);
    case N::kGetItem: return get_item(eval(*n.kids[0]), eval(*n.kids[1]), n.line);
    case N::kSlice: {
      auto part = [&](size_t k) { return n.kids[k] ? eval(*n.kids[k]) : Value::none(); };
      return slice(eval(*n.kids[0]), part(1), part(2), part(3), n.line);
    }
    case N::kCall: return eval_call(n);
    case N::kFilter: {
      const Value v = eval(*n.kids[0]);
      Args a = eval_args(n, 1);
      return apply_filter(*this, n.name, v, a);
    }
    case N::kTest: {
      const Value v = eval(*n.kids[0]);
      Args a = eval_args(n, 1);
      return Value::boolean(apply_test(*this, n.name, v, a) != n.negated);
    }
    case N::kUnary: {
      const Value v = eval(*n.kids[0]);
      if (!v.is_number()) fail(n.line, "bad operand type for unary " + n.name + ": '" + type_name(v) + "'");
      if (n.name == "+") return v.kind == K::kBool ? Value::integer(v.b) : v;
      return v.kind == K::kFloat ? Value::number(-v.f) : Value::integer(-as_int(v));
    }
    case N::kBinary: return eval_binary(n);
    case N::kAnd: {
      Value a = eval(*n.kids[0]);
      return truthy(a) ? eval(*n.kids[1]) : a;
    }
    case N::kOr: {
      Value a = eval(*n.kids[0]);
      return truthy(a) ? a : eval(*n.kids[1]);
    }
    case N::kNot: return Value::boolean(!truthy(eval(*n.kids[0])));
    case N::kConcat: return Value::string(to_str(eval(*n.kids[0])) + to_str(eval(*n.kids[1])));
    case N::kCondExpr:
      if (truthy(eval(*n.kids[0]))) return eval(*n.kids[1]);
      return n.kids[2] ? eval(*n.kids[2]) : Value::undefined();
    default: fail(n.line, "a statement where an expression was expected");
  }
}

Template::Template(const std::string& source) : root_(parse(tokenize(source))) {}

std::string Template::render(const nlohmann::ordered_json& context) const {
  Evaluator ev(context);
  return ev.run(*root_);
}

}  // namespace cada::text::jinja
