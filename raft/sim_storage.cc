#include "raft/sim_storage.h"

#include <utility>

#include "core/assert.h"
#include "core/loop.h"
#include "net/varint.h"

namespace uraft {

void SimStorage::apply(State& state, const Write& w) {
  switch (w.kind) {
    case Write::Kind::kHardState:
      state.hard_state = w.hard_state;
      break;
    case Write::Kind::kAppend:
      URAFT_ASSERT(w.first > state.base_index());
      URAFT_ASSERT(w.first.value <= state.last_index().value + 1);
      state.entries.resize(w.first.value - state.base_index().value - 1);
      state.entries.insert(state.entries.end(), w.entries.begin(), w.entries.end());
      break;
    case Write::Kind::kSnapshot: {
      const LogIndex index = w.snapshot.last_included_index;
      URAFT_ASSERT(index > state.base_index());
      if (w.action == SnapshotLogAction::kDiscardLog || index >= state.last_index()) {
        state.entries.clear();
      } else {
        const std::size_t covered = index.value - state.base_index().value;
        URAFT_ASSERT(state.entries[covered - 1].term == w.snapshot.last_included_term);
        state.entries.erase(state.entries.begin(), state.entries.begin() + static_cast<std::ptrdiff_t>(covered));
      }
      state.snapshot = w.snapshot;
      break;
    }
  }
}

std::unique_ptr<SimStorage> SimStorage::crash(Rng& rng) const {
  auto c = std::make_unique<SimStorage>(options_);
  c->synced_ = synced_;
  // A prefix of the unsynced writes reached the disk; the next one is torn (discarded by
  // recovery); the rest never left the page cache.
  const std::size_t kept = static_cast<std::size_t>(rng.uniform(0, pending_.size()));
  for (std::size_t i = 0; i < kept; ++i) apply(c->synced_, pending_[i]);
  c->written_ = c->synced_;
  c->writes_lost_ = writes_lost_ + (pending_.size() - kept);
  return c;
}

std::unique_ptr<SimStorage> SimStorage::copy() const {
  auto c = std::make_unique<SimStorage>(options_);
  c->synced_ = c->written_ = written_;
  c->writes_lost_ = writes_lost_;
  return c;
}

std::size_t SimStorage::raft_state_size() const noexcept {
  std::size_t bytes = varint_bytes(written_.hard_state.current_term.value) +
                      varint_bytes(std::uint64_t{written_.hard_state.voted_for.value} + 1);
  for (const LogEntry& e : written_.entries) {
    bytes += varint_bytes(e.term.value) + varint_bytes(e.command.size()) + e.command.size();
  }
  return bytes;
}

Task<RecoveredState> SimStorage::load() {
  // Everything issued so far is what this instance reads back (its own writes are visible).
  co_return RecoveredState{written_.hard_state, written_.snapshot, written_.entries};
}

Task<void> SimStorage::issue(Write w) {
  apply(written_, w);
  pending_.push_back(std::move(w));
  const std::uint64_t seq = ++issued_seq_;
  co_await await_synced(seq);
}

Task<void> SimStorage::await_synced(std::uint64_t seq) {
  while (synced_seq_ < seq) {
    if (syncing_) {
      co_await sync_done_.wait();
      continue;
    }
    // This task runs the next sync; it covers everything issued before it starts.
    syncing_ = true;
    const std::uint64_t target = issued_seq_;
    Loop& loop = Loop::current();
    const auto span = static_cast<std::uint64_t>((options_.sync_latency_max - options_.sync_latency_min).count());
    const Duration latency = options_.sync_latency_min + Duration(static_cast<Duration::rep>(loop.rng().uniform(0, span)));
    try {
      co_await sleep_for(latency);
    } catch (...) {
      // Cancelled: hand the sync over to another waiter (none: it runs with the next write).
      syncing_ = false;
      sync_done_.set();
      sync_done_.reset();
      throw;
    }
    ++syncs_;
    while (synced_seq_ < target) {
      apply(synced_, pending_.front());
      pending_.pop_front();
      ++synced_seq_;
    }
    syncing_ = false;
    sync_done_.set();
    sync_done_.reset();
  }
}

Task<void> SimStorage::save_hard_state(HardState state) {
  URAFT_ASSERT(state.current_term >= written_.hard_state.current_term);
  Write w;
  w.kind = Write::Kind::kHardState;
  w.hard_state = state;
  co_await issue(std::move(w));
}

Task<void> SimStorage::append(LogIndex first, std::vector<LogEntry> entries) {
  Write w;
  w.kind = Write::Kind::kAppend;
  w.first = first;
  w.entries = std::move(entries);
  co_await issue(std::move(w));
}

Task<void> SimStorage::save_snapshot(SnapshotRecord snapshot, SnapshotLogAction action) {
  Write w;
  w.kind = Write::Kind::kSnapshot;
  w.snapshot = std::move(snapshot);
  w.action = action;
  co_await issue(std::move(w));
}

}  // namespace uraft
