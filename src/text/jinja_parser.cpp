// Jinja parser: tokens to a syntax tree, with jinja2's operator precedence.
#include <set>
#include <string>
#include <vector>

#include "jinja_internal.h"

namespace cada::text::jinja {
namespace {

using T = Token::Type;
using N = Node::Type;

NodePtr node(N type, int line) {
  auto n = std::make_shared<Node>();
  n->type = type;
  n->line = line;
  return n;
}

class Parser {
 public:
  explicit Parser(const std::vector<Token>& t) : t_(t) {}

  NodePtr parse_root() {
    auto root = node(N::kRoot, 1);
    std::string end = parse_body(root->kids, {});
    (void)end;
    return root;
  }

 private:
  const std::vector<Token>& t_;
  size_t p_ = 0;
  int depth_ = 0;  // expression nesting
  // Nesting is bounded so that a hostile template cannot exhaust the stack.
  struct Depth {
    int& d;
    Depth(int& x, int line) : d(x) {
      if (++d > 200) fail(line, "expressions are nested more than 200 deep");
    }
    ~Depth() { --d; }
  };

  const Token& cur() const { return t_[p_]; }
  const Token& next() { return t_[p_++]; }
  bool is_op(const char* op) const { return cur().type == T::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == T::kName && cur().text == n; }
  bool accept_op(const char* op) { if (is_op(op)) { ++p_; return true; } return false; }
  bool accept_name(const char* n) { if (is_name(n)) { ++p_; return true; } return false; }
  [[noreturn]] void unexpected(const std::string& expected) const {
    std::string got = cur().type == T::kEnd ? "the end of the template"
                      : cur().type == T::kBlockEnd ? "the end of the tag"
                      : cur().type == T::kVarEnd ? "'}}'"
                      : "'" + cur().text + "'";
    fail(cur().line, "expected " + expected + " but found " + got);
  }
  void expect_op(const char* op) { if (!accept_op(op)) unexpected(std::string("'") + op + "'"); }
  std::string expect_name() {
    if (cur().type != T::kName) unexpected("a name");
    return next().text;
  }
  void expect_block_end() { if (cur().type != T::kBlockEnd) unexpected("the end of the tag"); ++p_; }

  // Statements until one of `ends` (a block tag name); returns that name, consuming the
  // tag name but not the rest of the tag. An empty `ends` runs to the end of the template.
  std::string parse_body(std::vector<NodePtr>& out, const std::set<std::string>& ends) {
    while (true) {
      const Token& tk = cur();
      if (tk.type == T::kEnd) {
        if (ends.empty()) return "";
        std::string want;
        for (const auto& e : ends) want += (want.empty() ? "'" : " or '") + e + "'";
        fail(tk.line, "the template ended inside a block (expected " + want + ")");
      }
      if (tk.type == T::kText) {
        auto n = node(N::kText, tk.line);
        n->value = Value::string(tk.text);
        out.push_back(n);
        ++p_;
      } else if (tk.type == T::kVarBegin) {
        ++p_;
        auto n = node(N::kOutput, tk.line);
        n->kids.push_back(parse_tuple());
        if (cur().type != T::kVarEnd) unexpected("'}}'");
        ++p_;
        out.push_back(n);
      } else {
        ++p_;
        if (cur().type != T::kName) unexpected("a statement name");
        const std::string word = cur().text;
        if (ends.count(word)) { ++p_; return word; }
        out.push_back(parse_statement());
      }
    }
  }

  NodePtr parse_statement() {
    Depth guard(depth_, cur().line);
    const Token& tk = next();
    const std::string& w = tk.text;
    if (w == "if") return parse_if(tk.line);
    if (w == "for") return parse_for(tk.line);
    if (w == "set") return parse_set(tk.line);
    if (w == "macro") return parse_macro(tk.line);
    if (w == "break" || w == "continue") {
      expect_block_end();
      return node(w == "break" ? N::kBreak : N::kContinue, tk.line);
    }
    if (w == "generation" || w == "filter" || w == "raw") {
      if (w != "generation") fail(tk.line, "the '" + w + "' block is not supported");
      expect_block_end();
      auto n = node(N::kBody, tk.line);
      parse_body(n->kids, {"endgeneration"});
      expect_block_end();
      return n;
    }
    fail(tk.line, "unknown statement '" + w + "'");
  }

  NodePtr parse_if(int line) {
    auto n = node(N::kIf, line);
    n->kids.push_back(parse_expression());
    expect_block_end();
    auto body = node(N::kBody, line);
    n->kids.push_back(body);
    const std::string end = parse_body(body->kids, {"elif", "else", "endif"});
    if (end == "elif") {
      n->else_kids.push_back(parse_if(line));
      return n;
    }
    if (end == "else") {
      expect_block_end();
      parse_body(n->else_kids, {"endif"});
    }
    expect_block_end();
    return n;
  }

  NodePtr parse_for(int line) {
    auto n = node(N::kFor, line);
    do n->kw_names.push_back(expect_name()); while (accept_op(","));
    if (!accept_name("in")) unexpected("'in'");
    n->kids.push_back(parse_expression(false));
    n->kids.push_back(accept_name("if") ? parse_expression() : nullptr);
    if (accept_name("recursive")) fail(line, "recursive loops are not supported");
    expect_block_end();
    auto body = node(N::kBody, line);
    n->kids.push_back(body);
    if (parse_body(body->kids, {"else", "endfor"}) == "else") {
      expect_block_end();
      parse_body(n->else_kids, {"endfor"});
    }
    expect_block_end();
    return n;
  }

  NodePtr parse_set(int line) {
    std::vector<std::string> targets;
    do {
      std::string name = expect_name();
      if (accept_op(".")) name += "." + expect_name();
      targets.push_back(name);
    } while (accept_op(","));
    if (!is_op("=")) {
      if (targets.size() != 1 || targets[0].find('.') != std::string::npos) unexpected("'='");
      auto n = node(N::kSetBlock, line);
      n->name = targets[0];
      if (accept_op("|")) fail(line, "filters on a block set are not supported");
      expect_block_end();
      parse_body(n->kids, {"endset"});
      expect_block_end();
      return n;
    }
    ++p_;
    auto n = node(N::kSet, line);
    n->kw_names = targets;
    n->kids.push_back(parse_tuple());
    expect_block_end();
    return n;
  }

  NodePtr parse_macro(int line) {
    auto n = node(N::kMacro, line);
    n->name = expect_name();
    expect_op("(");
    auto defaults = node(N::kBody, line);
    while (!accept_op(")")) {
      if (!n->kw_names.empty()) expect_op(",");
      if (accept_op(")")) break;
      n->kw_names.push_back(expect_name());
      defaults->kids.push_back(accept_op("=") ? parse_expression() : nullptr);
    }
    expect_block_end();
    n->else_kids = defaults->kids;  // one default (or null) per argument
    parse_body(n->kids, {"endmacro"});
    expect_block_end();
    return n;
  }

  // ---------------------------------------------------------------- expressions
  // A tuple without parentheses ("a, b") where jinja2 allows one; else one expression.
  NodePtr parse_tuple() {
    const int line = cur().line;
    NodePtr first = parse_expression();
    if (!is_op(",")) return first;
    auto t = node(N::kTuple, line);
    t->kids.push_back(first);
    while (accept_op(",")) {
      if (cur().type == T::kVarEnd || cur().type == T::kBlockEnd) break;
      t->kids.push_back(parse_expression());
    }
    return t;
  }

  NodePtr parse_expression(bool with_cond = true) {
    Depth guard(depth_, cur().line);
    NodePtr e = parse_or();
    if (!with_cond) return e;
    while (is_name("if")) {
      const int line = next().line;
      auto c = node(N::kCondExpr, line);
      c->kids.push_back(parse_or());
      c->kids.push_back(e);
      c->kids.push_back(accept_name("else") ? parse_expression() : nullptr);
      e = c;
    }
    return e;
  }

  NodePtr binary(N type, const std::string& op, NodePtr a, NodePtr b, int line) {
    auto n = node(type, line);
    n->name = op;
    n->kids = {std::move(a), std::move(b)};
    return n;
  }

  NodePtr parse_or() {
    NodePtr e = parse_and();
    while (is_name("or")) { const int l = next().line; e = binary(N::kOr, "or", e, parse_and(), l); }
    return e;
  }
  NodePtr parse_and() {
    NodePtr e = parse_not();
    while (is_name("and")) { const int l = next().line; e = binary(N::kAnd, "and", e, parse_not(), l); }
    return e;
  }
  NodePtr parse_not() {
    if (is_name("not")) {
      Depth guard(depth_, cur().line);
      auto n = node(N::kNot, next().line);
      n->kids.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }
  NodePtr parse_compare() {
    NodePtr e = parse_math1();
    while (true) {
      const int l = cur().line;
      if (cur().type == T::kOp && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                   cur().text == ">" || cur().text == "<=" || cur().text == ">=")) {
        const std::string op = next().text;
        e = binary(N::kBinary, op, e, parse_math1(), l);
      } else if (accept_name("in")) {
        e = binary(N::kBinary, "in", e, parse_math1(), l);
      } else if (is_name("not") && t_[p_ + 1].type == T::kName && t_[p_ + 1].text == "in") {
        p_ += 2;
        e = binary(N::kBinary, "not in", e, parse_math1(), l);
      } else {
        return e;
      }
    }
  }
  NodePtr parse_math1() {
    NodePtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& o = next();
      e = binary(N::kBinary, o.text, e, parse_concat(), o.line);
    }
    return e;
  }
  NodePtr parse_concat() {
    NodePtr e = parse_math2();
    while (is_op("~")) {
      const int l = next().line;
      e = binary(N::kConcat, "~", e, parse_math2(), l);
    }
    return e;
  }
  NodePtr parse_math2() {
    NodePtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& o = next();
      e = binary(N::kBinary, o.text, e, parse_pow(), o.line);
    }
    return e;
  }
  NodePtr parse_pow() {
    NodePtr e = parse_unary();
    while (is_op("**")) {
      const int l = next().line;
      e = binary(N::kBinary, "**", e, parse_unary(), l);
    }
    return e;
  }
  NodePtr parse_unary(bool with_filter = true) {
    NodePtr e;
    if (is_op("-") || is_op("+")) {
      Depth guard(depth_, cur().line);
      const Token& o = next();
      e = node(N::kUnary, o.line);
      e->name = o.text;
      e->kids.push_back(parse_unary(false));
    } else {
      e = parse_postfix(parse_primary());
    }
    return with_filter ? parse_filters(e) : e;
  }

  NodePtr parse_primary() {
    const Token& tk = next();
    switch (tk.type) {
      case T::kName: {
        if (tk.text == "true" || tk.text == "True") return literal(Value::boolean(true), tk.line);
        if (tk.text == "false" || tk.text == "False") return literal(Value::boolean(false), tk.line);
        if (tk.text == "none" || tk.text == "None") return literal(Value::none(), tk.line);
        auto n = node(N::kName, tk.line);
        n->name = tk.text;
        return n;
      }
      case T::kString: {
        std::string s = tk.text;
        while (cur().type == T::kString) s += next().text;  // adjacent literals concatenate
        return literal(Value::string(s), tk.line);
      }
      case T::kInt: return literal(Value::integer(std::stoll(tk.text)), tk.line);
      case T::kFloat: return literal(Value::number(std::stod(tk.text)), tk.line);
      case T::kOp:
        if (tk.text == "(") return parse_paren(tk.line);
        if (tk.text == "[") return parse_list(tk.line);
        if (tk.text == "{") return parse_dict(tk.line);
        break;
      default: break;
    }
    --p_;
    unexpected("an expression");
  }

  NodePtr literal(Value v, int line) {
    auto n = node(N::kLiteral, line);
    n->value = std::move(v);
    return n;
  }
  NodePtr parse_paren(int line) {
    if (accept_op(")")) return node(N::kTuple, line);
    NodePtr e = parse_expression();
    if (accept_op(")")) return e;
    auto t = node(N::kTuple, line);
    t->kids.push_back(e);
    while (accept_op(",")) {
      if (is_op(")")) break;
      t->kids.push_back(parse_expression());
    }
    expect_op(")");
    return t;
  }
  NodePtr parse_list(int line) {
    auto n = node(N::kList, line);
    while (!accept_op("]")) {
      if (!n->kids.empty()) expect_op(",");
      if (accept_op("]")) break;
      n->kids.push_back(parse_expression());
    }
    return n;
  }
  NodePtr parse_dict(int line) {
    auto n = node(N::kDict, line);
    while (!accept_op("}")) {
      if (!n->kids.empty()) expect_op(",");
      if (accept_op("}")) break;
      n->kids.push_back(parse_expression());
      expect_op(":");
      n->kids.push_back(parse_expression());
    }
    return n;
  }

  NodePtr parse_postfix(NodePtr e) {
    while (true) {
      const int l = cur().line;
      if (accept_op(".")) {
        auto n = node(N::kGetAttr, l);
        if (cur().type == T::kInt) {
          n->type = N::kGetItem;
          n->kids = {e, literal(Value::integer(std::stoll(next().text)), l)};
        } else {
          n->name = expect_name();
          n->kids.push_back(e);
        }
        e = n;
      } else if (accept_op("[")) {
        e = parse_subscript(e, l);
      } else if (is_op("(")) {
        ++p_;
        auto n = node(N::kCall, l);
        n->kids.push_back(e);
        parse_call_args(*n);
        e = n;
      } else {
        return e;
      }
    }
  }
  NodePtr parse_subscript(NodePtr e, int l) {
    NodePtr parts[3];
    bool is_slice = false;
    for (int k = 0; k < 3; ++k) {
      if (!is_op(":") && !is_op("]")) parts[k] = parse_expression();
      if (k < 2 && accept_op(":")) { is_slice = true; continue; }
      break;
    }
    expect_op("]");
    if (!is_slice) return binary(N::kGetItem, "", e, parts[0], l);
    auto n = node(N::kSlice, l);
    n->kids = {e, parts[0], parts[1], parts[2]};
    return n;
  }
  // Arguments after '(' up to ')': positional first, then name=value (names in kw_names).
  void parse_call_args(Node& n) {
    bool first = true;
    while (!accept_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (accept_op(")")) break;
      if (cur().type == T::kName && t_[p_ + 1].type == T::kOp && t_[p_ + 1].text == "=") {
        n.kw_names.push_back(next().text);
        ++p_;
      } else if (!n.kw_names.empty()) {
        fail(cur().line, "a positional argument follows a keyword argument");
      }
      n.kids.push_back(parse_expression());
    }
  }

  NodePtr parse_filters(NodePtr e) {
    while (true) {
      const int l = cur().line;
      if (accept_op("|")) {
        auto n = node(N::kFilter, l);
        n->name = expect_name();
        n->kids.push_back(e);
        if (accept_op("(")) parse_call_args(*n);
        e = n;
      } else if (accept_name("is")) {
        auto n = node(N::kTest, l);
        n->negated = accept_name("not");
        n->name = expect_name();
        n->kids.push_back(e);
        if (accept_op("(")) {
          parse_call_args(*n);
        } else if ((cur().type == T::kName || cur().type == T::kString || cur().type == T::kInt ||
                    cur().type == T::kFloat || is_op("(") || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if")) {
          n->kids.push_back(parse_postfix(parse_primary()));
        }
        e = n;
      } else {
        return e;
      }
    }
  }
};

}  // namespace

NodePtr parse(const std::vector<Token>& tokens) { return Parser(tokens).parse_root(); }

}  // namespace cada::text::jinja
