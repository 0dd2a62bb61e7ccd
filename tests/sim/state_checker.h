// StateChecker: State Machine Safety read from the stores themselves. Every node applies the
// same commands in the same order, so at equal applied indexes every store has the same
// digest, whichever node and whenever sampled; and within one run of a node the applied index
// never goes back (a restart may begin again from its snapshot).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "net/types.h"

namespace uraft::sim {

class StateChecker {
 public:
  // Run `instance` of node `node` has applied up to `applied`; its store hashes to `digest`.
  void observe(std::size_t node, std::uint64_t instance, LogIndex applied, std::size_t digest);

  const std::vector<std::string>& violations() const noexcept { return violations_; }

 private:
  std::map<std::uint64_t, std::pair<std::size_t, std::size_t>> digests_;  // Index -> digest, node.
  std::map<std::size_t, std::pair<std::uint64_t, LogIndex>> last_;  // Node -> instance, applied.
  std::vector<std::string> violations_;
};

}  // namespace uraft::sim
