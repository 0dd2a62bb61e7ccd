#include "raft/log.h"

#include <algorithm>

#include "core/assert.h"

namespace uraft {

std::optional<Term> RaftLog::term_at(LogIndex index) const {
  if (index == snapshot_index_) return snapshot_term_;
  if (index < snapshot_index_ || index > last_index()) return std::nullopt;
  return entries_[offset_of(index)].term;
}

const LogEntry& RaftLog::entry(LogIndex index) const { return entries_[offset_of(index)]; }

std::vector<LogEntry> RaftLog::slice(LogIndex from, LogIndex to_exclusive,
                                     std::size_t bytes_max) const {
  URAFT_ASSERT(from <= to_exclusive);
  URAFT_ASSERT(to_exclusive.value <= last_index().value + 1);
  std::vector<LogEntry> batch;
  std::size_t bytes = 0;
  for (LogIndex i = from; i < to_exclusive; i = LogIndex{i.value + 1}) {
    const LogEntry& e = entry(i);
    bytes += e.command.size();
    if (!batch.empty() && bytes > bytes_max) break;
    batch.push_back(e);
  }
  return batch;
}

LogIndex RaftLog::lower_bound_term(Term term) const {
  if (snapshot_term_ >= term) return snapshot_index_;
  const auto it = std::partition_point(entries_.begin(), entries_.end(),
                                       [term](const LogEntry& e) { return e.term < term; });
  return LogIndex{first_index().value + static_cast<std::size_t>(it - entries_.begin())};
}

std::optional<LogIndex> RaftLog::first_index_of_term(Term term) const {
  const LogIndex first = lower_bound_term(term);
  if (term_at(first) != term) return std::nullopt;
  return first;
}

std::optional<LogIndex> RaftLog::last_index_of_term(Term term) const {
  const LogIndex after = lower_bound_term(Term{term.value + 1});
  if (after == snapshot_index_) return std::nullopt;  // Even the base is newer than `term`.
  const LogIndex last{after.value - 1};
  if (term_at(last) != term) return std::nullopt;
  return last;
}

void RaftLog::append(std::span<const LogEntry> entries) {
  for (const LogEntry& e : entries) {
    URAFT_ASSERT(e.term >= last_term());
    entries_.push_back(e);
    bytes_ += e.command.size();
  }
}

void RaftLog::append_moved(std::span<LogEntry> entries) {
  for (LogEntry& e : entries) append(std::move(e));
}

void RaftLog::append(LogEntry&& entry) {
  URAFT_ASSERT(entry.term >= last_term());
  bytes_ += entry.command.size();
  entries_.push_back(std::move(entry));
}

void RaftLog::truncate_suffix(LogIndex from) {
  URAFT_ASSERT(from > snapshot_index_);
  URAFT_ASSERT(from.value <= last_index().value + 1);
  const auto first = entries_.begin() + static_cast<std::ptrdiff_t>(from.value - first_index().value);
  for (auto it = first; it != entries_.end(); ++it) bytes_ -= it->command.size();
  entries_.erase(first, entries_.end());
}

void RaftLog::compact_prefix(LogIndex index) {
  const Term term = entry(index).term;  // Asserts snapshot_index() < index <= last_index().
  const auto end = entries_.begin() + static_cast<std::ptrdiff_t>(offset_of(index) + 1);
  for (auto it = entries_.begin(); it != end; ++it) bytes_ -= it->command.size();
  entries_.erase(entries_.begin(), end);
  snapshot_index_ = index;
  snapshot_term_ = term;
}

void RaftLog::reset_to_snapshot(LogIndex index, Term term) {
  URAFT_ASSERT(index > snapshot_index_);
  entries_.clear();
  bytes_ = 0;
  snapshot_index_ = index;
  snapshot_term_ = term;
}

std::size_t RaftLog::offset_of(LogIndex index) const {
  URAFT_ASSERT(index >= first_index());
  URAFT_ASSERT(index <= last_index());
  return index.value - first_index().value;
}

}  // namespace uraft
