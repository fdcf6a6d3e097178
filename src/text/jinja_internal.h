// Internals of the Jinja engine (include/cada/text/jinja.h): values, tokens, the syntax
// tree, and the helpers the lexer, parser, evaluator and filters share.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cada/text/jinja.h"

namespace cada::text::jinja {

// ------------------------------------------------------------------ values
struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, as Python dicts
struct Args;
using Function = std::function<Value(Args&)>;

struct Value {
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                    // string value; for undefined: the name, for the error message
  std::shared_ptr<List> list;       // lists and tuples share the type
  std::shared_ptr<Dict> dict;       // dicts, namespace() objects and loop objects
  std::shared_ptr<Function> fn;
  bool is_namespace = false;        // attributes of a namespace may be assigned with set
  bool is_tuple = false;            // a list that prints as a Python tuple: (a, b)

  static Value undefined(std::string name = "") { Value v; v.s = std::move(name); return v; }
  static Value none() { Value v; v.kind = Kind::kNone; return v; }
  static Value boolean(bool x) { Value v; v.kind = Kind::kBool; v.b = x; return v; }
  static Value integer(int64_t x) { Value v; v.kind = Kind::kInt; v.i = x; return v; }
  static Value number(double x) { Value v; v.kind = Kind::kFloat; v.f = x; return v; }
  static Value string(std::string x) { Value v; v.kind = Kind::kString; v.s = std::move(x); return v; }
  static Value make_list(List x = {}) { Value v; v.kind = Kind::kList; v.list = std::make_shared<List>(std::move(x)); return v; }
  static Value make_tuple(List x) { Value v = make_list(std::move(x)); v.is_tuple = true; return v; }
  static Value make_dict(Dict x = {}) { Value v; v.kind = Kind::kDict; v.dict = std::make_shared<Dict>(std::move(x)); return v; }
  static Value function(Function f) { Value v; v.kind = Kind::kFunction; v.fn = std::make_shared<Function>(std::move(f)); return v; }

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_list() const { return kind == Kind::kList; }
  bool is_dict() const { return kind == Kind::kDict; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool; }
  double as_double() const { return kind == Kind::kFloat ? f : kind == Kind::kBool ? b : static_cast<double>(i); }
  // Dict lookup; nullptr when absent.
  const Value* find(const std::string& key) const;
};

// Positional and keyword arguments of a call.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  int line = 0;
  // Argument `index` or keyword `name`; `fallback` when neither is given.
  Value get(size_t index, const std::string& name, Value fallback = Value::undefined()) const;
};

Value from_json(const nlohmann::ordered_json& j);
bool truthy(const Value& v);
std::string type_name(const Value& v);
std::string to_str(const Value& v);    // Python str()
std::string repr(const Value& v);      // Python repr()
bool equal(const Value& a, const Value& b);
// Python's json.dumps(v, ensure_ascii=False, indent=..., separators=..., sort_keys=...).
std::string to_json(const Value& v, int indent, const std::string& item_sep, const std::string& key_sep,
                    bool sort_keys, int line);
std::string format_float(double x);    // Python repr() of a float
// Items of an iterable (list, dict keys, string characters); throws for other kinds.
List iterate(const Value& v, int line);
[[noreturn]] void fail(int line, const std::string& sentence);

// ------------------------------------------------------------------ tokens
struct Token {
  enum class Type { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEnd };
  Type type;
  std::string text;  // text, name, string value, number spelling or operator
  int line = 1;
};
std::vector<Token> tokenize(const std::string& source);

// ------------------------------------------------------------------ syntax tree
struct Node {
  enum class Type {
    // expressions
    kLiteral, kName, kList, kTuple, kDict, kGetAttr, kGetItem, kSlice, kCall, kFilter, kTest, kUnary, kBinary,
    kAnd, kOr, kNot, kConcat, kCondExpr,
    // statements
    kRoot, kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue, kBody
  };
  Type type;
  int line = 0;
  std::string name;                           // name, attribute, operator, filter / test, set target
  Value value;                                // literal
  std::vector<std::shared_ptr<Node>> kids;    // operands, items, arguments, children
  std::vector<std::string> kw_names;          // keyword argument names (last kids), macro args, for targets
  std::vector<std::shared_ptr<Node>> else_kids;  // else branch (if / for)
  bool negated = false;                       // `is not`
};
using NodePtr = std::shared_ptr<Node>;
NodePtr parse(const std::vector<Token>& tokens);

// ------------------------------------------------------------------ built-ins
class Evaluator;
// Python string operations (ASCII case mapping; whitespace as str.isspace).
uint32_t code_point(const std::string& s, size_t k, size_t& len);
bool py_space(uint32_t cp);
std::string py_strip(const std::string& s, const Value& chars, bool left, bool right);
std::string ascii_map(std::string s, int (*f)(int));
std::string capitalize(const std::string& s);
std::string title(const std::string& s);
std::string replace_all(const std::string& s, const std::string& from, const std::string& to, int64_t count);
// A filter applied to `v` with `args` (positional after the value, and keywords).
Value apply_filter(Evaluator& ev, const std::string& name, const Value& v, Args& args);
bool apply_test(Evaluator& ev, const std::string& name, const Value& v, Args& args);
// obj.name as jinja2 resolves it: methods of strings, dicts and lists first, then items.
Value get_attr(const Value& obj, const std::string& name, int line);
// obj[key] as jinja2 resolves it: items first, then attributes.
Value get_item(const Value& obj, const Value& key, int line);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line);

class Evaluator {
 public:
  explicit Evaluator(const nlohmann::ordered_json& context);
  std::string run(const Node& root);
  Value eval(const Node& n);
  Value call(const Value& fn, Args& args, int line);

 private:
  struct LoopSignal { bool is_break; };
  void exec(const Node& n, std::string& out);
  void exec_body(const std::vector<NodePtr>& body, std::string& out);
  void exec_for(const Node& n, std::string& out);
  void exec_set(const Node& n, std::string& out);
  Value make_macro(const Node& n);
  Value lookup(const std::string& name) const;
  void assign(const std::string& name, Value v);
  Value eval_binary(const Node& n);
  Value eval_call(const Node& n);
  Args eval_args(const Node& n, size_t first);
  std::vector<std::map<std::string, Value>> scopes_;
};

}  // namespace cada::text::jinja
