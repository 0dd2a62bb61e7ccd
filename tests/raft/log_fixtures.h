// Builders shared by the raft rules tests: logs and entries described by their terms, and a
// follower carrying out an AppendDecision the way its driver will.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "net/message.h"
#include "net/types.h"
#include "raft/log.h"
#include "raft/rules.h"

namespace uraft::test {

constexpr Term operator""_term(unsigned long long t) { return Term{t}; }
constexpr LogIndex operator""_index(unsigned long long i) { return LogIndex{i}; }

// A uniform random number in 0..n, for the seeded property tests.
inline std::uint64_t upto(std::mt19937_64& rng, std::uint64_t n) {
  return std::uniform_int_distribution<std::uint64_t>(0, n)(rng);
}

// 0..count_max terms from `first` on that never decrease, rising by `step` a third of the time.
inline std::vector<std::uint64_t> random_terms(std::mt19937_64& rng, std::uint64_t first,
                                               std::uint64_t step, std::uint64_t count_max) {
  std::vector<std::uint64_t> terms;
  std::uint64_t term = first;
  for (std::uint64_t n = upto(rng, count_max); n > 0; --n) {
    terms.push_back(term);
    if (upto(rng, 2) == 0) term += step;
  }
  return terms;
}

// An entry's command names its index and term, so equal entries mean equal (index, term).
inline LogEntry entry_at(std::uint64_t index, std::uint64_t term) {
  return LogEntry{Term{term}, std::to_string(index) + "@" + std::to_string(term)};
}

// Entries for indices first, first + 1, ... with the given terms.
inline std::vector<LogEntry> entries_from(std::uint64_t first,
                                          const std::vector<std::uint64_t>& terms) {
  std::vector<LogEntry> entries;
  for (std::uint64_t term : terms) entries.push_back(entry_at(first + entries.size(), term));
  return entries;
}

// A log holding indices 1..terms.size() with the given terms, compacted up to snapshot_index.
inline RaftLog log_of(const std::vector<std::uint64_t>& terms, std::uint64_t snapshot_index = 0) {
  RaftLog log;
  log.append(entries_from(1, terms));
  if (snapshot_index > 0) log.compact_prefix(LogIndex{snapshot_index});
  return log;
}

// The terms of snapshot_index()..last_index(), the base first.
inline std::vector<std::uint64_t> terms_of(const RaftLog& log) {
  std::vector<std::uint64_t> terms;
  for (LogIndex i = log.snapshot_index(); i <= log.last_index(); i = LogIndex{i.value + 1}) {
    terms.push_back(log.term_at(i)->value);
  }
  return terms;
}

// What a follower's driver does with the decision (minus persisting and replying).
inline void carry_out(RaftLog& log, const AppendDecision& decision, const AppendEntriesArgs& args) {
  if (decision.truncate_from) log.truncate_suffix(*decision.truncate_from);
  log.append(std::span(args.entries).subspan(decision.append_from));
}

}  // namespace uraft::test
