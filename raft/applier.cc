// The applier: hands committed entries, and installed snapshots, to the service through the
// bounded apply channel, strictly in log order (Figure 2, Rules for All Servers, 1). It
// outlives roles: it runs in the node's root scope until kill() closes the channel.
#include <utility>

#include "core/assert.h"
#include "raft/node.h"

namespace uraft {

void Node::set_commit_index(LogIndex index) {
  if (index <= commit_index_) return;  // Never decreases.
  URAFT_ASSERT(index <= log_.last_index());
  commit_index_ = index;
  apply_wake_.set();
}

Task<void> Node::run_applier() {
  for (;;) {
    while (!snapshot_to_apply_ && last_applied_ >= commit_index_) {
      apply_wake_.reset();
      co_await apply_wake_.wait();
    }
    ApplyMsg msg;
    if (snapshot_to_apply_) {
      // Installed from the leader: it replaces everything up to its index, so it goes before
      // any entry after it.
      snapshot_to_apply_ = false;
      URAFT_ASSERT(snapshot_.last_included_index > last_applied_);
      msg = ApplyMsg{ApplyMsg::Kind::kSnapshot, snapshot_.last_included_index,
                     snapshot_.last_included_term, {}, snapshot_.data};
    } else {
      // Figure 2, Rules for All Servers, 1: if commitIndex > lastApplied, increment
      // lastApplied and apply log[lastApplied]. The service snapshots only what it was given,
      // so the next entry is never compacted away.
      const LogIndex next{last_applied_.value + 1};
      URAFT_ASSERT(next > log_.snapshot_index());
      const LogEntry& entry = log_.entry(next);
      msg = ApplyMsg{ApplyMsg::Kind::kCommand, next, entry.term, entry.command};
    }
    // lastApplied is what has been handed to the channel: set before the send, so nothing is
    // read across the await (the log may be compacted or replaced meanwhile).
    last_applied_ = msg.index;
    const bool accepted = co_await apply_ch_.send(std::move(msg));
    if (!accepted) co_return;  // Closed by kill().
  }
}

}  // namespace uraft
