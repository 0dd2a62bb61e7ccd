// The clients' history and its linearizability check. Every operation on one key is recorded
// with the moments its client sent it and saw the answer (a global sequence number: the
// simulation is single-threaded, so it is the real-time order). An operation whose outcome
// the client cannot know (it timed out, its node crashed, or it was answered "may or may not
// have been applied") is indeterminate: it may take effect at any moment after it was sent,
// or never. check_linearizable() searches for a sequential order of each key's operations
// that respects real time and the register semantics below (Wing & Gong's search with Lowe's
// memoization, as Porcupine and Knossos do). Multi-key commands enter as one operation per
// key (MSET as SETs, MGET as GETs): a necessary condition, checked per key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace uraft::sim {

enum class OpKind : std::uint8_t { kSet, kGet, kIncr, kAppend, kDel };

struct Op {
  OpKind kind = OpKind::kGet;
  std::string key;
  std::string arg;  // SET's value, APPEND's suffix.
  // The answer: GET's "=value" or "nil"; INCR's integer, APPEND's length, DEL's count, as
  // decimal text; "ERR" for INCR's error on a value that is not an integer; SET's "OK".
  // Unset while pending and for indeterminate operations.
  std::optional<std::string> out;
  bool indeterminate = false;
  std::uint64_t call = 0;  // Sequence numbers.
  std::uint64_t ret = 0;
  std::uint32_t client = 0;
  std::string describe() const;
};

struct LinearizabilityResult {
  bool ok = true;
  std::string key;          // The first key with no linearization.
  std::string explanation;  // Its operations, for the report.
  std::size_t states = 0;   // Search states explored, over every key.
  bool gave_up = false;     // A key's search passed the state budget (not a violation).
};

// `history` holds completed and indeterminate operations (pending ones must be marked
// indeterminate first). Reads with unknown outcomes should simply be left out.
LinearizabilityResult check_linearizable(const std::vector<Op>& history,
                                         std::size_t state_budget = std::size_t{1} << 22);

}  // namespace uraft::sim
