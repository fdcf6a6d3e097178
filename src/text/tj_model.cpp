// The BPE model of a tokenizer.json (tokenizers' models::bpe): characters (or their <0xXX>
// bytes, or the unknown token) merged pairwise by merge rank.
#include <algorithm>
#include <cstdio>
#include <queue>

#include "cada/text/unicode.h"
#include "cada/util/error.h"
#include "internal.h"
#include "tj.h"

namespace cada::text::detail::tj {

namespace {

// The merge of the pair at `pos` (left symbol index) with its rank; min-heap order.
struct MergeCand {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
  bool operator<(const MergeCand& o) const {
    if (rank != o.rank) return rank > o.rank;
    return pos > o.pos;
  }
};

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

}  // namespace

BpeModel::BpeModel(const json& m, const std::string& file) : file_(file) {
  CADA_CHECK(type_of(m) == "BPE" || (!m.contains("type") && m.contains("merges")), file, ": the model type '",
             type_of(m), "' at key 'model.type' is not BPE");
  CADA_CHECK(!m.contains("dropout") || m["dropout"].is_null() ||
                 (m["dropout"].is_number() && m["dropout"].get<double>() == 0.0),
             file, ": 'model.dropout' is set; BPE dropout is not supported");
  read_vocab(m);
  unk_token_ = get_opt_string(m, "unk_token");
  if (unk_token_) {
    auto it = vocab_.find(*unk_token_);
    if (it != vocab_.end()) unk_id_ = it->second;
  }
  cont_prefix_ = get_opt_string(m, "continuing_subword_prefix");
  eow_suffix_ = get_opt_string(m, "end_of_word_suffix");
  byte_fallback_ = get_bool(m, "byte_fallback", false);
  fuse_unk_ = get_bool(m, "fuse_unk", false);
  ignore_merges_ = get_bool(m, "ignore_merges", false);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = vocab_.find(name);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  if (m.contains("merges") && !m["merges"].is_null()) read_merges(m["merges"]);
}

void BpeModel::read_vocab(const json& m) {
  CADA_CHECK(m.contains("vocab") && m["vocab"].is_object(), file_, ": 'model.vocab' must be an object");
  int32_t max_id = -1;
  vocab_.reserve(m["vocab"].size());
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    const int32_t id = token_id(it.value(), file_, "the id of token '" + it.key() + "'");
    vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  id_to_token_.assign(max_id + 1, "");
  std::vector<bool> taken(max_id + 1, false);
  for (const auto& [tok, id] : vocab_) {
    // Two tokens on one id would decode ambiguously (the library keeps whichever it saw last).
    CADA_CHECK(!taken[id], file_, ": tokens '", id_to_token_[id], "' and '", tok, "' share id ", id,
               " in the BPE vocab");
    taken[id] = true;
    id_to_token_[id] = tok;
  }
}

void BpeModel::read_merges(const json& merges) {
  CADA_CHECK(merges.is_array(), file_, ": 'model.merges' must be a list");
  merges_.reserve(merges.size() * 2);
  int32_t rank = 0;
  for (const auto& e : merges) {
    std::string a, b;
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      size_t sp = s.find(' ');
      CADA_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, file_, ": merge '", s,
                 "' is not two tokens separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else {
      CADA_CHECK(e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string(), file_,
                 ": each merge must be \"a b\" or [\"a\", \"b\"]");
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b), in = vocab_.find(a + b);
    CADA_CHECK(ia != vocab_.end() && ib != vocab_.end(), file_, ": merge token '", ia == vocab_.end() ? a : b,
               "' is not in the vocabulary");
    CADA_CHECK(in != vocab_.end(), file_, ": merged token '", a + b, "' is not in the vocabulary");
    merges_[pair_key(ia->second, ib->second)] = {rank, in->second};  // a repeated pair: the last rank wins
    ++rank;
  }
}

const std::pair<int32_t, int32_t>* BpeModel::merge_of(int32_t a, int32_t b) const {
  auto it = merges_.find(pair_key(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

// The initial symbols: one per character, its <0xXX> bytes when byte_fallback covers it,
// else the unknown token (runs fused with fuse_unk). As tokenizers' BPE::merge_word, a
// pending unknown token is only emitted before the next known character.
std::vector<int32_t> BpeModel::symbols(const std::string& w) const {
  std::vector<int32_t> out;
  int32_t unk = -1;
  size_t i = 0;
  while (i < w.size()) {
    const size_t start = i;
    utf8_next(w, i);
    std::string s = w.substr(start, i - start);
    if (start != 0 && cont_prefix_) s = *cont_prefix_ + s;
    if (i >= w.size() && eow_suffix_) s += *eow_suffix_;
    auto it = vocab_.find(s);
    if (it != vocab_.end()) {
      if (unk >= 0) out.push_back(unk);
      unk = -1;
      out.push_back(it->second);
      continue;
    }
    if (byte_fallback_ && std::all_of(s.begin(), s.end(), [&](char c) { return byte_ids_[static_cast<uint8_t>(c)] >= 0; })) {
      for (char c : s) out.push_back(byte_ids_[static_cast<uint8_t>(c)]);
      continue;
    }
    if (unk_token_) {
      CADA_CHECK(unk_id_.has_value(), file_, ": 'model.unk_token' '", *unk_token_, "' is not in the vocabulary");
      if (unk >= 0 && fuse_unk_) continue;  // fused into the pending one
      if (unk >= 0) out.push_back(unk);
      unk = *unk_id_;
    }
  }
  if (unk >= 0) out.push_back(unk);
  return out;
}

std::vector<int32_t> BpeModel::merge_word(const std::string& w) const {
  struct Sym {
    int32_t id, prev, next;
    bool alive;
  };
  std::vector<Sym> syms;
  for (int32_t id : symbols(w)) {
    const int32_t idx = static_cast<int32_t>(syms.size());
    syms.push_back({id, idx - 1, idx + 1, true});
  }
  if (syms.empty()) return {};
  syms.back().next = -1;
  std::priority_queue<MergeCand> queue;
  for (size_t k = 0; k + 1 < syms.size(); ++k)
    if (auto m = merge_of(syms[k].id, syms[k + 1].id)) queue.push({m->first, static_cast<int32_t>(k), m->second});
  while (!queue.empty()) {
    const MergeCand top = queue.top();
    queue.pop();
    Sym& left = syms[top.pos];
    if (!left.alive || left.next < 0) continue;
    Sym& right = syms[left.next];
    auto m = merge_of(left.id, right.id);
    if (!m || m->second != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) syms[right.next].prev = top.pos;
    if (left.prev >= 0)
      if (auto pm = merge_of(syms[left.prev].id, left.id)) queue.push({pm->first, left.prev, pm->second});
    if (left.next >= 0)
      if (auto nm = merge_of(left.id, syms[left.next].id)) queue.push({nm->first, top.pos, nm->second});
  }
  std::vector<int32_t> out;
  for (int32_t k = 0; k >= 0; k = syms[k].next) out.push_back(syms[k].id);
  return out;
}

void BpeModel::tokenize(const std::string& word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  constexpr size_t kMaxCachedLen = 256, kCacheCapacity = 10000;
  const bool cacheable = word.size() < kMaxCachedLen;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_word(word);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(word, std::move(ids));
  }
}

}  // namespace cada::text::detail::tj
