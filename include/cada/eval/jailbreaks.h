// Jailbreak transforms of a request, registered by type name.
//
// Built-in types (wording is cada's own; the attacks follow Wei et al. 2023, "Jailbroken: How
// Does LLM Safety Training Fail?", and the StrongREJECT jailbreak set):
//
//   none                  the request unchanged
//   prefix_injection      ask the model to open with a fixed eager sentence, then answer
//   refusal_suppression   rules that forbid apologies, disclaimers and refusal words
//   style_injection       style rules (no punctuation, short words, never "the")
//   distractors           the request hidden in the middle of three unrelated tasks
//   base64                request Base64-encoded, answer asked for in Base64 (decoded before judging)
//   base64_input_only     request Base64-encoded, answer in plain text
//   base64_output_only    plain request, answer asked for in Base64 (decoded before judging)
//   base64_raw            only the Base64 of the request (decoded before judging, as StrongREJECT does)
//   rot13                 request in ROT13, answer asked for in plain text
//   disemvowel            the request with its vowels (a e i o u, either case) removed
//   bon                   Best-of-N jailbreaking's character perturbations (Hughes et al. 2024),
//                         seeded per prompt: scramble the inner letters of words longer than 3
//                         characters with probability sqrt(sigma); flip the case of ASCII letters
//                         with probability sqrt(sigma); shift printable ASCII characters by +-1
//                         with probability sigma^3
//   template              a user file with a {forbidden_prompt} or [INSERT PROMPT HERE] slot
//                         (AIM, DAN, ...: the texts are not shipped; users supply the file)
//   template_set          one template of a jailbreak prompts CSV (the in-the-wild DAN prompts,
//                         public_data.h: read_jailbreak_templates): template number `index`, in
//                         file order or, with a non-zero seed, a seeded order; `samples` = k takes
//                         templates index .. index + k - 1, named "<name>.<j>"
//
// Config entries are a type name ("rot13") or an object:
//   {"name": "aim", "type": "template", "template_file": "jailbreaks/aim.txt"}
//   {"name": "bon", "type": "bon", "sigma": 0.4, "seed": 1, "samples": 4}
// `samples` > 1 expands a seeded type into `samples` jailbreaks named "<name>.<k>" (different
// draws), so the worst case over jailbreaks is Best-of-N over the perturbations.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cada::eval {

struct JailbreakSpec {
  std::string name;                 // report name (unique)
  std::string type;                 // registered type; default: name
  std::string template_file;        // template
  double sigma = 0.4;               // bon
  bool scramble = true, capitalize = true, noise = true;  // bon: which perturbations
  uint64_t seed = 0;                // seeded types
  int64_t samples = 1;              // seeded types: expand into name.0 .. name.(samples-1)
  int64_t index = 0;                // template_set: the first template taken
  template <class V> void visit(V& v) {
    v("name", name, "name in the reports (unique)");
    v("type", type, "registered jailbreak type (default: the name)");
    v("template_file", template_file, "template: file with a {forbidden_prompt} or [INSERT PROMPT HERE] slot");
    v("sigma", sigma, "bon: perturbation strength in [0, 1]");
    v("scramble", scramble, "bon: scramble inner letters of words");
    v("capitalize", capitalize, "bon: random case flips");
    v("noise", noise, "bon: +-1 ASCII character noise");
    v("seed", seed, "seed of the randomised types (mixed with each prompt's key)");
    v("samples", samples, "randomised types: independent draws, named <name>.<k>; template_set: templates taken");
    v("index", index, "template_set: the first template taken (in file order, or the seeded order when seed != 0)");
  }
};

class Jailbreak {
 public:
  explicit Jailbreak(std::string name) : name_(std::move(name)) {}
  virtual ~Jailbreak() = default;
  const std::string& name() const { return name_; }
  // The transformed user message; `key` identifies the prompt (randomised types draw from it).
  virtual std::string apply(const std::string& prompt, uint64_t key) const = 0;
  // The response as judges should read it (encoded answers decoded); identity by default.
  virtual std::string decode(const std::string& response) const { return response; }
  // True when decode() is not the identity.
  virtual bool decodes() const { return false; }

 private:
  std::string name_;
};

using JailbreakFactory = std::function<std::shared_ptr<Jailbreak>(const JailbreakSpec&)>;

// Registers a type (a later registration replaces an earlier one). Built-ins are always present.
void register_jailbreak(const std::string& type, JailbreakFactory factory);
// Registered type names, sorted.
std::vector<std::string> jailbreak_types();

// Builds one spec (samples > 1 gives several jailbreaks); throws naming `where` and the problem.
std::vector<std::shared_ptr<Jailbreak>> make_jailbreaks(const JailbreakSpec& spec, const std::string& where);
// Builds the config list: strings (type names) or objects (JailbreakSpec). Names must be unique.
// Every problem is listed in one error.
std::vector<std::shared_ptr<Jailbreak>> make_jailbreaks(const nlohmann::json& list, const std::string& where);
std::shared_ptr<Jailbreak> make_jailbreak(const std::string& type);  // a built-in with default options

// ---- pure helpers (public for tests and other layers)

std::string base64_encode(const std::string& bytes);
// Python's base64.b64decode(s) (validate=False) followed by bytes.decode("utf-8"): non-ASCII
// input fails; characters outside the alphabet are skipped; decoding stops at a complete
// padding sequence; a leftover partial quantum ("Incorrect padding") or invalid UTF-8 fails.
std::optional<std::string> python_b64decode_utf8(const std::string& s);
// StrongREJECT's decoder for Base64 answers: the whole text, else the text plus "=", else the
// longest line that decodes to something longer than the whole response; else the response.
std::string decode_base64_response(const std::string& response);
std::string rot13(const std::string& s);
std::string disemvowel(const std::string& s);
// Best-of-N augmentations with an explicit generator, as in the BoN jailbreaking code.
struct BonOptions {
  double sigma = 0.4;
  bool scramble = true, capitalize = true, noise = true;
};
std::string bon_perturb(const std::string& prompt, const BonOptions& o, uint64_t seed);
// Replaces every {forbidden_prompt} and [INSERT PROMPT HERE] in one pass; throws when the
// template has neither (`where` names the file).
std::string fill_jailbreak_template(const std::string& tmpl, const std::string& prompt, const std::string& where);

}  // namespace cada::eval
