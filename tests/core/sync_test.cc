// Event, Semaphore and Channel on the simulated loop: ordering, bounds, close, and
// cancellation of a waiting task (it leaves the wait list and resumes with Cancelled).
#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/channel.h"
#include "core/event.h"
#include "core/loop.h"
#include "core/scope.h"
#include "core/semaphore.h"

namespace uraft {
namespace {

Task<void> wait_then_log(Event* event, std::vector<std::string>* log, std::string name) {
  co_await event->wait();
  log->push_back(name);
}

Task<void> event_scenario(std::vector<std::string>* log) {
  Event event;
  Scope scope;
  scope.spawn(wait_then_log(&event, log, "a"));
  scope.spawn(wait_then_log(&event, log, "b"));
  co_await sleep_for(10ms);
  log->push_back("set");
  event.set();
  co_await scope.join();
  co_await event.wait();  // Already set: completes at once.
  log->push_back("after");
}

TEST_CASE("Event wakes every waiter in order, and a set event does not block") {
  auto loop = Loop::simulated();
  std::vector<std::string> log;
  loop->run(event_scenario(&log));
  CHECK(log == std::vector<std::string>{"set", "a", "b", "after"});
}

Task<void> wait_or_cancelled(Event* event, bool* cancelled) {
  try {
    co_await event->wait();
  } catch (const Cancelled&) {
    *cancelled = true;
  }
}

Task<void> cancel_event_wait(bool* cancelled) {
  Event event;
  Scope scope;
  scope.spawn(wait_or_cancelled(&event, cancelled));
  co_await sleep_for(1ms);
  co_await scope.close();
  event.set();  // No waiter left to wake.
}

TEST_CASE("a cancelled Event wait resumes with Cancelled and leaves the wait list") {
  auto loop = Loop::simulated();
  bool cancelled = false;
  loop->run(cancel_event_wait(&cancelled));
  CHECK(cancelled);
}

Task<void> hold(Semaphore* sem, int* inside, int* max_inside) {
  co_await sem->acquire();
  ++*inside;
  *max_inside = std::max(*max_inside, *inside);
  co_await sleep_for(10ms);
  --*inside;
  sem->release();
}

Task<void> semaphore_scenario(int* max_inside) {
  Semaphore sem(3);
  int inside = 0;
  Scope scope;
  for (int i = 0; i < 10; ++i) scope.spawn(hold(&sem, &inside, max_inside));
  co_await scope.join();
  CHECK(sem.available() == 3);
}

TEST_CASE("Semaphore admits at most its permits at once") {
  auto loop = Loop::simulated();
  int max_inside = 0;
  loop->run(semaphore_scenario(&max_inside));
  CHECK(max_inside == 3);
  CHECK(loop->now() == TimePoint(40ms));  // 10 holders, 3 at a time, 10 ms each.
}

Task<void> produce(Channel<int>* ch, int n) {
  for (int i = 0; i < n; ++i) CHECK(co_await ch->send(i));
  ch->close();
}

Task<void> consume(Channel<int>* ch, std::vector<int>* got) {
  while (auto v = co_await ch->receive()) {
    got->push_back(*v);
    co_await sleep_for(1ms);  // A slow consumer: the producer must wait for room.
  }
}

Task<void> channel_scenario(std::vector<int>* got, std::size_t* max_size) {
  Channel<int> ch(4);
  Scope scope;
  scope.spawn(produce(&ch, 100));
  scope.spawn(consume(&ch, got));
  while (scope.active() > 0) {
    *max_size = std::max(*max_size, ch.size());
    co_await sleep_for(1ms);
  }
  co_await scope.join();
}

TEST_CASE("Channel delivers in order within its bound, and close ends the consumer") {
  auto loop = Loop::simulated();
  std::vector<int> got;
  std::size_t max_size = 0;
  loop->run(channel_scenario(&got, &max_size));
  REQUIRE(got.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(got[static_cast<std::size_t>(i)] == i);
  CHECK(max_size <= 4);
}

TEST_CASE("Channel try_send/try_receive respect capacity and close") {
  auto loop = Loop::simulated();
  Channel<std::string> ch(2);
  std::string a = "a", b = "b", c = "c";
  CHECK(ch.try_send(a));
  CHECK(ch.try_send(b));
  CHECK_FALSE(ch.try_send(c));
  CHECK(c == "c");  // A refused value is kept by the caller.
  CHECK(ch.try_receive() == "a");
  ch.close();
  CHECK_FALSE(ch.try_send(c));
  CHECK(ch.try_receive() == "b");
  CHECK_FALSE(ch.try_receive().has_value());
}

Task<void> blocked_sender(Channel<int>* ch, bool* cancelled) {
  try {
    (void)co_await ch->send(2);
  } catch (const Cancelled&) {
    *cancelled = true;
  }
}
Task<void> blocked_receiver(Channel<int>* ch, bool* cancelled) {
  try {
    (void)co_await ch->receive();
  } catch (const Cancelled&) {
    *cancelled = true;
  }
}

Task<void> channel_cancel_scenario(bool* send_cancelled, bool* recv_cancelled) {
  Channel<int> full(1);
  int one = 1;
  CHECK(full.try_send(one));
  Channel<int> empty(1);
  Scope scope;
  scope.spawn(blocked_sender(&full, send_cancelled));
  scope.spawn(blocked_receiver(&empty, recv_cancelled));
  co_await sleep_for(1ms);
  co_await scope.close();
  CHECK(full.size() == 1);  // The cancelled send delivered nothing.
  CHECK(full.try_receive() == 1);
}

TEST_CASE("cancelling a blocked send or receive resumes it with Cancelled") {
  auto loop = Loop::simulated();
  bool send_cancelled = false, recv_cancelled = false;
  loop->run(channel_cancel_scenario(&send_cancelled, &recv_cancelled));
  CHECK(send_cancelled);
  CHECK(recv_cancelled);
}

Task<void> tiny(int* done) {
  co_await sleep_for(1ms);
  ++*done;
}

Task<void> many_tasks(int n, int* done) {
  Scope scope;
  for (int i = 0; i < n; ++i) scope.spawn(tiny(done));
  co_await scope.join();
}

TEST_CASE("100,000 concurrent tasks run and are joined") {
  auto loop = Loop::simulated();
  int done = 0;
  loop->run(many_tasks(100'000, &done));
  CHECK(done == 100'000);
  CHECK(loop->now() == TimePoint(1ms));
}

Task<void> failing() {
  co_await sleep_for(1ms);
  throw std::runtime_error("spawned task failed");
}

Task<void> scope_error_scenario(bool* sibling_cancelled) {
  Channel<int> never(1);
  Scope scope;
  scope.spawn(blocked_receiver(&never, sibling_cancelled));
  scope.spawn(failing());
  co_await scope.join();
}

TEST_CASE("a spawned task's error cancels its scope and is rethrown by join") {
  auto loop = Loop::simulated();
  bool sibling_cancelled = false;
  CHECK_THROWS_WITH(loop->run(scope_error_scenario(&sibling_cancelled)), "spawned task failed");
  CHECK(sibling_cancelled);
}

}  // namespace
}  // namespace uraft
