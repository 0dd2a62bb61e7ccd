#include "tests/sim/history.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <unordered_set>

namespace uraft::sim {

namespace {

using State = std::optional<std::string>;

std::optional<std::int64_t> parse_int(const std::string& s) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty() || s[0] == '+')
    return std::nullopt;
  if (s.size() > 1 && (s[0] == '0' || (s[0] == '-' && s[1] == '0'))) return std::nullopt;
  return v;
}

// The register: applies `op` to `state`; false if its recorded answer contradicts it.
bool step(const Op& op, State& state) {
  std::string out;
  switch (op.kind) {
    case OpKind::kSet:
      state = op.arg;
      out = "OK";
      break;
    case OpKind::kGet:
      if (state) {
        out = "=";  // (Not "=" + *state: g++ 12 warns falsely on it, -Wrestrict.)
        out += *state;
      } else {
        out = "nil";
      }
      break;
    case OpKind::kIncr: {
      const std::optional<std::int64_t> v = state ? parse_int(*state) : std::int64_t{0};
      if (!v || *v == std::numeric_limits<std::int64_t>::max()) {
        out = "ERR";
      } else {
        state = std::to_string(*v + 1);
        out = *state;
      }
      break;
    }
    case OpKind::kAppend:
      if (!state) state.emplace();
      state->append(op.arg);
      out = std::to_string(state->size());
      break;
    case OpKind::kDel:
      out.push_back(state ? '1' : '0');
      state.reset();
      break;
  }
  return op.indeterminate || op.out == out;
}

struct Event {
  std::size_t op;  // Index into the key's operations.
  bool is_call;
  Event* match = nullptr;  // A call's return.
  Event* prev = nullptr;
  Event* next = nullptr;
};

struct CacheKey {
  std::vector<std::uint64_t> linearized;
  State state;
  bool operator==(const CacheKey&) const = default;
};
struct CacheHash {
  std::size_t operator()(const CacheKey& k) const noexcept {
    std::size_t h = std::hash<std::string>()(k.state.value_or("\x01nil"));
    for (std::uint64_t w : k.linearized) h = h * 1000003u ^ std::hash<std::uint64_t>()(w);
    return h;
  }
};

// One key: true if linearizable; `states` counts the search; nullopt if it ran out of budget.
std::optional<bool> check_key(const std::vector<const Op*>& ops, std::size_t budget,
                              std::size_t& states) {
  const std::size_t n = ops.size();
  constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
  std::vector<Event> events;
  events.reserve(2 * n + 1);
  std::vector<std::pair<std::uint64_t, std::size_t>> order;  // (time, event slot)
  for (std::size_t i = 0; i < n; ++i) {
    events.push_back(Event{i, true});
    events.push_back(Event{i, false});
    order.emplace_back(ops[i]->call, 2 * i);
    order.emplace_back(ops[i]->indeterminate ? kNever : ops[i]->ret, 2 * i + 1);
  }
  for (std::size_t i = 0; i < n; ++i) events[2 * i].match = &events[2 * i + 1];
  std::stable_sort(order.begin(), order.end());
  events.push_back(Event{0, false});  // The head sentinel.
  Event* head = &events.back();
  Event* last = head;
  for (const auto& [time, slot] : order) {
    Event* e = &events[slot];
    last->next = e;
    e->prev = last;
    last = e;
  }
  auto lift = [](Event* call) {
    call->prev->next = call->next;
    if (call->next) call->next->prev = call->prev;
    Event* r = call->match;
    r->prev->next = r->next;
    if (r->next) r->next->prev = r->prev;
  };
  auto unlift = [](Event* call) {
    Event* r = call->match;
    r->prev->next = r;
    if (r->next) r->next->prev = r;
    call->prev->next = call;
    if (call->next) call->next->prev = call;
  };

  std::vector<std::uint64_t> linearized((n + 63) / 64, 0);
  std::unordered_set<CacheKey, CacheHash> cache;
  std::vector<std::pair<Event*, State>> stack;
  State state;
  Event* entry = head->next;
  while (head->next != nullptr) {
    if (++states > budget) return std::nullopt;
    if (entry->is_call) {
      State next = state;
      if (step(*ops[entry->op], next)) {
        std::vector<std::uint64_t> bits = linearized;
        bits[entry->op / 64] |= std::uint64_t{1} << (entry->op % 64);
        if (cache.insert(CacheKey{bits, next}).second) {
          stack.emplace_back(entry, std::move(state));
          state = std::move(next);
          linearized = std::move(bits);
          lift(entry);
          entry = head->next;
          continue;
        }
      }
      entry = entry->next;
    } else {
      // A return whose call is not linearized yet: back up.
      if (stack.empty()) return false;
      auto [call, previous] = std::move(stack.back());
      stack.pop_back();
      state = std::move(previous);
      linearized[call->op / 64] &= ~(std::uint64_t{1} << (call->op % 64));
      unlift(call);
      entry = call->next;
    }
  }
  return true;
}

}  // namespace

std::string Op::describe() const {
  static constexpr const char* kNames[] = {"SET", "GET", "INCR", "APPEND", "DEL"};
  std::string s = "client ";
  s += std::to_string(client);
  s += " [";
  s += std::to_string(call);
  s += ", ";
  s += indeterminate ? std::string("?") : std::to_string(ret);
  s += "] ";
  s += kNames[static_cast<int>(kind)];
  s += " ";
  s += key;
  if (!arg.empty()) {
    s += " ";
    s += arg;
  }
  s += " -> ";
  s += indeterminate ? std::string("(unknown)") : out.value_or("(none)");
  return s;
}

LinearizabilityResult check_linearizable(const std::vector<Op>& history, std::size_t state_budget) {
  std::map<std::string, std::vector<const Op*>> by_key;
  for (const Op& op : history) by_key[op.key].push_back(&op);
  LinearizabilityResult result;
  for (auto& [key, ops] : by_key) {
    const std::optional<bool> ok = check_key(ops, state_budget, result.states);
    if (!ok) {
      result.gave_up = true;
      continue;
    }
    if (!*ok) {
      // For the report: the shortest prefix (by call) that is already refused, and the
      // operations just before its end, where the contradiction is.
      std::sort(ops.begin(), ops.end(), [](const Op* a, const Op* b) { return a->call < b->call; });
      std::size_t lo = 1, hi = ops.size();
      while (lo < hi) {
        const std::size_t mid = (lo + hi) / 2;
        std::size_t ignored = 0;
        const std::vector<const Op*> prefix(ops.begin(),
                                            ops.begin() + static_cast<std::ptrdiff_t>(mid));
        if (check_key(prefix, state_budget, ignored) == std::optional<bool>(false)) {
          hi = mid;
        } else {
          lo = mid + 1;
        }
      }
      result.ok = false;
      result.key = key;
      const std::size_t from = hi > 30 ? hi - 30 : 0;
      result.explanation = "  (the first " + std::to_string(hi) + " of its " +
                           std::to_string(ops.size()) +
                           " operations, by call, are already refused; the last of them:)\n";
      for (std::size_t i = from; i < hi; ++i)
        result.explanation += "  " + ops[i]->describe() + "\n";
      return result;
    }
  }
  return result;
}

}  // namespace uraft::sim
