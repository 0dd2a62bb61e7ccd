#include "raft/log.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "tests/raft/log_fixtures.h"

namespace uraft::test {
namespace {

TEST_CASE("an empty log is its zero base: index 0, term 0") {
  // Goal: Figure 2's log starts at index 1, so an empty log ends at the (0, 0) sentinel.
  const RaftLog log;
  CHECK(log.snapshot_index() == 0_index);
  CHECK(log.snapshot_term() == 0_term);
  CHECK(log.first_index() == 1_index);
  CHECK(log.last_index() == 0_index);
  CHECK(log.last_term() == 0_term);
  CHECK(log.term_at(0_index) == 0_term);
  CHECK(log.term_at(1_index) == std::nullopt);
}

TEST_CASE("append extends the log and term_at knows every index from the base on") {
  // Goal: accessors agree with the appended entries and refuse indices outside the log.
  const RaftLog log = log_of({1, 1, 2, 3});
  CHECK(log.last_index() == 4_index);
  CHECK(log.last_term() == 3_term);
  CHECK(log.term_at(3_index) == 2_term);
  CHECK(log.term_at(5_index) == std::nullopt);
  CHECK(log.entry(2_index) == entry_at(2, 1));
  CHECK(terms_of(log) == std::vector<std::uint64_t>{0, 1, 1, 2, 3});
}

TEST_CASE("slice batches a range and stops before the byte bound") {
  // Goal: AppendEntries batches are bounded in bytes, yet always carry at least one entry.
  RaftLog log;
  log.append(std::vector<LogEntry>{{1_term, "aaaa"}, {1_term, "bbbb"}, {2_term, "cccc"}});
  CHECK(log.slice(1_index, 4_index, 100).size() == 3);
  CHECK(log.slice(1_index, 4_index, 8).size() == 2);
  CHECK(log.slice(1_index, 4_index, 7).size() == 1);
  CHECK(log.slice(2_index, 4_index, 0) == std::vector<LogEntry>{{1_term, "bbbb"}});
  CHECK(log.slice(3_index, 3_index, 100).empty());
  CHECK(log.slice(4_index, 4_index, 100).empty());
}

TEST_CASE("truncate_suffix drops the entries from an index on") {
  // Goal: a conflict removes the conflicting entry and all that follow it (receiver 3).
  RaftLog log = log_of({1, 1, 2, 3});
  log.truncate_suffix(3_index);
  CHECK(terms_of(log) == std::vector<std::uint64_t>{0, 1, 1});
  log.truncate_suffix(3_index);  // Truncating at last + 1 is a no-op.
  CHECK(log.last_index() == 2_index);
}

TEST_CASE("compact_prefix keeps the base's term and the suffix") {
  // Goal: after a snapshot, the base still answers term_at for the consistency check.
  RaftLog log = log_of({1, 1, 2, 3});
  log.compact_prefix(2_index);
  CHECK(log.snapshot_index() == 2_index);
  CHECK(log.snapshot_term() == 1_term);
  CHECK(log.first_index() == 3_index);
  CHECK(log.term_at(1_index) == std::nullopt);
  CHECK(log.term_at(2_index) == 1_term);
  CHECK(terms_of(log) == std::vector<std::uint64_t>{1, 2, 3});
  log.compact_prefix(4_index);  // Up to the last entry: only the base remains.
  CHECK(log.last_index() == 4_index);
  CHECK(log.last_term() == 3_term);
}

TEST_CASE("reset_to_snapshot discards every entry, even past the snapshot") {
  // Goal: Figure 13, receiver 7: a snapshot that does not match the log replaces it.
  RaftLog log = log_of({1, 1, 2, 3});
  log.reset_to_snapshot(7_index, 4_term);
  CHECK(log.snapshot_index() == 7_index);
  CHECK(log.last_index() == 7_index);
  CHECK(log.last_term() == 4_term);
  log.append(entries_from(8, {4}));
  CHECK(log.term_at(8_index) == 4_term);
}

TEST_CASE("first and last index of a term, the base included") {
  // Goal: the fast backtracking helpers find a term's run, or report that there is none.
  const RaftLog log = log_of({1, 1, 3, 3, 3, 5}, 2);
  CHECK(log.first_index_of_term(1_term) == 2_index);  // The run starts inside the snapshot.
  CHECK(log.last_index_of_term(1_term) == 2_index);
  CHECK(log.first_index_of_term(3_term) == 3_index);
  CHECK(log.last_index_of_term(3_term) == 5_index);
  CHECK(log.first_index_of_term(5_term) == 6_index);
  CHECK(log.last_index_of_term(5_term) == 6_index);
  CHECK(log.first_index_of_term(2_term) == std::nullopt);
  CHECK(log.last_index_of_term(2_term) == std::nullopt);
  CHECK(log.first_index_of_term(0_term) == std::nullopt);  // Compacted away.
  CHECK(log.last_index_of_term(9_term) == std::nullopt);
  CHECK(RaftLog().last_index_of_term(0_term) == 0_index);
}

// The reference: every term from index 0 on, plus how many leading ones are compacted.
struct ModelLog {
  std::vector<std::uint64_t> terms{0};
  std::uint64_t base = 0;

  std::uint64_t last() const { return terms.size() - 1; }
};

std::optional<LogIndex> model_index_of_term(const ModelLog& m, std::uint64_t term, bool first) {
  std::optional<LogIndex> found;
  for (std::uint64_t i = m.base; i <= m.last(); ++i) {
    if (m.terms[i] == term && (!first || !found)) found = LogIndex{i};
  }
  return found;
}

void check_same(const RaftLog& log, const ModelLog& m) {
  REQUIRE(log.snapshot_index() == LogIndex{m.base});
  REQUIRE(log.last_index() == LogIndex{m.last()});
  REQUIRE(log.last_term() == Term{m.terms.back()});
  for (std::uint64_t i = 0; i <= m.last() + 1; ++i) {
    const auto expected =
        i >= m.base && i <= m.last() ? std::optional(Term{m.terms[i]}) : std::nullopt;
    REQUIRE(log.term_at(LogIndex{i}) == expected);
    if (i > m.base && i <= m.last()) REQUIRE(log.entry(LogIndex{i}) == entry_at(i, m.terms[i]));
  }
  for (std::uint64_t t = 0; t <= m.terms.back() + 1; ++t) {
    REQUIRE(log.first_index_of_term(Term{t}) == model_index_of_term(m, t, true));
    REQUIRE(log.last_index_of_term(Term{t}) == model_index_of_term(m, t, false));
  }
}

TEST_CASE("property: random appends, truncations and compactions match a plain vector") {
  // Goal: the snapshot-based index arithmetic agrees with a full log kept from index 0.
  std::mt19937_64 rng(20240601);
  for (int run = 0; run < 200; ++run) {
    RaftLog log;
    ModelLog m;
    for (int step = 0; step < 60; ++step) {
      const std::uint64_t op = upto(rng, 9);
      if (op < 5) {
        const std::vector<std::uint64_t> terms = random_terms(rng, m.terms.back(), 1, 4);
        log.append(entries_from(m.last() + 1, terms));
        m.terms.insert(m.terms.end(), terms.begin(), terms.end());
      } else if (op < 7) {
        const std::uint64_t from = m.base + 1 + upto(rng, m.last() - m.base);
        log.truncate_suffix(LogIndex{from});
        m.terms.resize(from);
      } else if (op < 9 && m.last() > m.base) {
        const std::uint64_t index = m.base + 1 + upto(rng, m.last() - m.base - 1);
        log.compact_prefix(LogIndex{index});
        m.base = index;
      } else if (op == 9) {
        const std::uint64_t index = m.base + 1 + upto(rng, m.last() - m.base + 2);
        const std::uint64_t term = m.terms.back() + upto(rng, 1);
        log.reset_to_snapshot(LogIndex{index}, Term{term});
        m.terms.assign(index + 1, 0);  // Terms below the base are never read.
        m.terms.back() = term;
        m.base = index;
      }
      check_same(log, m);
    }
  }
}

}  // namespace
}  // namespace uraft::test
