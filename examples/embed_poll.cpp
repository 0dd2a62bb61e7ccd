// Embedding: a host program keeps its own poll() loop and drives a uraft io_uring loop as one
// more fd in it. The host polls the loop's fd (readable when completions are waiting) with
// the loop's timeout, next to a pipe of its own, and calls run_once(false) after each poll.
//
// The uraft side ticks three times on timers, telling the host over one pipe; the host
// answers "bye" over another pipe, which the uraft side reads with io_uring, then it ends.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

#include "core/io.h"
#include "core/loop.h"

using namespace std::chrono_literals;

namespace {

uraft::Task<void> send_line(int fd, std::string line) {
  const uraft::IoResult r = co_await uraft::io::write_at(fd, std::as_bytes(std::span(line)), 0);
  if (!r.ok()) throw std::runtime_error("write to host: " + r.message());
}

// The uraft side: timers and io_uring I/O, unaware that a host drives its loop.
uraft::Task<void> main_task(int to_host, int from_host) {
  for (int tick = 1; tick <= 3; ++tick) {
    co_await uraft::sleep_for(10ms);
    co_await send_line(to_host, "tick " + std::to_string(tick) + "\n");
  }
  char buf[64];
  const uraft::IoResult r = co_await uraft::io::read_at(from_host, std::as_writable_bytes(std::span(buf)), 0);
  if (!r.ok()) throw std::runtime_error("read from host: " + r.message());
  std::printf("loop: host said %.*s", static_cast<int>(r.bytes()), buf);
}

// poll() takes whole milliseconds: round up, so the host never wakes before a timer is due.
int poll_timeout_ms(std::optional<uraft::Duration> timeout) {
  if (!timeout) return -1;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

int run_host() {
  int to_host[2];    // uraft writes, host reads.
  int from_host[2];  // host writes, uraft reads.
  if (pipe2(to_host, O_CLOEXEC) != 0 || pipe2(from_host, O_CLOEXEC) != 0) {
    std::perror("pipe2");
    return 1;
  }
  int status = 0;
  {
    auto loop = uraft::Loop::uring();
    // start() queues the main task without driving the loop: this host drives it.
    uraft::Started<void> main = loop->start(main_task(to_host[1], from_host[0]));

    const auto give_up = std::chrono::steady_clock::now() + 5s;  // A hang is a failure.
    int ticks = 0;
    int polls = 0;
    while (!main.done()) {
      pollfd fds[2] = {{loop->poll_fd(), POLLIN, 0}, {to_host[0], POLLIN, 0}};
      const int n = ::poll(fds, 2, poll_timeout_ms(loop->poll_timeout()));
      ++polls;
      if (n < 0 && errno != EINTR) {
        std::perror("poll");
        status = 1;
        break;
      }
      if (n > 0 && (fds[1].revents & POLLIN) != 0) {
        char buf[64];
        const ssize_t got = ::read(to_host[0], buf, sizeof buf);
        if (got > 0) {
          std::printf("host: loop said %.*s", static_cast<int>(got), buf);
          ticks += static_cast<int>(std::count(buf, buf + got, '\n'));
          if (ticks == 3 && ::write(from_host[1], "bye\n", 4) != 4) std::perror("write");
        }
      }
      loop->run_once(false);
      if (std::chrono::steady_clock::now() > give_up) {
        std::fprintf(stderr, "embed_poll: the loop did not finish in 5 s\n");
        std::_Exit(1);  // Its tasks are still suspended: no orderly teardown possible.
      }
    }
    std::printf("host: main task done after %d polls\n", polls);
    main.get();  // Rethrows the main task's exception, if any.
    if (ticks != 3) status = 1;
  }
  for (int fd : {to_host[0], to_host[1], from_host[0], from_host[1]}) ::close(fd);
  return status;
}

}  // namespace

int main() {
  try {
    return run_host();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "embed_poll: %s\n", e.what());
    return 1;
  }
}
