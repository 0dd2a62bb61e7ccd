#include "tests/sim/state_checker.h"

namespace uraft::sim {

void StateChecker::observe(std::size_t node, std::uint64_t instance, LogIndex applied,
                           std::size_t digest) {
  const std::string who = "node " + std::to_string(node);
  auto [last, first_sample] = last_.try_emplace(node, instance, applied);
  if (!first_sample) {
    if (last->second.first == instance && applied < last->second.second) {
      violations_.push_back(who + " applied index went back from " +
                            std::to_string(last->second.second.value) + " to " +
                            std::to_string(applied.value));
    }
    last->second = {instance, applied};
  }
  auto [seen, fresh] = digests_.try_emplace(applied.value, digest, node);
  if (!fresh && seen->second.first != digest) {
    violations_.push_back("State Machine Safety: " + who + " and node " +
                          std::to_string(seen->second.second) + " differ at applied index " +
                          std::to_string(applied.value));
  }
}

}  // namespace uraft::sim
