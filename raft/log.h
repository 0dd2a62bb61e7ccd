// RaftLog: a peer's in-memory log above its snapshot base. Indices snapshot_index()+1 ..
// last_index() hold entries; snapshot_index() itself is known only by its term. Pure data with
// no I/O: the drivers mirror every change into Storage. Misuse (an index out of range, a
// term going backwards) is a programmer error and asserts.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "net/message.h"
#include "net/types.h"

namespace uraft {

class RaftLog {
 public:
  // An empty log: no snapshot (base index 0, term 0) and no entries.
  RaftLog() = default;

  LogIndex snapshot_index() const { return snapshot_index_; }
  Term snapshot_term() const { return snapshot_term_; }
  LogIndex first_index() const { return LogIndex{snapshot_index_.value + 1}; }
  LogIndex last_index() const { return LogIndex{snapshot_index_.value + entries_.size()}; }
  Term last_term() const { return entries_.empty() ? snapshot_term_ : entries_.back().term; }
  // Entries held (above the snapshot) and the sum of their command sizes.
  std::size_t size() const { return entries_.size(); }
  std::size_t bytes() const { return bytes_; }

  // The term at `index` for snapshot_index() <= index <= last_index(); otherwise unknown.
  std::optional<Term> term_at(LogIndex index) const;
  // The entry at first_index() <= index <= last_index().
  const LogEntry& entry(LogIndex index) const;
  // Entries [from, to_exclusive), stopping before the command bytes would exceed bytes_max;
  // at least one entry when the range is not empty, so replication always progresses.
  std::vector<LogEntry> slice(LogIndex from, LogIndex to_exclusive, std::size_t bytes_max) const;

  // The first / last index in snapshot_index()..last_index() holding `term` (for fast
  // backtracking). Terms never decrease along a log, so each is a binary search.
  std::optional<LogIndex> first_index_of_term(Term term) const;
  std::optional<LogIndex> last_index_of_term(Term term) const;

  // Appends after last_index(); terms never decrease along the log.
  void append(std::span<const LogEntry> entries);
  // The same, moving the entries in (no copy of their commands).
  void append_moved(std::span<LogEntry> entries);
  void append(LogEntry&& entry);
  // Drops entries from `from` on; snapshot_index() < from <= last_index() + 1.
  void truncate_suffix(LogIndex from);
  // Drops entries up to and including `index` (which becomes the snapshot base, keeping its
  // term); snapshot_index() < index <= last_index(). The suffix stays.
  void compact_prefix(LogIndex index);
  // Discards every entry: the log is now just the base (index, term), index > snapshot_index().
  void reset_to_snapshot(LogIndex index, Term term);

 private:
  // The first index in snapshot_index()..last_index() with a term >= `term`, else last + 1.
  LogIndex lower_bound_term(Term term) const;
  // Position in entries_ of first_index() <= index <= last_index().
  std::size_t offset_of(LogIndex index) const;

  LogIndex snapshot_index_;
  Term snapshot_term_;
  std::deque<LogEntry> entries_;  // entries_[0] is at first_index().
  std::size_t bytes_ = 0;         // Sum of entries_[i].command.size().
};

}  // namespace uraft
