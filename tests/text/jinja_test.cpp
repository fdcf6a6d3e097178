// The Jinja engine: language features as jinja2 renders them under transformers' settings
// (trim_blocks, lstrip_blocks, loopcontrols, tojson with ensure_ascii=False), and errors.
#include "cada/text/jinja.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cada/util/error.h"

namespace cada::text::jinja {
namespace {

using json = nlohmann::ordered_json;  // objects keep their key order, as Python dicts

std::string R(const std::string& src, const json& ctx = json::object()) { return Template(src).render(ctx); }

std::string error_of(const std::string& src, const json& ctx = json::object()) {
  try {
    R(src, ctx);
  } catch (const cada::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Jinja, TextOutputAndComments) {
  EXPECT_EQ(R("a{{ 1 + 2 }}b{# c #}d"), "a3bd");
  EXPECT_EQ(R("{{ 'x' ~ 1 ~ none }}"), "x1None");
  EXPECT_EQ(R("{{ name }}|", {{"name", "Ann"}}), "Ann|");
  EXPECT_EQ(R("x\n"), "x");  // keep_trailing_newline off
  EXPECT_EQ(R("x\n\n"), "x\n");
}

TEST(Jinja, WhitespaceControl) {
  EXPECT_EQ(R("a  {{- 'b' -}}  \n c"), "abc");
  EXPECT_EQ(R("{% if true %}\nyes\n{% endif %}\nend"), "yes\nend");          // trim_blocks
  EXPECT_EQ(R("  {% if true %}x{% endif %}"), "x");                            // lstrip_blocks
  EXPECT_EQ(R("  {{ 'x' }}"), "  x");                                          // not for output tags
  EXPECT_EQ(R("  {%+ if true %}x{% endif %}"), "  x");
  EXPECT_EQ(R("a\n  {# c #}\nb"), "a\nb");
}

TEST(Jinja, IfElifElse) {
  const std::string t = "{% if n > 2 %}big{% elif n == 2 %}two{% else %}small{% endif %}";
  EXPECT_EQ(R(t, {{"n", 3}}), "big");
  EXPECT_EQ(R(t, {{"n", 2}}), "two");
  EXPECT_EQ(R(t, {{"n", 0}}), "small");
  EXPECT_EQ(R("{{ 'y' if x else 'n' }}{{ 'z' if x }}", {{"x", false}}), "n");
}

TEST(Jinja, ForLoopVariables) {
  EXPECT_EQ(R("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}"
              "{{ loop.length }};{% endfor %}",
              {{"xs", {"a", "b"}}}),
            "102TrueFalse2;211FalseTrue2;");
  EXPECT_EQ(R("{% for x in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(R("{% for x in [1,2,3,4] if x is even %}{{ x }}{{ loop.length }}{% endfor %}"), "2242");
  EXPECT_EQ(R("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", {{"d", {{"b", 1}, {"a", 2}}}}), "b=1,a=2,");
  EXPECT_EQ(R("{% for x in range(5) %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}{% endif %}"
              "{{ x }}{% endfor %}"),
            "02");
  EXPECT_EQ(R("{% for x in 'ab' %}{{ loop.cycle('-', '+') }}{{ x }}{% endfor %}"), "-a+b");
}

TEST(Jinja, SetScopesAndNamespace) {
  EXPECT_EQ(R("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}"), "1");
  EXPECT_EQ(R("{% set ns = namespace(x=1) %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}"),
            "4");
  EXPECT_EQ(R("{% set a, b = 1, 2 %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(R("{% set body %}\n  hi {{ 1 }}\n{% endset %}[{{ body }}]"), "[  hi 1\n]");
}

TEST(Jinja, Macros) {
  EXPECT_EQ(R("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
              "{{ greet('A') }} {{ greet('B', punct='?') }}"),
            "Hi A! Hi B?");
}

TEST(Jinja, Operators) {
  EXPECT_EQ(R("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** 10 }}"),
            "3 -4 1 2 3.5 2.0 1024");
  EXPECT_EQ(R("{{ 'ab' * 2 }} {{ [1] + [2] }} {{ 1 + 2.5 }} {{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.5e-7 }}"),
            "abab [1, 2] 3.5 0.30000000000000004 1e+20 1.5e-07");
  EXPECT_EQ(R("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}"), "True True True True");
  EXPECT_EQ(R("{{ 1 and 'x' }} {{ 0 or 'y' }} {{ not 0 }} {{ 1 < 2 <= 2 }}"), "x y True True");
  EXPECT_EQ(R("{{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1, 'a'] == [1, 'a'] }}"), "True True True");
}

TEST(Jinja, AttributesItemsAndSlices) {
  const json ctx = {{"m", {{"role", "user"}, {"items", 5}}}, {"xs", {1, 2, 3, 4}}};
  EXPECT_EQ(R("{{ m.role }} {{ m['role'] }} {{ m['items'] }} {{ m.missing is defined }}", ctx), "user user 5 False");
  EXPECT_EQ(R("{{ xs[1:3] }} {{ xs[::-1] }} {{ xs[-1] }} {{ xs[::2] }} {{ 'héllo'[1:3] }} {{ 'abc'[::-1] }}", ctx),
            "[2, 3] [4, 3, 2, 1] 4 [1, 3] él cba");
  EXPECT_EQ(R("{{ m.get('role') }} {{ m.get('x', 'd') }} {{ m.get('x') }} {{ m.keys() | list }}", ctx),
            "user d None ['role', 'items']");
}

TEST(Jinja, StringMethods) {
  EXPECT_EQ(R("[{{ '  a b  '.strip() }}][{{ 'xxaxx'.lstrip('x') }}][{{ '\\n a \\n'.rstrip() }}]"), "[a b][axx][\n a]");
  EXPECT_EQ(R("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']");
  EXPECT_EQ(R("{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'aXb'.upper() }} {{ 'aXb'.lower() }}"),
            "True True AXB axb");
  EXPECT_EQ(R("{{ 'a-a'.replace('a', 'b') }} {{ 'hello world'.title() }} {{ '{} is {x}'.format(1, x='y') }}"),
            "b-b Hello World 1 is y");
}

TEST(Jinja, Filters) {
  EXPECT_EQ(R("{{ '  x '|trim }}|{{ [1,2]|length }}|{{ 'héllo'|length }}|{{ [3,1]|first }}{{ [3,1]|last }}"),
            "x|2|5|31");
  EXPECT_EQ(R("{{ ['a','b']|join(', ') }}|{{ x|default('d') }}|{{ ''|default('e', true) }}|{{ 'ab'|upper }}"), "a, b|d|e|AB");
  EXPECT_EQ(R("{{ 'hello'|capitalize }} {{ 'aa'|replace('a', 'b') }} {{ 3|string }} {{ '42'|int + 1 }} {{ 'x'|int }}"),
            "Hello bb 3 43 0");
  const json ctx = {{"ms", {{{"role", "user"}, {"n", 1}}, {{"role", "tool"}, {"n", 2}}, {{"role", "user"}, {"n", 3}}}}};
  EXPECT_EQ(R("{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='n')|list }}", ctx), "[1, 3]");
  EXPECT_EQ(R("{{ ms|rejectattr('role', '==', 'user')|map(attribute='n')|join }}", ctx), "2");
  EXPECT_EQ(R("{{ [1, 0, 2]|select|list }} {{ [1, 2, 3]|reject('odd')|list }} {{ ['a']|map('upper')|list }}"),
            "[1, 2] [2] ['A']");
  EXPECT_EQ(R("{{ {'b': 1, 'a': 2}|dictsort }} {{ {'x': 1}|items|list }}"), "[('a', 2), ('b', 1)] [('x', 1)]");
  EXPECT_EQ(R("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}"), "a\n  b\n\n  c|  a\n  b");
  EXPECT_EQ(R("{{ 'one two, three'|wordcount }}"), "3");
}

TEST(Jinja, ToJsonMatchesPythonJsonDumps) {
  const json v = json::parse(R"({"name": "f", "d": {"x": [1, 2.5, true, null, "é\"\n\u0001"]}, "e": {}, "l": []})");
  EXPECT_EQ(R("{{ v|tojson }}", {{"v", v}}),
            "{\"name\": \"f\", \"d\": {\"x\": [1, 2.5, true, null, \"é\\\"\\n\\u0001\"]}, \"e\": {}, \"l\": []}");
  EXPECT_EQ(R("{{ v|tojson(indent=2) }}", {{"v", json::parse(R"({"a": [1], "b": {}})")}}),
            "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}");
  EXPECT_EQ(R("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }}"), "{\"a\": 2, \"b\": 1}");
}

TEST(Jinja, Tests) {
  EXPECT_EQ(R("{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}"),
            "FalseTrueTrueTrueTrue");
  EXPECT_EQ(R("{{ [] is iterable }}{{ 'a' is sequence }}{{ 1 is number }}{{ true is true }}{{ 0 is false }}"),
            "TrueTrueTrueTrueFalse");
  EXPECT_EQ(R("{{ 2 is equalto 2 }}{{ 'a' is in 'abc' }}{{ 3 is not divisibleby 2 }}{{ x is not defined }}"),
            "TrueTrueTrueTrue");
}

TEST(Jinja, UndefinedSemantics) {
  EXPECT_EQ(R("[{{ x }}][{{ x|length }}][{% if x %}t{% else %}f{% endif %}][{% for i in x %}i{% endfor %}]"),
            "[][0][f][]");
  EXPECT_EQ(R("[{{ m.nope }}][{{ m['nope'] }}][{{ none.x }}]", {{"m", json::object()}}), "[][][]");
  EXPECT_NE(error_of("{{ x.y }}").find("'x' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{{ m.a.b }}", {{"m", json::object()}}).find("'a' is undefined"), std::string::npos);
  EXPECT_NE(error_of("{{ x + 'a' }}").find("'x' is undefined"), std::string::npos);
}

TEST(Jinja, GlobalsOfTransformers) {
  EXPECT_EQ(R("{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ dict(a=1) }}"), "[0, 1, 2] [1, 3, 5] {'a': 1}");
  EXPECT_EQ(R("{{ strftime_now('%Y')|length }}"), "4");
  EXPECT_EQ(R("{% generation %}x{% endgeneration %}"), "x");
  const std::string e = error_of("a\n{{ raise_exception('Roles must alternate') }}");
  EXPECT_NE(e.find("chat template line 2: Roles must alternate"), std::string::npos) << e;
}

TEST(Jinja, ErrorsNameTheLine) {
  const std::string cases[][2] = {
      {"ok\n{% if x %}", "line 2: the template ended inside a block"},
      {"{{ 1 + }}", "line 1: expected an expression"},
      {"\n\n{% foo %}", "line 3: unknown statement 'foo'"},
      {"{{ x|nosuch }}", "no filter named 'nosuch'"},
      {"{{ 1 is nosuch }}", "no test named 'nosuch'"},
      {"{{ 'a' + 1 }}", "unsupported operand types for +: 'str' and 'int'"},
      {"{{ [1].append(2) }}", "unsafe"},
      {"{{ 'unclosed }}", "string literal is not closed"},
      {"{{ 1 / 0 }}", "division by zero"},
      {"{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}", "nested more than 200 deep"},
      {"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recurses more than 100 calls deep"},
      {"{{ range(1000000)|length }}", "range too big"},
      {"{{ 'ab' * 100000000 }}", "over 100 million items"},
  };
  for (const auto& c : cases) {
    const std::string e = error_of(c[0]);
    EXPECT_NE(e.find("chat template line"), std::string::npos) << c[0] << " -> " << e;
    EXPECT_NE(e.find(c[1]), std::string::npos) << c[0] << " -> " << e;
  }
}

}  // namespace
}  // namespace cada::text::jinja
