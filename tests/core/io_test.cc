// io_uring awaitables: file and socket operations, cancellation that waits for the kernel's
// completion before freeing an operation, cross-thread post, and plain errors.
#include "core/io.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "core/post.h"
#include "core/scope.h"
#include "core/when.h"

namespace uraft {
namespace {

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }

Task<void> file_roundtrip(std::string path) {
  IoResult fd = co_await io::open_at(AT_FDCWD, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd.ok());
  CHECK((co_await io::fallocate(fd.res, 0, 0, 1 << 16)).ok());
  const std::string text = "hello, durable world";
  IoResult w = co_await io::write_at(fd.res, bytes_of(text), 4096);
  CHECK(w.bytes() == text.size());
  CHECK((co_await io::fdatasync(fd.res)).ok());
  CHECK((co_await io::fsync(fd.res)).ok());
  std::string back(text.size(), '\0');
  IoResult r = co_await io::read_at(fd.res, std::as_writable_bytes(std::span(back)), 4096);
  CHECK(r.bytes() == text.size());
  CHECK(back == text);
  CHECK((co_await io::close_fd(fd.res)).ok());
  IoResult missing = co_await io::open_at(AT_FDCWD, path + ".missing/x", O_RDONLY);
  CHECK(missing.error() == ENOENT);
  CHECK_FALSE(missing.message().empty());
}

TEST_CASE("file operations: open, fallocate, write, fdatasync, fsync, read, close") {
  auto loop = Loop::uring();
  char dir[] = "/tmp/uraft-io-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string path = std::string(dir) + "/file";
  loop->run(file_roundtrip(path));
  CHECK(loop->backend().inflight() == 0);
  ::unlink(path.c_str());
  ::rmdir(dir);
}

// A listening socket on 127.0.0.1 with a free port chosen by the kernel.
int listen_any_port(sockaddr_in* addr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  *addr = sockaddr_in{};
  addr->sin_family = AF_INET;
  addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(addr), sizeof *addr) == 0);
  socklen_t len = sizeof *addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) == 0);
  REQUIRE(::listen(fd, 16) == 0);
  return fd;
}

Task<int> accept_one(int listener) {
  IoResult conn = co_await io::accept(listener);
  REQUIRE(conn.ok());
  co_return conn.res;
}

Task<int> connect_to(sockaddr_in addr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  IoResult c = co_await io::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  REQUIRE(c.ok());
  co_return fd;
}

Task<void> socket_roundtrip() {
  sockaddr_in addr;
  const int listener = listen_any_port(&addr);
  std::vector<Task<int>> both;
  both.push_back(accept_one(listener));
  both.push_back(connect_to(addr));
  std::vector<int> fds = co_await when_all(std::move(both));
  const int server = fds[0], client = fds[1];

  const std::string ping = "ping";
  CHECK((co_await io::send(client, bytes_of(ping))).bytes() == 4);
  std::string got(4, '\0');
  CHECK((co_await io::recv(server, std::as_writable_bytes(std::span(got)))).bytes() == 4);
  CHECK(got == "ping");

  std::string a = "mes", b = "sage";
  iovec out[2] = {{a.data(), a.size()}, {b.data(), b.size()}};
  msghdr out_msg{};
  out_msg.msg_iov = out;
  out_msg.msg_iovlen = 2;
  CHECK((co_await io::sendmsg(server, &out_msg)).bytes() == 7);
  std::string in(7, '\0');
  iovec in_iov{in.data(), in.size()};
  msghdr in_msg{};
  in_msg.msg_iov = &in_iov;
  in_msg.msg_iovlen = 1;
  CHECK((co_await io::recvmsg(client, &in_msg, MSG_WAITALL)).bytes() == 7);
  CHECK(in == "message");
  for (int fd : {server, client, listener}) ::close(fd);
}

TEST_CASE("socket operations: accept, connect, send, recv, sendmsg, recvmsg on 127.0.0.1") {
  auto loop = Loop::uring();
  loop->run(socket_roundtrip());
  CHECK(loop->backend().inflight() == 0);
}

struct CancelProbe {
  bool cancelled = false;
  unsigned inflight_while_waiting = 0;
};

Task<void> recv_until_cancelled(int fd, CancelProbe* probe) {
  std::byte buf[16];
  try {
    (void)co_await io::recv(fd, buf);
  } catch (const Cancelled&) {
    probe->cancelled = true;
  }
}

Task<void> accept_until_cancelled(int fd, CancelProbe* probe) {
  try {
    (void)co_await io::accept(fd);
  } catch (const Cancelled&) {
    probe->cancelled = true;
  }
}

Task<void> cancel_io_scenario(CancelProbe* recv_probe, CancelProbe* accept_probe) {
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
  sockaddr_in addr;
  const int listener = listen_any_port(&addr);
  Scope scope;
  scope.spawn(recv_until_cancelled(pair[0], recv_probe));
  scope.spawn(accept_until_cancelled(listener, accept_probe));
  co_await yield();
  co_await yield();
  Loop& loop = Loop::current();
  recv_probe->inflight_while_waiting = loop.backend().inflight();
  scope.cancel();
  // Cancellation is asynchronous: both operations are still the kernel's until their
  // completions arrive, and the tasks have not resumed.
  CHECK(loop.backend().inflight() == 2);
  CHECK_FALSE(recv_probe->cancelled);
  co_await scope.join();
  CHECK(loop.backend().inflight() == 0);
  for (int fd : {pair[0], pair[1], listener}) ::close(fd);
}

TEST_CASE("cancelling socket operations frees them only after the kernel's completion") {
  auto loop = Loop::uring();
  CancelProbe recv_probe, accept_probe;
  loop->run(cancel_io_scenario(&recv_probe, &accept_probe));
  CHECK(recv_probe.inflight_while_waiting == 2);
  CHECK(recv_probe.cancelled);
  CHECK(accept_probe.cancelled);
}

Task<void> read_pipe_until_cancelled(int fd, CancelProbe* probe) {
  std::byte buf[16];
  try {
    (void)co_await io::read_at(fd, buf, 0);
  } catch (const Cancelled&) {
    probe->cancelled = true;
  }
}

Task<void> cancel_file_op_scenario(CancelProbe* probe) {
  int p[2];
  REQUIRE(::pipe(p) == 0);  // A read on an empty pipe blocks: a file op we can cancel.
  Scope scope;
  scope.spawn(read_pipe_until_cancelled(p[0], probe));
  co_await yield();
  co_await yield();
  probe->inflight_while_waiting = Loop::current().backend().inflight();
  co_await scope.close();
  ::close(p[0]);
  ::close(p[1]);
}

TEST_CASE("cancelling a pending read resumes with Cancelled after its completion") {
  auto loop = Loop::uring();
  CancelProbe probe;
  loop->run(cancel_file_op_scenario(&probe));
  CHECK(probe.inflight_while_waiting == 1);
  CHECK(probe.cancelled);
  CHECK(loop->backend().inflight() == 0);
}

Task<void> timed_sleep() { co_await sleep_for(2ms); }

TEST_CASE("a timer on io_uring sleeps at least its duration") {
  auto loop = Loop::uring();
  const TimePoint start = loop->now();
  loop->run(timed_sleep());
  CHECK(loop->now() - start >= 2ms);
}

Task<void> wait_for_post(Event* posted, int* value) {
  co_await posted->wait();
  CHECK(*value == 42);
}

TEST_CASE("post() from another thread wakes a loop blocked in the kernel") {
  auto loop = Loop::uring();
  Event posted;
  int value = 0;
  loop->post_queue();  // Opened on the loop's thread before other threads use it.
  std::thread other([&] {
    post(*loop, [&] {
      value = 42;
      posted.set();
    });
  });
  loop->run(wait_for_post(&posted, &value));
  other.join();
  CHECK(value == 42);
}

Task<IoResult> nop_on_current_loop() { co_return co_await io::nop(); }

TEST_CASE("I/O on a simulated loop fails plainly with ENOSYS") {
  auto loop = Loop::simulated();
  CHECK(loop->run(nop_on_current_loop()).error() == ENOSYS);
}

TEST_CASE("an io_uring that cannot be set up is reported in plain words") {
  try {
    UringBackend backend(1u << 30);  // Far beyond the kernel's limit on ring entries.
    FAIL("expected io_uring setup to fail");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("io_uring is not available") != std::string::npos);
  }
}

}  // namespace
}  // namespace uraft
